"""The values generators exchange, option checks, the retry policy, and the protocol."""

from __future__ import annotations

import hashlib
import json

import pytest
from PIL import Image

from assetrag.errors import AssetragError
from assetrag.generation import (
    GenerationError,
    GenerationOptions,
    GenerationOptionsError,
    GenerationRateLimited,
    GenerationResult,
    GenerationUnavailable,
    Generator,
    Reference,
)
from assetrag.generation.base import Verdict, call_with_retries, check_options
from fakes.images import make_image


def test_reference_is_rgb_with_transparency_on_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    ref = Reference(id="x", image=rgba)
    assert ref.image.mode == "RGB"
    assert ref.image.getpixel((1, 1)) == (255, 255, 255)
    assert ref.image.getpixel((0, 0)) == (0, 0, 255)
    assert ref.label == "style" and ref.score == 0.0 and ref.metadata == {}
    assert Reference(id="g", image=Image.new("L", (2, 2), 7)).image.getpixel((0, 0)) == (7, 7, 7)


def test_reference_from_path_uses_the_store_id(tmp_path):
    path = tmp_path / "watch.png"
    make_image(1).save(path)
    ref = Reference.from_path(path, label="blue watch", score=0.8)
    assert ref.id == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ref.path == str(path) and ref.label == "blue watch" and ref.image.size == (48, 32)


@pytest.mark.parametrize(
    "kwargs", [{"n": 0}, {"timeout_s": 0}, {"max_retries": -1}, {"retry_backoff_s": -1}, {"max_retry_wait_s": -2}]
)
def test_options_reject_nonsense(kwargs):
    with pytest.raises(GenerationOptionsError):
        GenerationOptions(**kwargs)


def test_check_options_names_the_value_and_the_accepted_ones():
    kw = {"backend": "b", "model": "m", "aspect_ratios": ("1:1", "16:9"), "sizes": ("S",), "max_n": 2}
    check_options(GenerationOptions(aspect_ratio="16:9", size="S", n=2), **kw)
    with pytest.raises(
        GenerationOptionsError, match=r"aspect ratio '4:3' is not accepted by b model 'm'; use one of: 1:1, 16:9"
    ):
        check_options(GenerationOptions(aspect_ratio="4:3"), **kw)
    with pytest.raises(GenerationOptionsError, match=r"size 'L' .* use one of: S"):
        check_options(GenerationOptions(size="L"), **kw)
    with pytest.raises(GenerationOptionsError, match="does not take a size"):
        check_options(GenerationOptions(size="L"), **{**kw, "sizes": ()})
    check_options(GenerationOptions(size="any"), **kw, size_ok=lambda s: s == "any")


def test_errors_are_assetrag_errors():
    for cls in (GenerationError, GenerationOptionsError, GenerationRateLimited, GenerationUnavailable):
        assert issubclass(cls, AssetragError)


class _Flaky:
    """Fails with the given exceptions, then returns "ok"."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def _classify(exc: Exception) -> Verdict | None:
    if isinstance(exc, TimeoutError):
        return Verdict(GenerationRateLimited("slow down"), retryable=True, retry_after_s=float(str(exc) or 0))
    if isinstance(exc, ConnectionError):
        return Verdict(GenerationUnavailable("down"), retryable=True)
    if isinstance(exc, PermissionError):
        return Verdict(GenerationError("no"))
    return None


def test_retry_waits_the_longer_of_hint_and_exponential_backoff():
    sleeps: list[float] = []
    send = _Flaky(ConnectionError(), TimeoutError("0.5"), ConnectionError(), ConnectionError())
    opts = GenerationOptions(max_retries=5, retry_backoff_s=0.1, max_retry_wait_s=10)
    result, attempts, notes = call_with_retries(send, _classify, opts, sleep=sleeps.append)
    assert result == "ok" and attempts == 5 and len(notes) == 4
    assert sleeps == pytest.approx([0.1, 0.5, 0.4, 0.8])


def test_retry_is_bounded_by_count_and_by_total_wait():
    sleeps: list[float] = []
    opts = GenerationOptions(max_retries=2, retry_backoff_s=0.1, max_retry_wait_s=10)
    with pytest.raises(GenerationUnavailable, match=r"gave up after 3 attempt\(s\)") as info:
        call_with_retries(_Flaky(*[ConnectionError()] * 5), _classify, opts, sleep=sleeps.append)
    assert info.value.attempts == 3 and sleeps == pytest.approx([0.1, 0.2])

    sleeps.clear()
    opts = GenerationOptions(max_retries=10, retry_backoff_s=1, max_retry_wait_s=3.5)
    with pytest.raises(GenerationUnavailable, match=r"would pass max_retry_wait_s=3\.5") as info:
        call_with_retries(_Flaky(*[ConnectionError()] * 9), _classify, opts, sleep=sleeps.append)
    assert sleeps == [1, 2] and info.value.attempts == 3


def test_non_retryable_and_unknown_errors_are_not_retried():
    sleeps: list[float] = []
    send = _Flaky(PermissionError())
    with pytest.raises(GenerationError, match="no") as info:
        call_with_retries(send, _classify, GenerationOptions(), sleep=sleeps.append)
    assert send.calls == 1 and sleeps == [] and isinstance(info.value.__cause__, PermissionError)
    send = _Flaky(KeyError("bug"))
    with pytest.raises(KeyError):
        call_with_retries(send, _classify, GenerationOptions(), sleep=sleeps.append)
    assert send.calls == 1


def test_result_save_writes_pngs_with_lineage(tmp_path):
    result = GenerationResult(
        images=[make_image(1), make_image(2)],
        model="m",
        backend="b",
        prompt="a blue watch",
        reference_ids=["r1", "r2"],
        finish_reason="STOP",
        elapsed_s=1.23456,
        metadata={"seed": 4, "not_json": object()},
    )
    paths = result.save(tmp_path / "out", stem="gen")
    assert [p.name for p in paths] == ["gen-0.png", "gen-1.png"]
    with Image.open(paths[1]) as im:
        lineage = json.loads(im.text["assetrag"])
        assert im.size == (48, 32)
    assert lineage == {
        "prompt": "a blue watch",
        "model": "m",
        "backend": "b",
        "reference_ids": ["r1", "r2"],
        "finish_reason": "STOP",
        "elapsed_s": 1.235,
        "warnings": [],
        "seed": 4,
    }


def test_every_backend_satisfies_the_protocol(tmp_path):
    from assetrag.generation.board import BoardGenerator
    from assetrag.generation.gemini import GeminiGenerator
    from assetrag.generation.openai_images import OpenAIImageGenerator

    (tmp_path / "model_index.json").write_text("{}")
    from assetrag.generation.diffusers_local import DiffusersGenerator

    for gen in (GeminiGenerator(), OpenAIImageGenerator(), BoardGenerator(), DiffusersGenerator(tmp_path)):
        assert isinstance(gen, Generator)
        assert isinstance(gen.max_reference_images, int) and gen.max_reference_images >= 1
    assert GeminiGenerator().external and OpenAIImageGenerator().external
    assert not BoardGenerator().external and not DiffusersGenerator(tmp_path).external
