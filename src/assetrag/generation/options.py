"""Checks of `GenerationOptions` and references against what a backend accepts.

Each check raises `GenerationOptionsError` with a message that names the bad value and the
accepted ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from assetrag.generation.errors import GenerationOptionsError

if TYPE_CHECKING:
    from assetrag.generation.types import GenerationOptions, Reference

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
