"""OpenAI GPT image models through the official `openai` SDK (`images.edit` with reference images).

    gen = OpenAIImageGenerator()                  # gpt-image-2, key from OPENAI_API_KEY
    result = gen.generate("the watch on a beach", refs, GenerationOptions(aspect_ratio="3:2"))

All references go in one `images.edit` call as PNG files (at most 16). The SDK's retries are off
(`max_retries=0`); 429 / 5xx / connection failures are retried here, a bounded number of times.
`aspect_ratio` picks a size when `size` is unset. GPT image models take no seed (a warning says
so). `options.extra` may hold `quality`, `background`, `output_format`, `output_compression`,
`input_fidelity`, `safety_identifier`; anything else is reported in the warnings.
"""

from __future__ import annotations

import base64
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
    GenerationNoImage,
    GenerationOptionsError,
    GenerationRateLimited,
    GeneratorSetupError,
)
from assetrag.generation.options import parse_size
from assetrag.generation.retry import Stopwatch, Verdict, status_verdict
from assetrag.generation.types import GenerationOptions, GenerationResult, Reference

BACKEND = "openai"
# gpt-image-1 was shut down on 2026-10-23 (see the openai SDK's ImageModel notes); gpt-image-2 is
# the plain, undated successor every GPT image feature here works with.
DEFAULT_MODEL = "gpt-image-2"
KEY_ENV_VAR = "OPENAI_API_KEY"
BASE_URL_ENV = "ASSETRAG_OPENAI_BASE_URL"
MAX_IMAGES_PER_CALL = 10

STANDARD_SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536")
STANDARD_RATIOS = {"1:1": "1024x1024", "3:2": "1536x1024", "2:3": "1024x1536"}
# Models that take any WIDTHxHEIGHT (multiples of 16, ratio 1:3..3:1, ≤ 3840x2160) get more ratios.
CUSTOM_RATIOS = {
    **STANDARD_RATIOS,
    "4:3": "1536x1152",
    "3:4": "1152x1536",
    "16:9": "1536x864",
    "9:16": "864x1536",
    "21:9": "1680x720",
}
CUSTOM_SIZE_RULE = "WIDTHxHEIGHT with both multiples of 16, aspect between 1:3 and 3:1, at most 3840x2160"
EXTRA_PARAMS = ("quality", "background", "output_format", "output_compression", "input_fidelity", "safety_identifier")


def unavailable() -> str | None:
    """Why `OpenAIImageGenerator()` cannot run on this machine (no key, no SDK), or None; never says the key."""
    if not os.environ.get(KEY_ENV_VAR):
        return f"set {KEY_ENV_VAR} on the server"
    if missing_module("openai"):
        return "install the openai package on the server (pip install openai)"
    return None


BLOCK_CODES = frozenset({"moderation_blocked", "content_policy_violation"})


@dataclass(frozen=True)
class OpenAIModel:
    """What one GPT image model accepts for edits."""

    max_reference_images: int = 16
    custom_sizes: bool = False
    retired: str | None = None

    @property
    def ratios(self) -> dict[str, str]:
        return CUSTOM_RATIOS if self.custom_sizes else STANDARD_RATIOS


MODELS: dict[str, OpenAIModel] = {
    "gpt-image-2": OpenAIModel(custom_sizes=True),
    "gpt-image-2.5-sunburst": OpenAIModel(custom_sizes=True),
    "gpt-image-2.5-flare": OpenAIModel(custom_sizes=True),
    "gpt-image-1.5": OpenAIModel(),
    "gpt-image-1-mini": OpenAIModel(),
    "chatgpt-image-latest": OpenAIModel(),
    "gpt-image-1": OpenAIModel(retired="OpenAI shut gpt-image-1 down on 2026-10-23; use gpt-image-2"),
}
_UNKNOWN_MODEL = OpenAIModel()


def custom_size_ok(size: str) -> bool:
    """True for a WIDTHxHEIGHT the custom-size GPT image models accept."""
    dims = parse_size(size)
    if dims is None:
        return False
    w, h = dims
    return (
        w > 0
        and h > 0
        and w % 16 == 0
        and h % 16 == 0
        and 1 / 3 <= w / h <= 3
        and max(w, h) <= 3840
        and min(w, h) <= 2160
    )


class OpenAIImageGenerator(RemoteBackend):
    """Generator backed by OpenAI image edits (external: prompt and images go to OpenAI)."""

    name = BACKEND
    label = "OpenAI"
    max_images_per_call = MAX_IMAGES_PER_CALL
    needs_reference = "OpenAI image edits need at least one reference image"

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
    ) -> None:
        """`base_url` defaults to $ASSETRAG_OPENAI_BASE_URL, then the SDK's own default."""
        self.model = model or DEFAULT_MODEL
        self._spec = MODELS.get(self.model, _UNKNOWN_MODEL)
        self.known_model = self.model in MODELS
        self.max_reference_images = self._spec.max_reference_images
        self.aspect_ratios = tuple(self._spec.ratios)
        self.sizes = STANDARD_SIZES
        self.size_ok = custom_size_ok if self._spec.custom_sizes else None
        self.size_rule = CUSTOM_SIZE_RULE if self._spec.custom_sizes else ""
        self.base_url = base_url or os.environ.get(BASE_URL_ENV) or None
        self.organization = organization
        self._api_key = api_key
        self._client: Any = None

    # -- public -----------------------------------------------------------------------------------

    def validate_options(self, options: GenerationOptions) -> None:
        super().validate_options(options)
        if options.size and options.aspect_ratio:
            dims = parse_size(options.size)
            want = parse_size(self._spec.ratios[options.aspect_ratio])
            if dims and want and abs(dims[0] / dims[1] - want[0] / want[1]) > 0.02:
                raise GenerationOptionsError(
                    f"size {options.size!r} does not have aspect ratio {options.aspect_ratio}; give one of them",
                    backend=BACKEND,
                )

    def request_size(self, options: GenerationOptions) -> str | None:
        """The `size` sent to the API for these options (None: let the API choose)."""
        if options.size:
            return options.size
        if options.aspect_ratio:
            return self._spec.ratios[options.aspect_ratio]
        return None

    def _generate(
        self, prompt: str, references: Sequence[Reference], opts: GenerationOptions, watch: Stopwatch
    ) -> GenerationResult:
        client = self._get_client()
        warnings: list[str] = []
        if self._spec.retired:
            warnings.append(self._spec.retired)
        if not self.known_model:
            warnings.append(f"model {self.model!r} is not in assetrag's OpenAI table; assumed 16 references")
        if opts.seed is not None:
            warnings.append("OpenAI image edits take no seed; the seed was ignored")
        params = self._extra_params(opts, EXTRA_PARAMS, warnings)
        size = self.request_size(opts)
        if size:
            params["size"] = size
        files = [
            (f"ref-{i}-{_safe(ref.id)[:16]}.png", png_bytes(ref.image), "image/png")
            for i, ref in enumerate(references, start=1)
        ]

        def send() -> Any:
            return client.images.edit(
                model=self.model,
                image=files,
                prompt=prompt,
                n=opts.n,
                timeout=opts.timeout_s,
                **params,
            )

        response, attempts, notes = self._send(send, opts)
        warnings.extend(notes)
        images = []
        for item in response.data or []:
            if item.b64_json:
                with Image.open(io.BytesIO(base64.b64decode(item.b64_json))) as im:
                    im.load()
                    images.append(im.copy())
        if not images:
            raise GenerationNoImage(f"OpenAI ({self.model}) returned no image data", backend=BACKEND, attempts=attempts)
        revised = [item.revised_prompt for item in response.data if getattr(item, "revised_prompt", None)]
        usage = response.usage.model_dump() if getattr(response, "usage", None) is not None else None
        return self._result(
            prompt,
            references,
            watch,
            images,
            text="\n".join(revised) or None,
            warnings=warnings,
            metadata={
                "size": getattr(response, "size", None) or size,
                "quality": getattr(response, "quality", None),
                "attempts": attempts,
                "usage": usage,
            },
        )

    # -- client / errors --------------------------------------------------------------------------

    def _get_client(self) -> Any:
        if self._client is None:
            key = self._api_key or os.environ.get(KEY_ENV_VAR)
            if not key:
                raise GenerationAuthError(
                    f"no OpenAI API key: set {KEY_ENV_VAR} to a key from "
                    "https://platform.openai.com/api-keys, or pass api_key=",
                    env_var=KEY_ENV_VAR,
                    backend=BACKEND,
                )
            try:
                import openai
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise GeneratorSetupError(
                    "the OpenAI backend needs the openai package: pip install openai", backend=BACKEND
                ) from exc
            # max_retries=0: the SDK does not retry; call_with_retries owns retries.
            self._client = openai.OpenAI(
                api_key=key, base_url=self.base_url, organization=self.organization, max_retries=0
            )
        return self._client

    def _classify(self, exc: Exception, opts: GenerationOptions) -> Verdict | None:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return self._timed_out(opts)
        if isinstance(exc, openai.APIConnectionError):
            return self._unreachable(exc)
        if not isinstance(exc, openai.APIStatusError):
            return None
        status = exc.status_code
        code = exc.code or ""
        message = _error_message(exc)
        if code in BLOCK_CODES or (status == 400 and exc.type == "image_generation_user_error" and "safety" in message):
            return Verdict(
                GenerationBlocked(
                    f"OpenAI's safety system rejected the request ({code or exc.type}): {message}; rephrase "
                    "the brief or choose other references",
                    reason=code or "moderation_blocked",
                    backend=BACKEND,
                )
            )
        if status == 429 and code == "insufficient_quota":
            return Verdict(
                GenerationRateLimited(
                    f"OpenAI quota exhausted ({message}); add credit or raise the limit for this project",
                    backend=BACKEND,
                )
            )
        return status_verdict(
            "OpenAI",
            status,
            f"{status}{' ' + code if code else ''}: {message}",
            backend=BACKEND,
            model=self.model,
            key_hint=f"set {KEY_ENV_VAR} to a valid key with access to this model",
            env_var=KEY_ENV_VAR,
            retry_after_s=_retry_after(exc.response.headers) if status == 429 else None,
        )


def _error_message(exc: Any) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return str(exc.message)


def _retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds), as the openai SDK reads them."""
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return float(ms) / 1000
        seconds = headers.get("retry-after")
        if seconds is not None:
            return float(seconds)
    except (TypeError, ValueError):
        return None
    return None


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text) or "ref"
