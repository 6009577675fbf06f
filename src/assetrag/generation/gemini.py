"""Gemini image models ("Nano Banana") through the official `google-genai` SDK.

    gen = GeminiGenerator()                       # gemini-2.5-flash-image, key from GEMINI_API_KEY
    result = gen.generate("the watch on a beach", refs, GenerationOptions(aspect_ratio="16:9"))

The request is one `models.generate_content` call: the prompt, then per reference a short text
part naming it ("Reference 2: blue watch") followed by the image as an inline PNG part.
The SDK's own retries are switched off; 429 / 5xx / connection failures are retried here, a
bounded number of times (see `GenerationOptions`). `options.extra` keys that are fields of
`google.genai.types.GenerateContentConfig` (e.g. `temperature`, `safety_settings`) are passed on.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from assetrag.generation.backend import RemoteBackend, missing_module, png_bytes
from assetrag.generation.errors import (
    GenerationAuthError,
    GenerationBlocked,
    GenerationError,
    GenerationNoImage,
    GeneratorSetupError,
)
from assetrag.generation.retry import Stopwatch, Verdict, status_verdict
from assetrag.generation.types import GenerationOptions, GenerationResult, Reference

BACKEND = "gemini"
DEFAULT_MODEL = "gemini-2.5-flash-image"
KEY_ENV_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
BASE_URL_ENV = "ASSETRAG_GEMINI_BASE_URL"
DEFAULT_API_VERSION = "v1beta"

ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")


def unavailable() -> str | None:
    """Why `GeminiGenerator()` cannot run on this machine (no key, no SDK), or None; never says a key's value."""
    if not any(os.environ.get(var) for var in KEY_ENV_VARS):
        return f"set {KEY_ENV_VARS[0]} (or {KEY_ENV_VARS[1]}) on the server"
    if missing_module("google.genai"):
        return "install the google-genai package on the server (pip install google-genai)"
    return None


@dataclass(frozen=True)
class GeminiModel:
    """What one Gemini image model accepts."""

    max_reference_images: int
    aspect_ratios: tuple[str, ...] = ASPECT_RATIOS
    sizes: tuple[str, ...] = ()  # ImageConfig.image_size values; () = the model has one size


MODELS: dict[str, GeminiModel] = {
    # Google documents "up to 3 images" as what works best for 2.5 Flash Image.
    "gemini-2.5-flash-image": GeminiModel(max_reference_images=3),
    # Gemini 3 Pro Image takes up to 14 reference images and renders 1K / 2K / 4K.
    "gemini-3-pro-image-preview": GeminiModel(max_reference_images=14, sizes=("1K", "2K", "4K")),
}
_UNKNOWN_MODEL = GeminiModel(max_reference_images=3)

# Finish reasons that mean "the safety / policy filter stopped it", as opposed to "no image".
BLOCK_FINISH_REASONS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
    }
)
MAX_IMAGES_PER_CALL = 4  # n > 1 is n sequential requests; keep the cost of a typo bounded

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


class GeminiGenerator(RemoteBackend):
    """Generator backed by a Gemini image model (external: prompt and images go to Google)."""

    name = BACKEND
    label = "Gemini"
    max_images_per_call = MAX_IMAGES_PER_CALL

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        include_text: bool = False,
        label_references: bool = True,
        max_reference_images: int | None = None,
    ) -> None:
        """`base_url` defaults to $ASSETRAG_GEMINI_BASE_URL, then Google's endpoint.

        `include_text` asks for TEXT and IMAGE (the model may then add a caption); by default only
        IMAGE is requested. `label_references` puts "Reference i: <label>" before each image.
        `max_reference_images` overrides the model table (for models it does not know).
        """
        self.model = model or DEFAULT_MODEL
        spec = MODELS.get(self.model, _UNKNOWN_MODEL)
        self.known_model = self.model in MODELS
        self.max_reference_images = max_reference_images or spec.max_reference_images
        self.aspect_ratios = spec.aspect_ratios
        self.sizes = spec.sizes
        self.base_url = base_url or os.environ.get(BASE_URL_ENV) or None
        self.api_version = api_version
        self.include_text = include_text
        self.label_references = label_references
        self._api_key = api_key
        self._client: Any = None

    # -- generate ---------------------------------------------------------------------------------

    def _generate(
        self, prompt: str, references: Sequence[Reference], opts: GenerationOptions, watch: Stopwatch
    ) -> GenerationResult:
        client = self._get_client()
        from google.genai import types

        contents = self._contents(prompt, references, types)
        warnings: list[str] = []
        if not self.known_model:
            warnings.append(
                f"model {self.model!r} is not in assetrag's Gemini table; assumed "
                f"{self.max_reference_images} reference images and the standard aspect ratios"
            )
        config_extra = self._config_extra(opts, types, warnings)

        images: list[Image.Image] = []
        texts: list[str] = []
        finish_reasons: list[str] = []
        usage: list[dict[str, Any]] = []
        total_attempts = 0
        for i in range(opts.n):
            seed = None if opts.seed is None else opts.seed + i
            config = self._config(opts, seed, config_extra, types)

            def send(config: Any = config) -> Any:
                return client.models.generate_content(model=self.model, contents=contents, config=config)

            response, attempts, notes = self._send(send, opts)
            total_attempts += attempts
            warnings.extend(notes)
            try:
                got, text, reason = _read_response(response, self.model)
            except GenerationError as exc:
                exc.attempts = total_attempts
                raise
            images.extend(got)
            if text:
                texts.append(text)
            finish_reasons.append(reason)
            if reason not in ("STOP", ""):
                warnings.append(f"image {i} finished with reason {reason}")
            usage.append(_usage(response))

        return self._result(
            prompt,
            references,
            watch,
            images,
            text="\n".join(texts) or None,
            finish_reason=finish_reasons[-1] if finish_reasons else None,
            warnings=warnings,
            metadata={
                "seed": opts.seed,
                "aspect_ratio": opts.aspect_ratio,
                "image_size": opts.size,
                "attempts": total_attempts,
                "usage": usage,
            },
        )

    # -- request ----------------------------------------------------------------------------------

    def _api_key_value(self) -> str:
        if self._api_key:
            return self._api_key
        for var in KEY_ENV_VARS:
            value = os.environ.get(var)
            if value:
                return value
        raise GenerationAuthError(
            "no Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY) to a key from "
            "https://aistudio.google.com/apikey, or pass api_key=",
            env_var=KEY_ENV_VARS[0],
            backend=BACKEND,
        )

    def _get_client(self) -> Any:
        if self._client is None:
            key = self._api_key_value()
            try:
                from google import genai
                from google.genai import types
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise GeneratorSetupError(
                    "the Gemini backend needs the google-genai package: pip install google-genai",
                    backend=BACKEND,
                ) from exc
            http = types.HttpOptions(
                base_url=self.base_url,
                api_version=self.api_version,
                # attempts=1: the SDK does not retry; call_with_retries owns retries.
                retry_options=types.HttpRetryOptions(attempts=1),
            )
            self._client = genai.Client(api_key=key, vertexai=False, http_options=http)
        return self._client

    def _contents(self, prompt: str, references: Sequence[Reference], types: Any) -> list[Any]:
        contents: list[Any] = [types.Part(text=prompt)]
        for i, ref in enumerate(references, start=1):
            if self.label_references:
                contents.append(types.Part(text=f"Reference {i}: {ref.label}"))
            contents.append(types.Part.from_bytes(data=png_bytes(ref.image), mime_type="image/png"))
        return contents

    def _config_extra(self, opts: GenerationOptions, types: Any, warnings: list[str]) -> dict[str, Any]:
        reserved = {"response_modalities", "image_config", "seed", "http_options"}
        return self._extra_params(opts, types.GenerateContentConfig.model_fields.keys() - reserved, warnings)

    def _config(self, opts: GenerationOptions, seed: int | None, extra: dict[str, Any], types: Any) -> Any:
        image_config = None
        if opts.aspect_ratio or opts.size:
            image_config = types.ImageConfig(aspect_ratio=opts.aspect_ratio, image_size=opts.size)
        return types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"] if self.include_text else ["IMAGE"],
            image_config=image_config,
            seed=seed,
            # HttpOptions.timeout is in milliseconds.
            http_options=types.HttpOptions(timeout=max(1, round(opts.timeout_s * 1000))),
            **extra,
        )

    # -- errors -----------------------------------------------------------------------------------

    def _classify(self, exc: Exception, opts: GenerationOptions) -> Verdict | None:
        from google.genai import errors as genai_errors

        if isinstance(exc, genai_errors.APIError):
            return _classify_api_error(exc, self.model)
        if isinstance(exc, _timeout_errors()):
            return self._timed_out(opts)
        if isinstance(exc, _transport_errors()):
            return self._unreachable(exc)
        return None


def _httpx_errors(name: str) -> list[type[BaseException]]:
    """The exception class `name` of httpx and of httpx2, for those of the two that are installed."""
    classes: list[type[BaseException]] = []
    for mod in ("httpx", "httpx2"):
        try:
            module = __import__(mod)
        except ImportError:
            continue
        classes.append(getattr(module, name))
    return classes


def _timeout_errors() -> tuple[type[BaseException], ...]:
    return tuple(_httpx_errors("TimeoutException")) or (TimeoutError,)


def _transport_errors() -> tuple[type[BaseException], ...]:
    return (ConnectionError, *_httpx_errors("TransportError"))


def _error_details(exc: Any) -> list[dict[str, Any]]:
    body = exc.details if isinstance(exc.details, dict) else {}
    error = body.get("error", body)
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details or [] if isinstance(d, dict)]


def parse_duration(value: Any) -> float | None:
    """Seconds from a protobuf Duration in JSON form ("2s", "0.05s"), else None."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            return float(m.group(1))
    return None


def _classify_api_error(exc: Any, model: str) -> Verdict:
    code = int(exc.code or 0)
    status = exc.status or ""
    message = exc.message or str(exc)
    details = _error_details(exc)
    reasons = {d.get("reason") for d in details if d.get("@type") == _ERROR_INFO}
    delay = None
    for d in details:
        if d.get("@type") == _RETRY_INFO:
            delay = parse_duration(d.get("retryDelay"))
    read_as = code
    if code != 429 and ("API_KEY_INVALID" in reasons or "API key" in message):
        read_as = 401  # Gemini answers a bad key with 400 INVALID_ARGUMENT: a key problem all the same
    return status_verdict(
        "Gemini",
        read_as,
        f"{code} {status}: {message}" if status else f"{code}: {message}",
        backend=BACKEND,
        model=model,
        key_hint="set GEMINI_API_KEY (or GOOGLE_API_KEY) to a valid key from https://aistudio.google.com/apikey",
        env_var=KEY_ENV_VARS[0],
        retry_after_s=delay,
        rate_hint="wait and try again, lower concurrency, or check the project's quota",
    )


# ---- response --------------------------------------------------------------------------------------


def _enum_value(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def _read_response(response: Any, model: str) -> tuple[list[Image.Image], str | None, str]:
    """(images, text, finish reason) from a GenerateContentResponse, or the right error."""
    candidates = response.candidates or []
    if not candidates:
        feedback = response.prompt_feedback
        reason = _enum_value(getattr(feedback, "block_reason", None))
        if reason:
            detail = getattr(feedback, "block_reason_message", None)
            raise GenerationBlocked(
                f"Gemini blocked the prompt ({reason}{': ' + detail if detail else ''}); rephrase the brief "
                "or choose other references",
                reason=reason,
                backend=BACKEND,
            )
        raise GenerationNoImage(f"Gemini ({model}) returned no candidates and no reason", backend=BACKEND)

    candidate = candidates[0]
    reason = _enum_value(candidate.finish_reason)
    parts = (candidate.content.parts if candidate.content else None) or []
    images: list[Image.Image] = []
    texts: list[str] = []
    for part in parts:
        if part.thought:  # thinking models may emit draft images/notes marked as thoughts
            continue
        blob = part.inline_data
        if blob is not None and blob.data and (blob.mime_type or "image/").startswith("image/"):
            with Image.open(io.BytesIO(blob.data)) as im:
                im.load()
                images.append(im.copy())
        elif part.text:
            texts.append(part.text)
    text = "\n".join(texts) or None
    if images:
        return images, text, reason
    if reason in BLOCK_FINISH_REASONS:
        blocked = [_enum_value(r.category) for r in (candidate.safety_ratings or []) if getattr(r, "blocked", False)]
        extra = f"; categories: {', '.join(blocked)}" if blocked else ""
        finish_message = candidate.finish_message
        raise GenerationBlocked(
            f"Gemini's safety filter stopped the image ({reason}{': ' + finish_message if finish_message else ''}"
            f"{extra}); rephrase the brief or choose other references",
            reason=reason,
            backend=BACKEND,
        )
    said = f": {text[:300]}" if text else ""
    raise GenerationNoImage(
        f"Gemini ({model}) answered without an image (finish reason {reason or 'unknown'}){said}",
        text=text or "",
        backend=BACKEND,
    )


def _usage(response: Any) -> dict[str, Any]:
    meta = response.usage_metadata
    out: dict[str, Any] = {}
    if response.model_version:
        out["model_version"] = response.model_version
    if response.response_id:
        out["response_id"] = response.response_id
    if meta is not None:
        for key in ("prompt_token_count", "candidates_token_count", "total_token_count"):
            value = getattr(meta, key, None)
            if value is not None:
                out[key] = value
    return out
