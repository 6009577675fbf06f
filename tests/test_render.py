"""Contact sheets and reference boards, rendered from the bundled sample library into tmp_path."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assetrag.render import SheetTile, render_board, render_contact_sheet

LIBRARY = Path(__file__).resolve().parents[1] / "samples" / "library"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sample(rel: str, score: float | None = None) -> SheetTile:
    path = LIBRARY / rel
    if not path.is_file():
        pytest.skip(f"sample library is missing {rel}; run scripts/make_samples.py")
    return SheetTile(path, path.name, score)


def open_png(path: Path) -> Image.Image:
    assert path.read_bytes()[:8] == PNG_MAGIC
    im = Image.open(path)
    im.load()
    assert im.format == "PNG"
    return im


def grey_fraction(im: Image.Image, box: tuple[int, int, int, int]) -> float:
    """Share of pixels in `box` that are the placeholder grey (#d5d8dc)."""
    px = np.asarray(im.convert("RGB").crop(box)).astype(int)
    return float((np.abs(px - np.array([0xD5, 0xD8, 0xDC])).sum(axis=2) < 12).mean())


def test_contact_sheet_is_a_png_of_the_grid_size(tmp_path):
    tiles = [
        sample("photos/cat-chelsea.jpg", 0.83),
        sample("photos/cup-of-coffee.jpg", 0.41),
        sample("photos/rocket-launch.jpg", 0.38),
        sample("accessories/eyewear/sunglasses-black.png", 0.2),  # RGBA
        sample("photos/horse-silhouette.png", -0.05),  # RGBA, negative score
    ]
    out = render_contact_sheet('"a cat"', tiles, tmp_path / "nested" / "dir" / "sheet.png", columns=3, tile_px=160)

    assert out == tmp_path / "nested" / "dir" / "sheet.png"
    im = open_png(out)
    # 3 columns of 160 px plus margins; 2 rows of 160 px plus labels, and a title
    assert 3 * 160 < im.width < 3 * 160 + 200
    assert 2 * 160 + 80 < im.height < 2 * 160 + 400
    # not blank: the photos put plenty of colour on the page
    assert np.asarray(im.convert("L")).std() > 20


def test_default_columns_and_str_out(tmp_path):
    tiles = [sample("photos/cat-chelsea.jpg", 0.5)] * 7
    out = render_contact_sheet("seven", tiles, str(tmp_path / "seven.png"), tile_px=64)
    im = open_png(out)
    assert isinstance(out, Path)
    assert 5 * 64 < im.width < 5 * 64 + 150  # five columns by default


def test_missing_file_becomes_a_placeholder(tmp_path):
    tiles = [SheetTile(tmp_path / "gone.jpg", "gone.jpg", 0.9), sample("photos/cat-chelsea.jpg", 0.8)]
    out = render_contact_sheet("missing", tiles, tmp_path / "sheet.png", columns=2, tile_px=200)
    im = open_png(out)
    # the first tile's cell is mostly the placeholder grey, the second (a photo) is not
    top = 60
    assert grey_fraction(im, (30, top + 40, 210, top + 180)) > 0.5
    assert grey_fraction(im, (30 + 214, top + 40, 210 + 214, top + 180)) < 0.1


def test_unreadable_files_do_not_crash(tmp_path):
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("not a jpeg")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes((LIBRARY / "photos/horse-silhouette.png").read_bytes()[:200])
    tiles = [
        SheetTile(not_an_image, "notes.jpg", 0.1),
        SheetTile(truncated, "truncated.png", 0.1),
        SheetTile(tmp_path, "a-directory", None),
    ]
    out = render_contact_sheet("broken", tiles, tmp_path / "broken.png", tile_px=96)
    assert open_png(out).width > 3 * 96


def test_in_memory_images_are_not_modified(tmp_path):
    rgba = Image.new("RGBA", (300, 120), (255, 0, 0, 0))  # fully transparent red → white on the sheet
    palette = Image.new("P", (50, 50), 3)
    gray16 = Image.new("I;16", (40, 80), 1000)
    before = rgba.tobytes()
    out = render_contact_sheet(
        "memory",
        [SheetTile(rgba, "rgba"), SheetTile(palette, "p"), SheetTile(gray16, "i16")],
        tmp_path / "m.png",
    )
    open_png(out)
    assert rgba.tobytes() == before and rgba.mode == "RGBA" and rgba.size == (300, 120)


def test_no_results(tmp_path):
    out = render_contact_sheet('"unicorns"', [], tmp_path / "empty.png")
    im = open_png(out)
    assert im.width >= 200 and 60 < im.height < 300


def test_long_labels_and_titles_fit(tmp_path):
    long_name = "a-" * 60 + "very-long-file-name.png"
    title = "A model poses leaning on a blue convertible sports car with $dollar signs$ and_underscores_ " * 3
    tiles = [SheetTile(LIBRARY / "photos/cat-chelsea.jpg", long_name, 0.5)] * 2
    out = render_contact_sheet(title, tiles, tmp_path / "long.png", tile_px=128)
    im = open_png(out)
    assert im.width < 2 * 128 + 100  # labels are shortened, not widening the page


def test_board_with_two_sections(tmp_path):
    sections = [
        (
            "blue convertible sports car",
            [
                sample("vehicles/blue-convertible-man-driving.png", 0.71),
                sample("vehicles/bmw-z4-roadster-blue-top-view.png", 0.66),
                sample("vehicles/red-sports-car.png", 0.6),
            ],
        ),
        ("diamond necklace", [sample("jewelry/diamond-pendant-necklace.png", 0.77)]),
    ]
    out = render_board("A model poses leaning on a blue convertible sports car", sections, tmp_path / "b.png")
    im = open_png(out)
    one = render_board("one", sections[:1], tmp_path / "one.png")
    # two rows are taller than one row at the same width
    assert im.width == open_png(one).width
    assert im.height > open_png(one).height + 150


def test_board_wraps_long_sections_and_handles_empty_ones(tmp_path):
    tiles = [sample("photos/cat-chelsea.jpg", 0.5)] * 5
    sections = [("many", tiles), ("none", [])]
    out = render_board("wrap", sections, tmp_path / "wrap.png", columns=2, tile_px=64)
    im = open_png(out)
    assert im.width < 2 * 64 + 100
    assert im.height > 3 * 64  # five tiles in two columns: three rows
    assert open_png(render_board("empty", [], tmp_path / "none.png")).height > 50


def test_renders_concurrently_without_pyplot(tmp_path):
    tiles = [sample("photos/cat-chelsea.jpg", 0.5), sample("photos/cup-of-coffee.jpg", 0.4)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            render_contact_sheet(f"t{i}", tiles, tmp_path / f"t{i}.png", tile_px=64)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(open_png(tmp_path / f"t{i}.png") for i in range(4))


@pytest.mark.parametrize("kwargs", [{"columns": 0}, {"tile_px": 8}])
def test_bad_layout_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        render_contact_sheet("x", [], tmp_path / "x.png", **kwargs)


# -- content: what is drawn where (the layout's own constants give the positions) ---------------------

RED, GREEN, BLUE = (220, 30, 30), (30, 200, 60), (40, 60, 220)


def rgb(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB")).astype(int)


def close_to(px: np.ndarray, colour: tuple[int, int, int] | str, tol: int = 12) -> np.ndarray:
    if isinstance(colour, str):
        colour = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return np.abs(px - np.array(colour)).sum(axis=-1) < tol


def ink_columns(band: np.ndarray) -> np.ndarray:
    """x of every column in `band` (rows × columns × RGB) holding a pixel darker than the page's grey text."""
    return np.where((band.sum(axis=2) < 600).any(axis=0))[0]


def test_contact_sheet_puts_each_image_in_its_cell_and_its_label_under_it(tmp_path):
    from assetrag import render as r

    tiles = [
        SheetTile(Image.new("RGB", (100, 100), RED), "red.png", 0.83),
        SheetTile(Image.new("RGB", (200, 100), GREEN), "a-wider-green.png", 0.41),  # letterboxed
        SheetTile(Image.new("RGB", (50, 100), BLUE), "b.png", None),  # pillarboxed, no score
    ]
    size = 96
    im = rgb(open_png(render_contact_sheet("Title", tiles, tmp_path / "s.png", columns=3, tile_px=size)))
    assert im.shape[1] == 2 * r.PAD + 3 * size + 2 * r.GAP
    top = round(r.PAD + r._px(r.TITLE_PT) * r.LINE + r._px(r.NOTE_PT) * r.LINE + r.GAP)  # title, "3 results"
    lefts = [r.PAD + j * (size + r.GAP) for j in range(3)]

    def cell(j: int) -> np.ndarray:  # the tile's square, less a 2 px rim for antialiasing
        return im[top + 2 : top + size - 2, lefts[j] + 2 : lefts[j] + size - 2]

    assert close_to(cell(0), RED).all()  # a square fills its cell
    green = cell(1)  # 96×48 centred: cell colour above and below, green in the middle
    assert close_to(green[: size // 4 - 4], r.CELL).all() and close_to(green[-(size // 4 - 4) :], r.CELL).all()
    assert close_to(green[size // 4 + 2 : 3 * size // 4 - 6], GREEN).all()
    blue = cell(2)  # 48×96 centred: cell colour left and right
    assert close_to(blue[:, : size // 4 - 4], r.CELL).all() and close_to(blue[:, -(size // 4 - 4) :], r.CELL).all()
    assert close_to(blue[:, size // 4 + 2 : 3 * size // 4 - 6], BLUE).all()
    # between the cells: white page
    assert close_to(im[top + 2 : top + size - 2, lefts[0] + size + 2 : lefts[1] - 2], (255, 255, 255)).all()

    # "#1 red.png — 0.83" is wider than 96 px, so every label is two lines: rank and score, then the name;
    # each starts at its tile's left edge and is as wide as the text measures
    measure = r._Measure()
    line_h = r._px(r.LABEL_PT) * r.LINE
    for j, (tile, first) in enumerate(zip(tiles, ["#1 — 0.83", "#2 — 0.41", "#3"], strict=True)):
        name = measure.ellipsize(tile.label, r.LABEL_PT, size)  # a name wider than its tile is cut with "…"
        assert ("…" in name and name[:2] == "a-" and name.endswith(".png")) if j == 1 else name == tile.label
        for i, text in enumerate([first, name]):
            y = top + size + 5 + i * line_h
            band = im[round(y) : round(y + line_h) - 1, lefts[j] - r.GAP // 2 : lefts[j] + size + r.GAP // 2]
            xs = ink_columns(band) + lefts[j] - r.GAP // 2
            assert len(xs), f"no ink for {text!r}"
            assert abs(xs.min() - lefts[j]) <= 2, (text, xs.min(), lefts[j])
            assert abs((xs.max() + 1 - lefts[j]) - measure.width(text, r.LABEL_PT)) <= 3, (text, xs.max())
    # the title, in bold, at the top left
    title = ink_columns(im[r.PAD : round(r.PAD + r._px(r.TITLE_PT) * r.LINE)])
    assert abs(title.min() - r.PAD) <= 2
    assert abs(title.max() + 1 - r.PAD - measure.width("Title", r.TITLE_PT, bold=True)) <= 3


def test_short_labels_are_one_line_and_a_board_heads_each_section(tmp_path):
    from assetrag import render as r

    size = 128
    sections = [("reds", [SheetTile(Image.new("RGB", (64, 64), RED), "r", 0.5)]), ("blues", [])]
    im = rgb(open_png(render_board("B", sections, tmp_path / "b.png", tile_px=size)))
    measure = r._Measure()
    y = r.PAD + r._px(r.TITLE_PT) * r.LINE + r.GAP  # the title, no note
    heading = ink_columns(im[round(y) : round(y + r._px(r.SECTION_PT) * r.LINE) - 2])
    assert abs(heading.max() + 1 - r.PAD - measure.width("reds", r.SECTION_PT, True)) <= 3
    top = round(y + r._px(r.SECTION_PT) * r.LINE + 4)
    assert close_to(im[top + 2 : top + size - 2, r.PAD + 2 : r.PAD + size - 2], RED).all()
    label_y = top + size + 5
    label = ink_columns(im[label_y : round(label_y + r._px(r.LABEL_PT) * r.LINE) - 1])
    assert abs(label.max() + 1 - r.PAD - measure.width("#1 r — 0.50", r.LABEL_PT)) <= 3  # one line
    # below the tile's labels: the second heading, then its "no references" note, then the page ends
    y2 = top + size + r.LABEL_H + r.GAP
    blues = ink_columns(im[round(y2) : round(y2 + r._px(r.SECTION_PT) * r.LINE) - 2])
    assert abs(blues.max() + 1 - r.PAD - measure.width("blues", r.SECTION_PT, True)) <= 3
    assert im.shape[0] == round(y2 + r._px(r.SECTION_PT) * r.LINE + 4 + r._px(r.NOTE_PT) * r.LINE + r.PAD)
