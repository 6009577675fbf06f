"""The values generators exchange (references, options, results) and the `Generator` protocol."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from PIL import Image

from assetrag.errors import AssetragError
from assetrag.generation import (
    GenerationError,
    GenerationOptionsError,
    GenerationRateLimited,
    GenerationResult,
    GenerationUnavailable,
    Generator,
    Reference,
)
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


def test_reference_converts_like_decode():
    """One `to_rgb` (assetrag.decode's): a 16-bit grey image is scaled to 8 bits, not clipped to white."""
    grey16 = Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16))
    assert Reference(id="g16", image=grey16).image.getpixel((0, 0)) == (155, 155, 155)  # 40000/65535*255


def test_reference_from_path_uses_the_store_id(tmp_path):
    path = tmp_path / "watch.png"
    make_image(1).save(path)
    ref = Reference.from_path(path, label="blue watch", score=0.8)
    assert ref.id == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ref.path == str(path) and ref.label == "blue watch" and ref.image.size == (48, 32)


def test_errors_are_assetrag_errors():
    for cls in (GenerationError, GenerationOptionsError, GenerationRateLimited, GenerationUnavailable):
        assert issubclass(cls, AssetragError)


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
