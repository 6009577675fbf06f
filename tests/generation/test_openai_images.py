"""The OpenAI backend through the real openai SDK against the fake OpenAI server."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from assetrag.generation import (
    GenerationAuthError,
    GenerationBlocked,
    GenerationError,
    GenerationOptions,
    GenerationOptionsError,
    GenerationRateLimited,
    GenerationUnavailable,
    Reference,
)
from assetrag.generation.openai_images import OpenAIImageGenerator
from fakes.images import make_image


@pytest.fixture
def gen(openai_server):
    return OpenAIImageGenerator(api_key=openai_server.api_key, base_url=openai_server.base_url)


def test_success_sends_multipart_edit_on_the_wire(gen, openai_server, refs, fast):
    result = gen.generate("the watch on a beach", refs, replace(fast, aspect_ratio="3:2", seed=3))

    (req,) = openai_server.requests
    assert req.path == "/v1/images/edits"
    assert req.header("authorization") == f"Bearer {openai_server.api_key}"
    assert req.header("content-type").startswith("multipart/form-data; boundary=")
    assert req.info["model"] == "gpt-image-2"
    assert req.info["prompt"] == "the watch on a beach"
    assert req.info["n"] == 1
    assert req.info["size"] == "1536x1024"  # from the aspect ratio
    assert req.info["image_field"] == ["image[]"]
    assert req.info["content_types"] == ["image/png"] * 3
    assert req.info["filenames"] == ["ref-1-sha-0.png", "ref-2-sha-1.png", "ref-3-sha-2.png"]
    for sent, ref in zip(req.images, refs, strict=True):
        assert np.array_equal(np.asarray(sent.convert("RGB")), np.asarray(ref.image))
    assert "seed" not in req.form and "response_format" not in req.form

    assert result.backend == "openai" and result.model == "gpt-image-2"
    assert result.image.size == (1536, 1024)
    assert result.reference_ids == ["sha-0", "sha-1", "sha-2"]
    assert result.warnings == ["OpenAI image edits take no seed; the seed was ignored"]
    assert result.metadata["usage"]["total_tokens"] > 0
    assert result.metadata["attempts"] == 1


def test_sizes_and_n(gen, openai_server, refs, fast):
    result = gen.generate("x", refs[:1], replace(fast, size="1536x864", n=2))
    assert openai_server.requests[0].info["size"] == "1536x864"
    assert openai_server.requests[0].info["n"] == 2
    assert [im.size for im in result.images] == [(1536, 864)] * 2


@pytest.mark.parametrize(
    ("model", "options", "needle"),
    [
        ("gpt-image-2", GenerationOptions(size="1000x1000"), "multiples of 16"),
        ("gpt-image-2", GenerationOptions(size="4096x512"), "one of: auto, 1024x1024"),
        ("gpt-image-1.5", GenerationOptions(size="1536x864"), "one of: auto, 1024x1024, 1536x1024, 1024x1536"),
        ("gpt-image-1.5", GenerationOptions(aspect_ratio="16:9"), "use one of: 1:1, 3:2, 2:3"),
        ("gpt-image-2", GenerationOptions(size="1024x1024", aspect_ratio="3:2"), "does not have aspect ratio"),
        ("gpt-image-2", GenerationOptions(n=11), "use 1 to 10"),
    ],
)
def test_bad_options_fail_before_any_request(openai_server, refs, model, options, needle):
    gen = OpenAIImageGenerator(model, api_key=openai_server.api_key, base_url=openai_server.base_url)
    with pytest.raises(GenerationOptionsError, match=needle):
        gen.generate("x", refs[:1], options)
    assert openai_server.requests == []


def test_reference_count_limits(gen, openai_server, fast):
    many = [Reference(id=f"r{i}", image=make_image(i, (16, 16))) for i in range(17)]
    with pytest.raises(GenerationOptionsError, match="takes at most 16"):
        gen.generate("x", many, fast)
    with pytest.raises(GenerationOptionsError, match="at least one reference"):
        gen.generate("x", [], fast)
    assert openai_server.requests == []
    result = gen.generate("x", many[:16], replace(fast, size="1024x1024"))
    assert len(openai_server.requests[0].images) == 16 and result.image.size == (1024, 1024)


@pytest.mark.parametrize("kind", ["moderation_blocked", "content_policy_violation"])
def test_content_policy_errors_raise_blocked(gen, openai_server, refs, fast, kind):
    openai_server.script(getattr(openai_server, kind)())
    with pytest.raises(GenerationBlocked, match="safety system") as info:
        gen.generate("x", refs[:1], fast)
    assert info.value.reason == kind
    assert len(openai_server.requests) == 1


def test_429_then_success_honours_retry_after(gen, openai_server, refs, fast):
    openai_server.script(openai_server.rate_limited(retry_after_ms=50), openai_server.image())
    result = gen.generate("x", refs[:1], fast)
    assert len(openai_server.requests) == 2
    assert any("retried after 0.05s" in w for w in result.warnings)
    # our retry, not the SDK's: the SDK reports retry count 0 on every request it sends
    assert [r.header("x-stainless-retry-count") for r in openai_server.requests] == ["0", "0"]


def test_429_forever_raises_rate_limited(gen, openai_server, refs, fast):
    openai_server.always(openai_server.rate_limited(retry_after_ms=10))
    with pytest.raises(GenerationRateLimited, match="gave up after 3") as info:
        gen.generate("x", refs[:1], fast)
    assert len(openai_server.requests) == 3
    assert info.value.retry_after_s == pytest.approx(0.01)


def test_insufficient_quota_is_not_retried(gen, openai_server, refs, fast):
    openai_server.always(openai_server.insufficient_quota())
    with pytest.raises(GenerationRateLimited, match="quota exhausted"):
        gen.generate("x", refs[:1], fast)
    assert len(openai_server.requests) == 1


def test_5xx_forever_raises_unavailable(gen, openai_server, refs, fast):
    openai_server.always(openai_server.server_error(500))
    with pytest.raises(GenerationUnavailable) as info:
        gen.generate("x", refs[:1], fast)
    assert info.value.status_code == 500
    assert len(openai_server.requests) == 3


def test_503_then_success(gen, openai_server, refs, fast):
    openai_server.script(openai_server.server_error(503), openai_server.image())
    result = gen.generate("x", refs[:1], replace(fast, size="1024x1024"))
    assert len(result.images) == 1 and len(openai_server.requests) == 2


def test_timeout_raises_unavailable(gen, openai_server, refs, fast):
    openai_server.script(openai_server.slow(3.0))
    with pytest.raises(GenerationUnavailable, match=r"timeout_s=0\.3") as info:
        gen.generate("x", refs[:1], replace(fast, timeout_s=0.3))
    assert info.value.timed_out
    assert len(openai_server.requests) == 1


def test_missing_key_names_the_env_var(openai_server, refs, fast):
    gen = OpenAIImageGenerator(base_url=openai_server.base_url)
    with pytest.raises(GenerationAuthError, match="OPENAI_API_KEY") as info:
        gen.generate("x", refs[:1], fast)
    assert info.value.env_var == "OPENAI_API_KEY"
    assert openai_server.requests == []


def test_invalid_key_raises_auth_error(openai_server, refs, fast):
    gen = OpenAIImageGenerator(api_key="sk-wrong-key", base_url=openai_server.base_url)
    with pytest.raises(GenerationAuthError, match="Incorrect API key"):
        gen.generate("x", refs[:1], fast)
    assert len(openai_server.requests) == 1


def test_key_and_base_url_from_the_environment(openai_server, refs, fast, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    monkeypatch.setenv("ASSETRAG_OPENAI_BASE_URL", openai_server.base_url)
    result = OpenAIImageGenerator().generate("x", refs[:1], replace(fast, size="1024x1024"))
    assert len(result.images) == 1
    assert openai_server.requests[0].info["api_key"] == openai_server.api_key


def test_other_4xx_is_a_plain_generation_error(gen, openai_server, refs, fast):
    openai_server.script(openai_server.error(400, "Invalid value for 'quality'.", param="quality"))
    with pytest.raises(GenerationError, match="Invalid value for 'quality'") as info:
        gen.generate("x", refs[:1], replace(fast, extra={"quality": "ultra"}))
    assert type(info.value) is GenerationError
    assert openai_server.requests[0].form["quality"] == ["ultra"]


def test_retired_model_warns(openai_server, refs, fast):
    gen = OpenAIImageGenerator("gpt-image-1", api_key=openai_server.api_key, base_url=openai_server.base_url)
    result = gen.generate("x", refs[:1], replace(fast, size="1024x1024"))
    assert any("gpt-image-1" in w and "2026-10-23" in w for w in result.warnings)
    assert openai_server.requests[0].info["model"] == "gpt-image-1"
