"""The Gemini backend through the real google-genai SDK against the fake Gemini server."""

from __future__ import annotations

import base64
import socket
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from assetrag.generation import (
    GenerationAuthError,
    GenerationBlocked,
    GenerationError,
    GenerationNoImage,
    GenerationOptions,
    GenerationOptionsError,
    GenerationRateLimited,
    GenerationUnavailable,
)
from assetrag.generation.gemini import GeminiGenerator


@pytest.fixture
def gen(gemini_server):
    return GeminiGenerator(api_key=gemini_server.api_key, base_url=gemini_server.url)


def test_success_sends_prompt_references_and_config_on_the_wire(gen, gemini_server, refs, fast):
    opts = replace(fast, aspect_ratio="16:9", seed=7)
    result = gen.generate("the watch on a beach", refs[:3], opts)

    (req,) = gemini_server.requests
    assert req.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert req.header("x-goog-api-key") == gemini_server.api_key
    assert req.info["texts"] == [
        "the watch on a beach",
        "Reference 1: blue watch",
        "Reference 2: diamond necklace",
        "Reference 3: style",
    ]
    assert req.info["mime_types"] == ["image/png"] * 3
    for sent, ref in zip(req.images, refs, strict=True):
        assert np.array_equal(np.asarray(sent.convert("RGB")), np.asarray(ref.image))
    config = req.json["generationConfig"]
    assert config["responseModalities"] == ["IMAGE"]
    assert config["imageConfig"] == {"aspectRatio": "16:9"}
    assert config["seed"] == 7
    # the part order on the wire: text, then (label, image) per reference
    parts = req.json["contents"][0]["parts"]
    assert [("text" in p, "inlineData" in p or "inline_data" in p) for p in parts] == [(True, False)] + [
        (True, False),
        (False, True),
    ] * 3

    assert result.backend == "gemini" and result.model == "gemini-2.5-flash-image"
    assert result.image.size == (1344, 768)  # the model's 16:9 size
    assert result.finish_reason == "STOP"
    assert result.reference_ids == ["sha-0", "sha-1", "sha-2"]
    assert result.prompt == "the watch on a beach"
    assert result.warnings == []
    assert result.metadata["attempts"] == 1
    assert result.metadata["usage"][0]["total_token_count"] > 0
    # the fake's image is the mean of what it received: proof the bytes round-tripped
    expected = np.mean(
        [np.asarray(r.image.resize((1344, 768), Image.Resampling.BILINEAR), np.float32) for r in refs], axis=0
    )
    assert np.abs(np.asarray(result.image.convert("RGB"), np.float32) - expected).mean() < 1.0


def test_include_text_asks_for_text_and_returns_the_caption(gemini_server, refs, fast):
    gen = GeminiGenerator(api_key=gemini_server.api_key, base_url=gemini_server.url, include_text=True)
    result = gen.generate("a poster", refs[:1], fast)
    assert gemini_server.requests[0].json["generationConfig"]["responseModalities"] == ["TEXT", "IMAGE"]
    assert result.text == "Here is the image you asked for."
    assert len(result.images) == 1


def test_no_references_is_text_to_image(gen, gemini_server, fast):
    result = gen.generate("a red bag", [], fast)
    assert gemini_server.requests[0].info["texts"] == ["a red bag"]
    assert result.image.size == (1024, 1024)


def test_pro_model_takes_an_image_size_and_14_references(gemini_server, refs, fast):
    gemini_server.scale = 1 / 16  # keep the 2K image small; the request is what matters
    gen = GeminiGenerator("gemini-3-pro-image-preview", api_key=gemini_server.api_key, base_url=gemini_server.url)
    assert gen.max_reference_images == 14
    result = gen.generate("x", refs * 4, replace(fast, size="2K", aspect_ratio="1:1"))
    req = gemini_server.requests[0]
    assert req.path.endswith("/models/gemini-3-pro-image-preview:generateContent")
    assert req.json["generationConfig"]["imageConfig"] == {"aspectRatio": "1:1", "imageSize": "2K"}
    assert len(req.images) == 12
    assert result.image.size == (128, 128)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (GenerationOptions(aspect_ratio="7:5"), "'7:5' is not accepted"),
        (GenerationOptions(size="2K"), "does not take a size"),
        (GenerationOptions(n=9), "use 1 to 4"),
    ],
)
def test_bad_options_fail_before_any_request(gen, gemini_server, refs, options, needle):
    with pytest.raises(GenerationOptionsError, match=needle) as info:
        gen.generate("x", refs[:1], options)
    if options.aspect_ratio:
        assert "16:9" in str(info.value)  # the accepted values are listed
    assert gemini_server.requests == []


def test_too_many_references_for_the_model(gen, gemini_server, refs, fast):
    with pytest.raises(GenerationOptionsError, match="takes at most 3"):
        gen.generate("x", refs + refs[:1], fast)
    assert gemini_server.requests == []


def test_text_only_answer_raises_no_image_with_the_text(gen, gemini_server, refs, fast):
    gemini_server.script(gemini_server.text_only("I cannot create that image."))
    with pytest.raises(GenerationNoImage) as info:
        gen.generate("x", refs[:1], fast)
    assert info.value.text == "I cannot create that image."
    assert "I cannot create that image." in str(info.value)
    assert len(gemini_server.requests) == 1  # not retried


@pytest.mark.parametrize("reason", ["IMAGE_SAFETY", "PROHIBITED_CONTENT", "SAFETY"])
def test_safety_finish_reason_raises_blocked(gen, gemini_server, refs, fast, reason):
    gemini_server.script(gemini_server.finish(reason, message="Unable to show the generated image."))
    with pytest.raises(GenerationBlocked) as info:
        gen.generate("x", refs[:1], fast)
    assert info.value.reason == reason
    assert reason in str(info.value)
    # google-genai 3.6 drops `finishMessage` when converting Gemini API responses, so it cannot be shown
    if reason != "PROHIBITED_CONTENT":
        assert "HARM_CATEGORY_SEXUALLY_EXPLICIT" in str(info.value)
    assert len(gemini_server.requests) == 1


def test_no_image_finish_reason_raises_no_image(gen, gemini_server, refs, fast):
    gemini_server.script(gemini_server.finish("NO_IMAGE"))
    with pytest.raises(GenerationNoImage, match="NO_IMAGE"):
        gen.generate("x", refs[:1], fast)


def test_prompt_block_reason_raises_blocked(gen, gemini_server, refs, fast):
    gemini_server.script(gemini_server.prompt_blocked("PROHIBITED_CONTENT"))
    with pytest.raises(GenerationBlocked, match="blocked the prompt") as info:
        gen.generate("x", refs[:1], fast)
    assert info.value.reason == "PROHIBITED_CONTENT"


def test_429_then_success_honours_retry_delay(gen, gemini_server, refs, fast):
    gemini_server.script(gemini_server.rate_limited("0.05s"), gemini_server.image())
    result = gen.generate("x", refs[:1], fast)
    assert len(gemini_server.requests) == 2
    assert result.metadata["attempts"] == 2
    assert any("retried after 0.05s" in w for w in result.warnings)  # the hint beat the 0.01s backoff
    # the retry is the same request
    assert gemini_server.requests[0].json == gemini_server.requests[1].json


def test_429_forever_gives_up_after_bounded_retries(gen, gemini_server, refs, fast):
    gemini_server.always(gemini_server.rate_limited("0.02s"))
    with pytest.raises(GenerationRateLimited) as info:
        gen.generate("x", refs[:1], fast)
    assert len(gemini_server.requests) == fast.max_retries + 1
    assert info.value.attempts == 3
    assert info.value.retry_after_s == pytest.approx(0.02)
    assert "gave up after 3 attempt(s)" in str(info.value)


def test_429_asking_for_a_long_wait_stops_at_the_cap(gen, gemini_server, refs, fast):
    gemini_server.always(gemini_server.rate_limited("30s"))
    with pytest.raises(GenerationRateLimited, match="max_retry_wait_s") as info:
        gen.generate("x", refs[:1], fast)
    assert len(gemini_server.requests) == 1
    assert info.value.retry_after_s == 30


def test_5xx_forever_raises_unavailable(gen, gemini_server, refs, fast):
    gemini_server.always(gemini_server.server_error(500))
    with pytest.raises(GenerationUnavailable) as info:
        gen.generate("x", refs[:1], fast)
    assert info.value.status_code == 500
    assert len(gemini_server.requests) == 3


def test_503_then_success(gen, gemini_server, refs, fast):
    gemini_server.script(gemini_server.server_error(503), gemini_server.image())
    result = gen.generate("x", refs[:1], fast)
    assert len(result.images) == 1 and len(gemini_server.requests) == 2
    assert "overloaded" in result.warnings[0]


def test_timeout_raises_unavailable_without_retrying(gen, gemini_server, refs, fast):
    gemini_server.script(gemini_server.slow(3.0))
    with pytest.raises(GenerationUnavailable, match=r"timeout_s=0\.3") as info:
        gen.generate("x", refs[:1], replace(fast, timeout_s=0.3))
    assert info.value.timed_out
    assert len(gemini_server.requests) == 1
    # the SDK forwarded our timeout to the server as well
    assert gemini_server.requests[0].header("x-server-timeout") is not None


def test_connection_refused_is_unavailable(refs, fast):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    gen = GeminiGenerator(api_key="k", base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(GenerationUnavailable, match="cannot reach") as info:
        gen.generate("x", refs[:1], fast)
    assert info.value.attempts == 3


def test_missing_key_names_the_env_var(gemini_server, refs, fast):
    gen = GeminiGenerator(base_url=gemini_server.url)
    with pytest.raises(GenerationAuthError, match="GEMINI_API_KEY") as info:
        gen.generate("x", refs[:1], fast)
    assert info.value.env_var == "GEMINI_API_KEY"
    assert gemini_server.requests == []


@pytest.mark.parametrize("var", ["GEMINI_API_KEY", "GOOGLE_API_KEY"])
def test_key_and_base_url_from_the_environment(gemini_server, refs, fast, monkeypatch, var):
    monkeypatch.setenv(var, gemini_server.api_key)
    monkeypatch.setenv("ASSETRAG_GEMINI_BASE_URL", gemini_server.url)
    result = GeminiGenerator().generate("x", refs[:1], fast)
    assert len(result.images) == 1
    assert gemini_server.requests[0].info["api_key"] == gemini_server.api_key


def test_invalid_key_raises_auth_error(gemini_server, refs, fast):
    gen = GeminiGenerator(api_key="wrong", base_url=gemini_server.url)
    with pytest.raises(GenerationAuthError, match="API key not valid"):
        gen.generate("x", refs[:1], fast)
    assert len(gemini_server.requests) == 1


def test_unknown_model_is_a_plain_generation_error(gemini_server, refs, fast):
    gen = GeminiGenerator("gemini-0-nope", api_key=gemini_server.api_key, base_url=gemini_server.url)
    with pytest.raises(GenerationError, match="'gemini-0-nope' was not found") as info:
        gen.generate("x", refs[:1], fast)
    assert type(info.value) is GenerationError


def test_n_images_are_n_requests_with_successive_seeds(gen, gemini_server, refs, fast):
    result = gen.generate("x", refs[:1], replace(fast, n=2, seed=10))
    assert [r.json["generationConfig"]["seed"] for r in gemini_server.requests] == [10, 11]
    assert len(result.images) == 2


def test_extra_config_fields_pass_through(gen, gemini_server, refs, fast):
    result = gen.generate("x", refs[:1], replace(fast, extra={"temperature": 0.2, "bogus": 1}))
    assert gemini_server.requests[0].json["generationConfig"]["temperature"] == 0.2
    assert result.warnings == ["option extra['bogus'] is not used by the Gemini backend"]


def test_inline_images_are_base64_png(gen, gemini_server, refs, fast):
    gen.generate("x", refs[:1], fast)
    part = gemini_server.requests[0].json["contents"][0]["parts"][2]
    blob = part.get("inlineData") or part["inline_data"]
    data = blob["data"]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
