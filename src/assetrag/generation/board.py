"""The offline "reference board": no AI, just the references laid out under the brief.

An art director's board: the brief as the title, then one labelled row per brief item (and the
style references last), each tile with the asset's name and retrieval score. Drawn by
`assetrag.render.render_board`; useful as a dry run of the RAG loop and when no model may be used.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from assetrag.generation.backend import Backend
from assetrag.generation.retry import Stopwatch
from assetrag.generation.types import STYLE_LABEL, GenerationOptions, GenerationResult, Reference

BACKEND = "board"
MODEL = "reference-board"
STYLE_SECTION = "style references"


def unavailable() -> None:
    """The board needs nothing but Pillow: always available."""
    return None


class BoardGenerator(Backend):
    """Generator that renders a reference board (external: False; deterministic)."""

    name = BACKEND
    label = "board"
    model = MODEL
    external = False
    aspect_ratios: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()
    max_images_per_call = 1

    def __init__(self, *, max_reference_images: int = 24, columns: int | None = None, tile_px: int = 192) -> None:
        self.max_reference_images = max_reference_images
        self.columns = columns
        self.tile_px = tile_px

    def __repr__(self) -> str:
        return f"BoardGenerator(max_reference_images={self.max_reference_images})"

    def _generate(
        self, prompt: str, references: Sequence[Reference], opts: GenerationOptions, watch: Stopwatch
    ) -> GenerationResult:
        from assetrag.render import SheetTile, render_board, render_contact_sheet

        sections = board_sections(references)
        render: Callable[..., Path] = render_board
        content: list[Any] = sections
        if sections and max(len(tiles) for _, tiles in sections) <= 2:
            # one or two references per item (the usual plan): one compact grid, the item on each tile
            render = render_contact_sheet
            content = [SheetTile(t.image, f"{name}: {t.label}", t.score) for name, ts in sections for t in ts]
        with tempfile.TemporaryDirectory(prefix="assetrag-board-") as tmp:
            path = render(
                prompt or "(no brief)", content, Path(tmp) / "board.png", columns=self.columns, tile_px=self.tile_px
            )
            with Image.open(path) as im:
                im.load()
                board = im.convert("RGB")
        warnings: list[str] = []
        self._extra_params(opts, (), warnings)  # the board takes none: each key is reported
        return self._result(
            prompt, references, watch, [board], warnings=warnings, metadata={"sections": [name for name, _ in sections]}
        )


def board_sections(references: Sequence[Reference]) -> list[tuple[str, list]]:
    """(section name, tiles) per brief item in order of first appearance; style references last."""
    from assetrag.render import SheetTile

    groups: dict[str, list[Reference]] = {}
    for ref in references:
        groups.setdefault(ref.label or STYLE_LABEL, []).append(ref)
    ordered = [label for label in groups if label != STYLE_LABEL]
    if STYLE_LABEL in groups:
        ordered.append(STYLE_LABEL)
    return [
        (
            STYLE_SECTION if label == STYLE_LABEL else label,
            [SheetTile(ref.image, _tile_label(ref), ref.score) for ref in groups[label]],
        )
        for label in ordered
    ]


def _tile_label(ref: Reference) -> str:
    return Path(ref.path).name if ref.path else ref.id[:12]
