"""The values generators exchange, and the `Generator` protocol every backend satisfies.

A generator turns a prompt plus reference images into new images. Backends differ in how many
references they take, which aspect ratios and sizes they accept, and whether the data leaves the
machine (`external`); they all report failures with the exceptions in `generation.errors`.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from PIL import Image, PngImagePlugin

from assetrag import objects
from assetrag.decode import to_rgb
from assetrag.generation.errors import GenerationOptionsError

STYLE_LABEL = "style"


@dataclass
class Reference:
    """One retrieved asset handed to a generator.

    `label` is the brief item this reference stands for (e.g. "blue watch"), or "style" for a
    brand/style reference. `score` is its retrieval similarity. `image` is always RGB.
    """

    id: str
    image: Image.Image
    path: str | None = None
    label: str = STYLE_LABEL
    score: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.image = to_rgb(self.image)

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        *,
        label: str = STYLE_LABEL,
        score: float = 0.0,
        id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Reference:
        """A reference read from a file or an object URL (s3://…); `id` defaults to the sha256 of its bytes
        (the store's id)."""
        data = objects.read_any(path)
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            image = to_rgb(im)
        return cls(
            id=id or hashlib.sha256(data).hexdigest(),
            image=image,
            path=str(path),
            label=label,
            score=score,
            metadata=dict(metadata or {}),
        )


@dataclass(frozen=True)
class GenerationOptions:
    """What to ask a backend for.

    `aspect_ratio` ("16:9") and `size` (backend-specific: "2K" for Gemini, "1024x1536" for OpenAI,
    "512x512" for diffusers) are checked against the backend's lists by `validate_options`.
    `n` images are requested. Each request may take `timeout_s`; HTTP 429, 5xx and connection
    failures are retried at most `max_retries` times, waiting the provider's hint or
    `retry_backoff_s * 2**k` (whichever is longer), never more than `max_retry_wait_s` in all.
    `extra` holds backend-specific knobs (documented per backend).
    """

    aspect_ratio: str | None = None
    size: str | None = None
    seed: int | None = None
    n: int = 1
    timeout_s: float = 120.0
    max_retries: int = 3
    retry_backoff_s: float = 1.0
    max_retry_wait_s: float = 60.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise GenerationOptionsError(f"n must be ≥ 1, got {self.n}")
        if not self.timeout_s > 0:
            raise GenerationOptionsError(f"timeout_s must be > 0 seconds, got {self.timeout_s}")
        if self.max_retries < 0:
            raise GenerationOptionsError(f"max_retries must be ≥ 0, got {self.max_retries}")
        if self.retry_backoff_s < 0 or self.max_retry_wait_s < 0:
            raise GenerationOptionsError("retry_backoff_s and max_retry_wait_s must be ≥ 0")


@dataclass
class GenerationResult:
    """What a generator produced, with enough context to store it back with its lineage."""

    images: list[Image.Image]
    model: str
    backend: str
    prompt: str = ""
    text: str | None = None
    reference_ids: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    elapsed_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def image(self) -> Image.Image:
        """The first image (every successful result holds at least one)."""
        return self.images[0]

    def lineage(self) -> dict[str, Any]:
        """A JSON-able record of how the images were made (stored with synthetic assets)."""
        return {
            "prompt": self.prompt,
            "model": self.model,
            "backend": self.backend,
            "reference_ids": list(self.reference_ids),
            "finish_reason": self.finish_reason,
            "elapsed_s": round(self.elapsed_s, 3),
            "warnings": list(self.warnings),
            **{k: v for k, v in self.metadata.items() if _jsonable(v)},
        }

    def save(self, out_dir: str | Path, stem: str = "generated") -> list[Path]:
        """Write each image as `<out_dir>/<stem>-<i>.png` with the lineage in a PNG text chunk."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        info = PngImagePlugin.PngInfo()
        info.add_text("assetrag", json.dumps(self.lineage(), ensure_ascii=False))
        paths = []
        for i, image in enumerate(self.images):
            path = out / f"{stem}-{i}.png"
            image.save(path, format="PNG", pnginfo=info)
            paths.append(path)
        return paths


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


@runtime_checkable
class Generator(Protocol):
    """Makes images from a prompt and reference images.

    `max_reference_images` is how many references the model takes (the RAG loop picks that many).
    `aspect_ratios` / `sizes` are the named values `GenerationOptions` may hold for it (a backend
    may accept more sizes by rule; `validate_options` is the authority). `external` is True when
    `generate` sends prompt and references off this machine.
    """

    name: str
    model: str
    max_reference_images: int
    aspect_ratios: tuple[str, ...]
    sizes: tuple[str, ...]
    external: bool

    def validate_options(self, options: GenerationOptions) -> None:
        """Raise `GenerationOptionsError` naming the bad value and the accepted ones."""
        ...

    def generate(
        self,
        prompt: str,
        references: Sequence[Reference],
        options: GenerationOptions | None = None,
    ) -> GenerationResult:
        """New image(s) grounded on `references`; raises a `GenerationError` subclass on failure."""
        ...
