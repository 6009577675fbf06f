"""Image generation grounded on reference images, behind one `Generator` protocol.

    from assetrag.generation import get_generator, GenerationOptions, Reference
    gen = get_generator("gemini")                          # or "gemini:gemini-3-pro-image-preview"
    result = gen.generate(prompt, references, GenerationOptions(aspect_ratio="16:9"))

Backends, by name: "gemini" (Google Gemini image models, google-genai), "openai" (GPT image
edits, openai), "diffusers" (a local img2img checkpoint), "board" (an offline reference board).
Only this package imports vendor SDKs, and each only when its backend is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from assetrag.generation.errors import (
    GenerationAuthError,
    GenerationBlocked,
    GenerationError,
    GenerationNoImage,
    GenerationOptionsError,
    GenerationRateLimited,
    GenerationUnavailable,
    GeneratorSetupError,
)
from assetrag.generation.types import (
    STYLE_LABEL,
    GenerationOptions,
    GenerationResult,
    Generator,
    Reference,
)

__all__ = [
    "STYLE_LABEL",
    "GenerationAuthError",
    "GenerationBlocked",
    "GenerationError",
    "GenerationNoImage",
    "GenerationOptions",
    "GenerationOptionsError",
    "GenerationRateLimited",
    "GenerationResult",
    "GenerationUnavailable",
    "Generator",
    "GeneratorSetupError",
    "Reference",
    "generator_availability",
    "get_generator",
    "list_generators",
    "why_unavailable",
]

# name -> (module, class, keyword the "name:value" shorthand sets)
_REGISTRY: dict[str, tuple[str, str, str | None]] = {
    "gemini": ("assetrag.generation.gemini", "GeminiGenerator", "model"),
    "openai": ("assetrag.generation.openai_images", "OpenAIImageGenerator", "model"),
    "diffusers": ("assetrag.generation.diffusers_local", "DiffusersGenerator", "checkpoint"),
    "board": ("assetrag.generation.board", "BoardGenerator", None),
}


def list_generators() -> list[str]:
    """The backend names `get_generator` accepts."""
    return list(_REGISTRY)


def generator_availability() -> list[dict[str, Any]]:
    """Each backend's name, whether it can run on this machine with its settings from the environment, and
    if not, why (the setting or package it lacks, by name: never a key's value). Imports no vendor SDK."""
    out: list[dict[str, Any]] = []
    for name in _REGISTRY:
        reason = why_unavailable(name)
        out.append({"name": name, "available": reason is None, "reason": reason})
    return out


def why_unavailable(spec: str) -> str | None:
    """Why the backend `spec` names (as `get_generator` takes it) cannot run here, or None when it can — or when
    this cannot be told before building it: an unknown name (`get_generator` says so), or `diffusers:<dir>`,
    whose checkpoint is its own rather than the `ASSETRAG_DIFFUSERS_CHECKPOINT` setting."""
    name, sep, _ = spec.strip().partition(":")
    entry = _REGISTRY.get(name.lower())
    if entry is None or (name.lower() == "diffusers" and sep):
        return None
    return importlib.import_module(entry[0]).unavailable()


def get_generator(name: str, **kwargs: Any) -> Generator:
    """The generator called `name`, built with `kwargs` (see each backend's constructor).

    `name` may carry the model or checkpoint after a colon: "gemini:gemini-3-pro-image-preview",
    "openai:gpt-image-1.5", "diffusers:/models/sd-1.5".
    """
    backend, sep, value = name.strip().partition(":")
    backend = backend.lower()
    if backend not in _REGISTRY:
        raise GeneratorSetupError(
            f"unknown generator {name!r}; use one of: {', '.join(_REGISTRY)}", backend=backend or None
        )
    module_name, class_name, shorthand = _REGISTRY[backend]
    if sep:
        if shorthand is None or not value:
            raise GeneratorSetupError(
                f"generator {backend!r} takes no ':<value>' suffix (got {name!r})"
                if shorthand is None
                else f"empty {shorthand} after ':' in {name!r}",
                backend=backend,
            )
        if shorthand in kwargs:
            raise GeneratorSetupError(f"{shorthand} given twice: in {name!r} and as an argument", backend=backend)
        kwargs[shorthand] = value
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**kwargs)
