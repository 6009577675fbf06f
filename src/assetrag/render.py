"""Contact sheets: a query's results, or a brief's references, as one PNG.

`render_contact_sheet` draws one grid (title, then each tile's image with its rank, label and score);
`render_board` draws several labelled sections of such tiles (one per item of a generation brief).
Both lay tiles out in pixels on a matplotlib `Figure` drawn by the Agg canvas — no pyplot, no global
state, safe in threads and servers. A file that cannot be opened becomes a grey placeholder that
says why; it never aborts the sheet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["SheetTile", "render_board", "render_contact_sheet"]


@dataclass(frozen=True)
class SheetTile:
    """One cell of a sheet: an image (a file path or an already-loaded image) and what to write under it."""

    image: Path | Image.Image
    label: str  # e.g. the filename
    score: float | None = None  # similarity, shown after the label


def render_contact_sheet(
    title: str,
    tiles: Sequence[SheetTile],
    out: Path | str,
    *,
    columns: int | None = None,
    tile_px: int = 256,
) -> Path:
    """Write a PNG grid of `tiles` under `title` (e.g. the query) and return its path.

    Each tile shows the image (EXIF-transposed, transparency on white, fitted into `tile_px`²) and
    "#rank label — score" under it. `columns` defaults to min(5, number of tiles). No tiles → a sheet
    that says "no results". Parent directories of `out` are created.
    """
    n = len(tiles)
    note = f"{n} result{'' if n == 1 else 's'}" if n else None
    return _render(title, note, [("", list(tiles))], out, min(5, max(n, 1)) if columns is None else columns, tile_px)


def render_board(
    title: str,
    sections: Sequence[tuple[str, Sequence[SheetTile]]],
    out: Path | str,
    *,
    columns: int | None = None,
    tile_px: int = 192,
) -> Path:
    """Write a PNG with one labelled row of tiles per section (e.g. per item of a brief); return its path.

    Ranks restart at #1 in each section; a section with more than `columns` tiles (default: the
    longest section, at most 6) wraps onto further rows; an empty one says "no references".
    """
    longest = max((len(tiles) for _, tiles in sections), default=1)
    body = [(name or "(unnamed)", list(tiles)) for name, tiles in sections]
    return _render(title, None, body, out, min(6, max(longest, 1)) if columns is None else columns, tile_px)


# -------------------------------------------------------------------------------------------- layout

# Everything below is measured in output pixels; the figure is drawn at DPI, so 1 unit = 1 PNG pixel.
DPI = 100
PAD = 24  # outer margin
GAP = 14  # between tiles and between rows
TITLE_PT, SECTION_PT, LABEL_PT, NOTE_PT = 15.0, 11.5, 8.5, 10.0
LINE = 1.35  # line height as a multiple of the font size
LABEL_H = int(5 + 2 * LINE * LABEL_PT * DPI / 72) + 2  # two label lines under each tile
INK, MUTED, CELL, PLACEHOLDER = "#1f2328", "#656d76", "#f2f3f5", "#d5d8dc"


@dataclass(frozen=True)
class _Text:
    top: float
    text: str
    points: float
    color: str = INK
    bold: bool = False
    italic: bool = False


@dataclass(frozen=True)
class _Row:
    top: float
    first_rank: int
    tiles: list[SheetTile]


def _px(points: float) -> float:
    return points * DPI / 72


def _render(
    title: str,
    note: str | None,
    sections: list[tuple[str, list[SheetTile]]],
    out: Path | str,
    columns: int,
    tile_px: int,
) -> Path:
    """Lay out title, optional note and sections (a "" name draws no heading) top-down, then draw."""
    if columns < 1:
        raise ValueError(f"columns must be ≥ 1, got {columns}")
    if tile_px < 32:
        raise ValueError(f"tile_px must be ≥ 32, got {tile_px}")
    measure = _Measure()
    width = 2 * PAD + columns * tile_px + (columns - 1) * GAP
    texts: list[_Text] = []
    rows: list[_Row] = []

    y: float = PAD
    for line in measure.wrap(title, TITLE_PT, width - 2 * PAD, bold=True):
        texts.append(_Text(y, line, TITLE_PT, bold=True))
        y += _px(TITLE_PT) * LINE
    if note:
        texts.append(_Text(y, note, NOTE_PT, MUTED))
        y += _px(NOTE_PT) * LINE
    y += GAP
    if not any(tiles for _, tiles in sections) and not any(name for name, _ in sections):
        texts.append(_Text(y, "no results", NOTE_PT + 2, MUTED, italic=True))
        y += _px(NOTE_PT + 2) * LINE + GAP
    for name, tiles in sections:
        if name:
            for line in measure.wrap(name, SECTION_PT, width - 2 * PAD, bold=True):
                texts.append(_Text(y, line, SECTION_PT, bold=True))
                y += _px(SECTION_PT) * LINE
            y += 4
        if not tiles and name:
            texts.append(_Text(y, "no references", NOTE_PT, MUTED, italic=True))
            y += _px(NOTE_PT) * LINE + GAP
        for start in range(0, len(tiles), columns):
            rows.append(_Row(y, start + 1, tiles[start : start + columns]))
            y += tile_px + LABEL_H + GAP
    height = round(y - GAP + PAD)

    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    for t in texts:
        fig.text(
            PAD / width, 1 - t.top / height, t.text, fontsize=t.points, color=t.color, va="top",
            fontweight="bold" if t.bold else "normal", style="italic" if t.italic else "normal",
            parse_math=False,
        )  # fmt: skip
    # "#1 cat.jpg — 0.83" on one line when every label of the page fits, else rank/score over the name
    one_line = all(
        measure.width(_label(tile, row.first_rank + j), LABEL_PT) <= tile_px
        for row in rows
        for j, tile in enumerate(row.tiles)
    )
    for row in rows:
        for j, tile in enumerate(row.tiles):
            left = PAD + j * (tile_px + GAP)
            _draw_tile(fig, measure, tile, row.first_rank + j, (left, row.top), tile_px, (width, height), one_line)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=DPI, facecolor="white")
    return out


def _draw_tile(
    fig: Figure,
    measure: _Measure,
    tile: SheetTile,
    rank: int,
    at: tuple[float, float],
    size: int,
    page: tuple[int, int],
    one_line: bool,
) -> None:
    (left, top), (width, height) = at, page
    ax = fig.add_axes((left / width, 1 - (top + size) / height, size / width, size / height))
    ax.set_axis_off()
    pixels, problem = _thumbnail(tile.image, size)
    if pixels is not None:
        ax.imshow(pixels, interpolation="nearest")
    else:
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.add_patch(Rectangle((0, 0), 1, 1, facecolor=PLACEHOLDER, edgecolor="none"))
        points = LABEL_PT * min(1.0, size / 160)  # smaller print in small tiles
        room = size - 12
        lines = [*measure.wrap("cannot open image:", points, room), *measure.wrap(problem, points, room)]
        lines = lines[: max(1, int(size / (_px(points) * 1.5)) - 1)]
        ax.text(0.5, 0.5, "\n".join(lines), ha="center", va="center", fontsize=points, color=INK,
                linespacing=1.5, parse_math=False, clip_on=True)  # fmt: skip

    if one_line:
        label = [(_label(tile, rank), INK)]
    else:
        score = "" if tile.score is None else f" — {tile.score:.2f}"
        label = [(f"#{rank}{score}", INK), (measure.ellipsize(tile.label, LABEL_PT, size), MUTED)]
    for i, (line, color) in enumerate(label):
        y = top + size + 5 + i * _px(LABEL_PT) * LINE
        fig.text(left / width, 1 - y / height, line, fontsize=LABEL_PT, color=color, va="top", parse_math=False)


def _label(tile: SheetTile, rank: int) -> str:
    return f"#{rank} {tile.label}" + ("" if tile.score is None else f" — {tile.score:.2f}")


def _thumbnail(image: Path | Image.Image, size: int) -> tuple[np.ndarray | None, str]:
    """(size×size RGB pixels: the image fitted and centred on the cell colour, "") or (None, why not)."""
    try:
        if isinstance(image, Image.Image):
            im = ImageOps.exif_transpose(image)  # a copy: the caller's image is left alone
        else:
            with Image.open(image) as f:
                f.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
                im = ImageOps.exif_transpose(f)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            im = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im.alpha_composite(rgba)
        if im.mode in ("I", "F") or im.mode.startswith("I;16"):  # 16-bit / 32-bit grey: to 8 bits
            scale = 1 / 257 if im.mode != "F" else 1.0
            im = Image.fromarray(np.clip(np.asarray(im, dtype=np.float32) * scale, 0, 255).astype(np.uint8))
        im = im.convert("RGB")
        scale = size / max(im.size)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.LANCZOS)
        cell = Image.new("RGB", (size, size), CELL)
        cell.paste(im, ((size - im.width) // 2, (size - im.height) // 2))
        return np.asarray(cell), ""
    except FileNotFoundError:
        return None, f"file not found: {Path(image).name}"  # type: ignore[arg-type]
    except UnidentifiedImageError:
        return None, "not an image file Pillow can read"
    except OSError as exc:
        return None, exc.strerror or f"{type(exc).__name__}: {exc}"
    except (ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


class _Measure:
    """Exact text widths from an Agg renderer: labels are fitted and titles wrapped to the page."""

    def __init__(self) -> None:
        self._renderer = RendererAgg(8, 8, DPI)

    def width(self, text: str, points: float, bold: bool = False) -> float:
        prop = FontProperties(size=points, weight="bold" if bold else "normal")
        return self._renderer.get_text_width_height_descent(text, prop, ismath=False)[0]

    def wrap(self, text: str, points: float, max_px: float, bold: bool = False) -> list[str]:
        """Greedy word wrap; a word longer than a line is shortened with '…'."""
        lines: list[str] = []
        for word in text.split():
            if lines and self.width(f"{lines[-1]} {word}", points, bold) <= max_px:
                lines[-1] = f"{lines[-1]} {word}"
            else:
                lines.append(self.ellipsize(word, points, max_px, bold))
        return lines or [""]

    def ellipsize(self, text: str, points: float, max_px: float, bold: bool = False) -> str:
        """`text`, cut in the middle with '…' until it fits in max_px."""
        if self.width(text, points, bold) <= max_px:
            return text
        lo, hi = 0, len(text) - 1  # binary search the number of characters kept
        while lo < hi:
            keep = (lo + hi + 1) // 2
            if self.width(_cut(text, keep), points, bold) <= max_px:
                lo = keep
            else:
                hi = keep - 1
        return _cut(text, lo)


def _cut(text: str, keep: int) -> str:
    head = (keep + 1) // 2
    return text[:head] + "…" + text[len(text) - (keep - head) :]
