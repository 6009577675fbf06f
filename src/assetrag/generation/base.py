"""The `Generator` protocol, the values it exchanges, and helpers every backend shares.

A generator turns a prompt plus reference images into new images. Backends differ in how many
references they take, which aspect ratios and sizes they accept, and whether the data leaves the
machine (`external`); they all report failures with the exceptions in `generation.errors`.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from PIL import Image, PngImagePlugin

from assetrag.generation.errors import (
    GenerationError,
    GenerationOptionsError,
    GenerationRateLimited,
)

T = TypeVar("T")

STYLE_LABEL = "style"


def to_rgb(image: Image.Image) -> Image.Image:
    """`image` as RGB; transparent areas become white (how a board or a model would see them)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def png_bytes(image: Image.Image, *, compress_level: int = 6) -> bytes:
    """The image encoded as PNG (lossless, so a receiver decodes exactly the pixels we hold)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


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
        """A reference read from a file; `id` defaults to the sha256 of its bytes (the store's id)."""
        data = Path(path).read_bytes()
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


# ---- validation helpers --------------------------------------------------------------------------

_SIZE_RE = re.compile(r"^(\d+)x(\d+)$")


def parse_size(size: str) -> tuple[int, int] | None:
    """(width, height) from "WIDTHxHEIGHT", or None when `size` is not of that form."""
    m = _SIZE_RE.match(size.strip().lower())
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_choice(what: str, value: str, accepted: Sequence[str], *, backend: str, model: str) -> None:
    """Raise unless `value` is one of `accepted`; the message lists them."""
    if value in accepted:
        return
    if not accepted:
        article = "an" if what[:1] in "aeiou" else "a"
        raise GenerationOptionsError(
            f"{backend} model {model!r} does not take {article} {what}; leave it unset (got {value!r})",
            backend=backend,
        )
    raise GenerationOptionsError(
        f"{what} {value!r} is not accepted by {backend} model {model!r}; use one of: {', '.join(accepted)}",
        backend=backend,
    )


def check_options(
    options: GenerationOptions,
    *,
    backend: str,
    model: str,
    aspect_ratios: Sequence[str],
    sizes: Sequence[str],
    max_n: int,
    size_ok: Callable[[str], bool] | None = None,
    size_rule: str = "",
) -> None:
    """Common checks: aspect ratio and size in the backend's lists (or `size_ok`), 1 ≤ n ≤ max_n."""
    if options.aspect_ratio is not None:
        check_choice("aspect ratio", options.aspect_ratio, aspect_ratios, backend=backend, model=model)
    if options.size is not None and not (size_ok is not None and size_ok(options.size)):
        if size_rule and options.size not in sizes:
            raise GenerationOptionsError(
                f"size {options.size!r} is not accepted by {backend} model {model!r}; use one of: "
                f"{', '.join(sizes)}, or {size_rule}",
                backend=backend,
            )
        check_choice("size", options.size, sizes, backend=backend, model=model)
    if options.n > max_n:
        raise GenerationOptionsError(
            f"n={options.n} is more than {backend} model {model!r} makes per call; use 1 to {max_n}",
            backend=backend,
        )


def check_reference_count(references: Sequence[Reference], *, limit: int, backend: str, model: str) -> None:
    """Raise when more references are given than the model takes."""
    if len(references) > limit:
        raise GenerationOptionsError(
            f"{len(references)} reference images given but {backend} model {model!r} takes at most "
            f"{limit}; pass the {limit} best",
            backend=backend,
        )


# ---- bounded retries -----------------------------------------------------------------------------


@dataclass
class Verdict:
    """A backend's reading of one failed request: the error to raise, and whether to retry."""

    error: GenerationError
    retryable: bool = False
    retry_after_s: float | None = None


def call_with_retries(
    send: Callable[[], T],
    classify: Callable[[Exception], Verdict | None],
    options: GenerationOptions,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int, list[str]]:
    """Run `send` until it succeeds, retrying what `classify` calls retryable.

    Waits max(provider hint, retry_backoff_s * 2**k) before retry k+1; stops after
    `options.max_retries` retries, or earlier when the next wait would push the total past
    `options.max_retry_wait_s`. Exceptions `classify` returns None for propagate unchanged.
    Returns (result, attempts, notes) where notes describe each retry (for result warnings).
    """
    attempts = 0
    waited = 0.0
    notes: list[str] = []
    while True:
        attempts += 1
        try:
            return send(), attempts, notes
        except GenerationError as exc:
            exc.attempts = attempts
            raise
        except Exception as exc:
            verdict = classify(exc)
            if verdict is None:
                raise
            err = verdict.error
            err.attempts = attempts
            if isinstance(err, GenerationRateLimited) and verdict.retry_after_s is not None:
                err.retry_after_s = verdict.retry_after_s
            if not verdict.retryable:
                raise err from exc
            retries_done = attempts - 1
            delay = max(verdict.retry_after_s or 0.0, options.retry_backoff_s * 2**retries_done)
            if retries_done >= options.max_retries:
                _give_up(err, f"gave up after {attempts} attempt(s), {waited:.2f}s of waiting")
                raise err from exc
            if waited + delay > options.max_retry_wait_s:
                _give_up(
                    err,
                    f"gave up after {attempts} attempt(s): the next wait ({delay:.2f}s) would pass "
                    f"max_retry_wait_s={options.max_retry_wait_s:g}",
                )
                raise err from exc
            notes.append(f"attempt {attempts} failed ({_first_line(err)}); retried after {delay:.2f}s")
            sleep(delay)
            waited += delay


def _give_up(err: GenerationError, note: str) -> None:
    err.args = (f"{err.args[0]} ({note})", *err.args[1:])


def _first_line(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


class Stopwatch:
    """Elapsed seconds since construction (monotonic)."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._t0
