"""Build the bundled sample library `samples/library/` (plus `samples/README.md` and `samples/queries*.jsonl`).

The library is small (a few MB), real and redistributable:

- photos that ship inside the scikit-image wheel (`skimage/data/*`, no download);
- public-domain clipart from Debian's Open Clip Art packages;
- a few images drawn here with Pillow (brand palettes, mugs, a tile, high heels) and two composites of
  public-domain clipart (a diamond pendant necklace, a blue wristwatch).

Folders are collections (the first folder under the root is an asset's `collection`; the folders on
its path are its tags). Exactly one file is a byte-identical copy of another
(`fashion/duplicate-of-...`), because ingest deduplicates by content hash and the tests rely on one
duplicate pair.

Needs, besides Pillow and scikit-image (the `dev` extra):

    apt-get install -y openclipart-png openclipart-svg librsvg2-bin

(openclipart-svg carries each drawing's title, author and licence; librsvg2-bin's `rsvg-convert`
re-renders a drawing from its SVG when the packaged PNG is too small after cropping — without it the
PNG is upscaled instead, and the output differs a little.)

Usage: python scripts/make_samples.py [--root samples]   (rewrites ROOT/library, README.md, queries*.jsonl)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

OPENCLIPART = Path("/usr/share/openclipart")
MAX_SIDE = 512
SS = 4  # supersampling factor for the drawings made here

OPENCLIPART_LICENCE = "Public domain (Open Clip Art)"


# --------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class SkimagePhoto:
    file: str  # name under skimage/data
    title: str
    licence: str


@dataclass(frozen=True)
class Clipart:
    svg: str  # path under /usr/share/openclipart/svg (the PNG sits at the same path under png/)
    crop: tuple[float, float, float, float] | None = None  # fractional box of the drawing's canvas
    keep_alpha: bool = False


@dataclass(frozen=True)
class Drawn:
    make: Callable[[], Image.Image]
    title: str
    uses: tuple[str, ...] = ()  # openclipart SVGs it is composed from
    keep_alpha: bool = False


@dataclass(frozen=True)
class Duplicate:
    of: str  # library-relative path of the original


Source = SkimagePhoto | Clipart | Drawn | Duplicate


# ------------------------------------------------------------------------------------------- helpers


def skimage_data_dir() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


def fit(im: Image.Image, side: int = MAX_SIDE) -> Image.Image:
    """Downscale so the long side is at most `side` (never upscale)."""
    if max(im.size) > side:
        im = im.copy()
        im.thumbnail((side, side), Image.Resampling.LANCZOS)
    return im


def alpha_bbox(im: Image.Image) -> tuple[int, int, int, int] | None:
    """Bounding box of what is drawn: non-transparent pixels, or non-white ones for opaque images."""
    rgba = im.convert("RGBA")
    box = rgba.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
    if box is None or box == (0, 0, *rgba.size):
        white = Image.new("RGB", rgba.size, "white")
        diff = ImageChops.difference(rgba.convert("RGB"), white).convert("L").point(lambda v: 255 if v > 12 else 0)
        box = diff.getbbox() or box
    return box


def pad_box(box: tuple[int, int, int, int], size: tuple[int, int], frac: float = 0.04) -> tuple[int, ...]:
    x0, y0, x1, y1 = box
    m = int(max(x1 - x0, y1 - y0) * frac) + 2
    return (max(0, x0 - m), max(0, y0 - m), min(size[0], x1 + m), min(size[1], y1 + m))


def svg_metadata(svg: Path) -> dict[str, str]:
    """Title, author and licence from an Open Clip Art SVG's RDF metadata."""
    text = svg.read_text(errors="replace")[:40000]
    work = re.search(r"<cc:Work.*?</cc:Work>", text, re.S)
    w = work.group(0) if work else ""
    title = re.search(r"<dc:title>(.*?)</dc:title>", w, re.S)
    creator = re.search(r"<dc:creator>.*?<dc:title>(.*?)</dc:title>", w, re.S)
    licence = re.search(r'<cc:license rdf:resource="(.*?)"', w)
    return {
        "title": title.group(1).strip() if title else "",
        "creator": creator.group(1).strip() if creator else "unknown",
        "licence": licence.group(1) if licence else "",
    }


def render_svg(svg: Path, width: int) -> Image.Image | None:
    """Render an SVG at `width` px with rsvg-convert; None when the tool is missing or fails."""
    exe = shutil.which("rsvg-convert")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.png"
        proc = subprocess.run([exe, "-w", str(width), "-a", "-o", str(out), str(svg)], capture_output=True, check=False)
        if proc.returncode != 0 or not out.exists():
            return None
        with Image.open(out) as im:
            return im.convert("RGBA")


def load_clipart(item: Clipart) -> Image.Image:
    """The drawing, cropped to its content (or to `item.crop`), at up to MAX_SIDE px, RGBA."""
    png = OPENCLIPART / "png" / Path(item.svg).with_suffix(".png")
    svg = OPENCLIPART / "svg" / item.svg
    with Image.open(png) as f:
        im = f.convert("RGBA")

    def cut(img: Image.Image) -> Image.Image:
        if item.crop is not None:
            w, h = img.size
            fx0, fy0, fx1, fy1 = item.crop
            img = img.crop((round(fx0 * w), round(fy0 * h), round(fx1 * w), round(fy1 * h)))
        box = alpha_bbox(img)
        return img.crop(pad_box(box, img.size)) if box else img

    cropped = cut(im)
    if max(cropped.size) < MAX_SIDE and svg.exists():
        # Too small once cropped: render the SVG big enough that the crop reaches MAX_SIDE.
        width = min(8000, math.ceil(im.width * MAX_SIDE * 1.15 / max(cropped.size)))
        big = render_svg(svg, width)
        if big is not None:
            cropped = cut(big)
    if max(cropped.size) < MAX_SIDE:
        scale = MAX_SIDE / max(cropped.size)
        cropped = cropped.resize(
            (round(cropped.width * scale), round(cropped.height * scale)), Image.Resampling.LANCZOS
        )
    return fit(cropped)


def on_white(im: Image.Image) -> Image.Image:
    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
    bg.alpha_composite(im.convert("RGBA"))
    return bg.convert("RGB")


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def bezier(points: list[tuple[float, float]], n: int = 40) -> list[tuple[float, float]]:
    """Points along a cubic Bézier (4 control points)."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = points
    out = []
    for i in range(n + 1):
        t = i / n
        a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
        out.append((a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3))
    return out


def path(*segments: list[tuple[float, float]], s: float = SS) -> list[tuple[float, float]]:
    """Concatenate Bézier segments (each a 4-point control list) into a polygon, scaled by `s`."""
    pts: list[tuple[float, float]] = []
    for seg in segments:
        pts.extend(bezier(seg) if len(seg) == 4 else seg)
    return [(x * s, y * s) for x, y in pts]


def downsample(im: Image.Image) -> Image.Image:
    return im.resize((im.width // SS, im.height // SS), Image.Resampling.LANCZOS)


# ------------------------------------------------------------------------------ drawings made here


def draw_high_heel(upper: str, sole: str, lining: str) -> Image.Image:
    """A classic stiletto pump seen from the side (toe left), on white, 512×400."""
    w, h = 512, 400
    im = Image.new("RGB", (w * SS, h * SS), "white")
    shadow = Image.new("L", im.size, 0)
    ImageDraw.Draw(shadow).ellipse([30 * SS, 352 * SS, 480 * SS, 374 * SS], fill=110)
    shadow = shadow.filter(ImageFilter.GaussianBlur(8 * SS))
    im.paste(Image.new("RGB", im.size, (190, 190, 190)), mask=shadow)
    d = ImageDraw.Draw(im)
    topline = [(215, 262), (290, 272), (380, 236), (436, 178)]
    underside = [
        [(446, 238), (390, 248), (320, 300), (230, 352)],
        [(230, 352), (180, 364), (80, 366), (40, 345)],
    ]
    # inside of the far wall, seen through the opening
    d.polygon(path(topline, [(436, 178), (380, 206), (290, 244), (215, 262)]), fill=lining)
    # stiletto heel under the heel seat
    d.polygon(
        path(
            [(410, 242), (424, 280), (430, 320), (430, 362)],
            [(430, 362), (442, 362)],
            [(442, 362), (444, 320), (448, 280), (458, 232)],
        ),
        fill=sole,
    )
    d.rectangle([429 * SS, 354 * SS, 443 * SS, 364 * SS], fill="#111111")  # heel tip
    shell = path(
        [(40, 345), (34, 318), (58, 298), (100, 292)],  # toe
        [(100, 292), (150, 286), (185, 278), (215, 262)],  # vamp up to the throat
        topline,
        [(436, 178), (452, 172), (462, 186), (460, 214)],  # heel counter
        [(460, 214), (458, 226), (454, 234), (446, 238)],
        *underside,
    )
    d.polygon(shell, fill=upper)
    d.line(path(*underside), fill=sole, width=6 * SS, joint="curve")  # sole edge
    d.line(
        path([(58, 312), (80, 300), (120, 294), (170, 284)]),
        fill=(255, 255, 255),
        width=4 * SS,
        joint="curve",
    )
    d.line(
        path([(300, 282), (350, 262), (395, 236), (425, 204)]),
        fill=(255, 255, 255),
        width=3 * SS,
        joint="curve",
    )
    im = downsample(im)
    box = alpha_bbox(im)
    return im.crop(pad_box(box, im.size, 0.06)) if box else im


def draw_mug(body: str, accent: str) -> Image.Image:
    """A plain ceramic mug, 3/4 view, on white."""
    w, h = 480, 440
    im = Image.new("RGB", (w * SS, h * SS), "white")
    d = ImageDraw.Draw(im)
    s = SS
    d.ellipse([90 * s, 370 * s, 350 * s, 410 * s], fill=(225, 225, 225))
    d.ellipse([300 * s, 150 * s, 430 * s, 320 * s], fill=body)  # handle
    d.ellipse([330 * s, 185 * s, 400 * s, 285 * s], fill="white")
    d.rounded_rectangle([80 * s, 100 * s, 340 * s, 390 * s], radius=28 * s, fill=body)
    d.ellipse([80 * s, 80 * s, 340 * s, 130 * s], fill=accent)  # rim
    d.ellipse([94 * s, 88 * s, 326 * s, 124 * s], fill=(60, 40, 30))  # coffee inside
    d.rectangle([110 * s, 140 * s, 128 * s, 350 * s], fill=(255, 255, 255, 90))  # glaze highlight
    return downsample(im)


def draw_terrazzo_tile() -> Image.Image:
    rng = random.Random(7)
    size = 448
    im = Image.new("RGB", (size * SS, size * SS), (238, 232, 224))
    d = ImageDraw.Draw(im)
    colours = [(214, 120, 104), (112, 150, 140), (60, 70, 90), (230, 190, 120), (180, 180, 176)]
    for _ in range(260):
        cx, cy = rng.uniform(0, size) * SS, rng.uniform(0, size) * SS
        r = rng.uniform(4, 18) * SS
        pts = [
            (cx + r * rng.uniform(0.6, 1.2) * math.cos(a), cy + r * rng.uniform(0.6, 1.2) * math.sin(a))
            for a in sorted(rng.uniform(0, 2 * math.pi) for _ in range(6))
        ]
        d.polygon(pts, fill=rng.choice(colours))
    return downsample(im)


def draw_palette(name: str, colours: list[tuple[str, str]]) -> Image.Image:
    """Brand palette: a wordmark and one labelled swatch per colour."""
    w, h = 512, 320
    im = Image.new("RGB", (w, h), (250, 250, 248))
    d = ImageDraw.Draw(im)
    d.text((24, 20), name.upper(), fill=(30, 30, 30), font=font(30))
    d.text((24, 58), "brand colour palette", fill=(110, 110, 110), font=font(16))
    sw = (w - 48) // len(colours)
    for i, (label, hexcode) in enumerate(colours):
        x = 24 + i * sw
        d.rounded_rectangle([x + 4, 100, x + sw - 4, 250], radius=10, fill=hexcode)
        d.text((x + 6, 260), label, fill=(40, 40, 40), font=font(14))
        d.text((x + 6, 280), hexcode.upper(), fill=(120, 120, 120), font=font(12))
    return im


def draw_mood_sunset() -> Image.Image:
    """Mood board tile: a coastal sunset gradient, sun and sea."""
    w, h = 512, 384
    im = Image.new("RGB", (w, h))
    top, mid, sea = (38, 52, 110), (245, 150, 110), (30, 90, 140)
    horizon = int(h * 0.62)
    for y in range(h):
        if y < horizon:
            t = y / horizon
            c = tuple(round(top[i] + (mid[i] - top[i]) * t) for i in range(3))
        else:
            t = (y - horizon) / (h - horizon)
            c = tuple(round(sea[i] * (1 - 0.4 * t)) for i in range(3))
        ImageDraw.Draw(im).line([(0, y), (w, y)], fill=c)
    d = ImageDraw.Draw(im)
    d.ellipse([w // 2 - 60, horizon - 70, w // 2 + 60, horizon + 50], fill=(255, 214, 140))
    d.rectangle([0, horizon, w, h], fill=None)
    im.paste(Image.new("RGB", (w, h - horizon), sea), (0, horizon))
    for i in range(8):  # sun reflection
        y = horizon + 10 + i * 14
        half = 70 - i * 7
        d.line([(w // 2 - half, y), (w // 2 + half, y)], fill=(250, 190, 130), width=3)
    return im


def draw_logo_crescent() -> Image.Image:
    """A simple crescent-moon logo mark and wordmark, on transparent background."""
    w, h = 512, 320
    im = Image.new("RGBA", (w * SS, h * SS), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    s = SS
    d.ellipse([40 * s, 60 * s, 240 * s, 260 * s], fill=(32, 44, 96, 255))
    d.ellipse([95 * s, 40 * s, 275 * s, 220 * s], fill=(0, 0, 0, 0))
    d.text((255 * s, 115 * s), "lunar", fill=(32, 44, 96, 255), font=font(72 * s))
    return im.resize((w, h), Image.Resampling.LANCZOS)


def compose_diamond_necklace() -> Image.Image:
    """Two public-domain drawings combined: a gold chain with a blue diamond hanging from it."""
    chain = load_clipart(Clipart("people/clothing/gold_chain_curved_as_a__01.svg"))
    gem = load_clipart(Clipart("signs_and_symbols/money/diamond_juliane_krug_01.svg"))
    chain = chain.resize((480, round(chain.height * 480 / chain.width)), Image.Resampling.LANCZOS)
    gem = gem.resize((120, round(gem.height * 120 / gem.width)), Image.Resampling.LANCZOS)
    w, h = 512, chain.height + gem.height + 60
    im = Image.new("RGBA", (w, h), (255, 255, 255, 255))
    im.alpha_composite(chain, ((w - chain.width) // 2, 16))
    # the lowest drawn pixel of the chain at the centre column is where the pendant hangs
    col = chain.getchannel("A").crop((chain.width // 2 - 2, 0, chain.width // 2 + 2, chain.height))
    bottom = 16 + (col.getbbox() or (0, 0, 0, chain.height))[3]
    d = ImageDraw.Draw(im)
    cx = w // 2
    d.ellipse([cx - 9, bottom - 6, cx + 9, bottom + 14], outline=(201, 160, 40), width=5)  # bail
    im.alpha_composite(gem, (cx - gem.width // 2, bottom + 10))
    return im.convert("RGB")


def compose_blue_wristwatch() -> Image.Image:
    """A wristwatch: the blue 'Analog Clock' drawing as the dial, with a blue strap, crown and buckle."""
    face = load_clipart(Clipart("signs_and_symbols/clocks/analog_clock_jonathan_di_01.svg"))
    dial = 250
    face = face.resize((dial, dial), Image.Resampling.LANCZOS)
    w, h = 360, 512
    s = SS
    im = Image.new("RGBA", (w * s, h * s), (255, 255, 255, 255))
    d = ImageDraw.Draw(im)
    strap, dark = (30, 72, 160, 255), (18, 44, 104, 255)
    cx, cy = w // 2, h // 2
    d.rounded_rectangle([(cx - 70) * s, 0, (cx + 70) * s, (cy - 60) * s], radius=18 * s, fill=strap)
    d.rounded_rectangle([(cx - 70) * s, (cy + 60) * s, (cx + 70) * s, h * s], radius=18 * s, fill=strap)
    for y in (cy + 170, cy + 200, cy + 230):  # strap holes
        d.ellipse([(cx - 6) * s, (y - 6) * s, (cx + 6) * s, (y + 6) * s], fill=dark)
    d.rounded_rectangle(
        [(cx - 82) * s, 30 * s, (cx + 82) * s, 62 * s],
        radius=8 * s,
        outline=(190, 190, 196, 255),
        width=7 * s,
    )  # buckle
    d.rectangle([(cx - 90) * s, (cy - 80) * s, (cx + 90) * s, (cy + 80) * s], fill=(175, 178, 186, 255))  # lugs
    d.rounded_rectangle(
        [(cx + 124) * s, (cy - 16) * s, (cx + 146) * s, (cy + 16) * s],
        radius=5 * s,
        fill=(160, 163, 170, 255),
    )  # crown
    d.ellipse([(cx - 132) * s, (cy - 132) * s, (cx + 132) * s, (cy + 132) * s], fill=(200, 203, 210, 255))
    im = im.resize((w, h), Image.Resampling.LANCZOS)
    im.alpha_composite(face, (cx - dial // 2, cy - dial // 2))
    return im.convert("RGB")


# ------------------------------------------------------------------------------------------ catalogue

CLIP = "Clipart"
PHOTO_PD = "Public domain"

LIBRARY: dict[str, Source] = {
    # --- photos that ship in the scikit-image wheel
    "photos/astronaut-eileen-collins.jpg": SkimagePhoto(
        "astronaut.png",
        "Astronaut Eileen Collins (NASA)",
        "No known copyright restrictions, public domain (NASA)",
    ),
    "photos/cat-chelsea.jpg": SkimagePhoto(
        "chelsea.png", "Chelsea the cat", "CC0 by the photographer (Stefan van der Walt)"
    ),
    "photos/cup-of-coffee.jpg": SkimagePhoto(
        "coffee.png", "Coffee cup (Pikolo Espresso Bar)", "CC0 by the photographer (Rachel Michetti)"
    ),
    "photos/rocket-launch.jpg": SkimagePhoto(
        "rocket.jpg", "Launch of DSCOVR on a Falcon 9 (SpaceX)", "Public domain (released by SpaceX)"
    ),
    "photos/cameraman-with-tripod.jpg": SkimagePhoto(
        "camera.png", "Man with a camera on a tripod ('camera')", "CC0 by the photographer (Lav Varshney)"
    ),
    "photos/horse-silhouette.png": SkimagePhoto(
        "horse.png", "Black silhouette of a horse (openclipart, marauder)", "CC0 (Andreas Preuss)"
    ),
    "photos/hubble-deep-field-galaxies.jpg": SkimagePhoto(
        "hubble_deep_field.jpg", "Hubble eXtreme Deep Field (NASA)", "Public domain (NASA)"
    ),
    "photos/greek-coins-pompeii.jpg": SkimagePhoto(
        "coins.png", "Greek coins from Pompeii (Brooklyn Museum)", "No known copyright restrictions"
    ),
    "photos/brick-wall-texture.jpg": SkimagePhoto("brick.png", "Brick wall (CC0Textures Bricks25)", "CC0"),
    # --- jewelry
    "jewelry/gold-chain-necklace.png": Clipart("people/clothing/gold_chain_curved_as_a__01.svg"),
    "jewelry/diamond-pendant-necklace.png": Drawn(
        compose_diamond_necklace,
        "Diamond pendant necklace (composite of two drawings)",
        (
            "people/clothing/gold_chain_curved_as_a__01.svg",
            "signs_and_symbols/money/diamond_juliane_krug_01.svg",
        ),
    ),
    "jewelry/blue-diamond-gemstone.png": Clipart(
        "signs_and_symbols/money/diamond_juliane_krug_01.svg", keep_alpha=True
    ),
    "jewelry/blue-sapphire-gemstone.png": Clipart("signs_and_symbols/money/saphire_ganson.svg"),
    "jewelry/gold-wedding-rings.png": Clipart("people/clothing/jewelry/wedding_rings_jarno_vas_.svg"),
    "jewelry/drop-earring.png": Clipart("people/clothing/earring_frouke_01.svg"),
    # --- watches
    "watches/blue-wristwatch.png": Drawn(
        compose_blue_wristwatch,
        "Blue wristwatch (dial from a drawing, strap drawn here)",
        ("signs_and_symbols/clocks/analog_clock_jonathan_di_01.svg",),
    ),
    "watches/stopwatch-chrome.png": Clipart("recreation/sports/cronometro_mauro_olivo_01.svg"),
    "watches/wall-clock-modern.png": Clipart("signs_and_symbols/clocks/modern_clock_chris_kemps_01.svg"),
    # --- footwear
    "footwear/high-heel-pump-red.png": Drawn(
        lambda: draw_high_heel("#c8102e", "#3a0a10", "#f3d9c8"), "Red stiletto pump"
    ),
    "footwear/high-heel-pump-black.png": Drawn(
        lambda: draw_high_heel("#1c1c1e", "#5a1a1a", "#d8c3b0"), "Black stiletto pump"
    ),
    "footwear/tennis-shoes-pair.png": Clipart("people/clothing/tennis_shoes_jarno_vasam_.svg"),
    "footwear/hiking-boot-leather.png": Clipart("people/clothing/hiking_boot_jarno_vasama_.svg"),
    "footwear/flip-flops.png": Clipart("people/clothing/thongs_01.svg"),
    "footwear/feet-in-sandals.png": Clipart("people/clothing/feet_in_sandals_jonadab__01.svg"),
    "footwear/ice-skate.png": Clipart("people/clothing/pattino_architetto_franc_01.svg"),
    # --- fashion
    "fashion/pink-floral-dress.png": Clipart("unsorted/vestito_rosa.svg"),
    "fashion/woman-in-green-dress.png": Clipart("people/woman_fashion_01_gerald__01.svg"),
    "fashion/dress-boutique-silhouettes.png": Clipart("unsorted/silouettedonnavestiti.svg"),
    "fashion/skirt-suit-on-mannequin.png": Clipart("unsorted/Attaccapanni_con_vestito_da_donna.svg"),
    "fashion/woman-in-purple-coat.png": Clipart("unsorted/signorina_in_viola.svg"),
    "fashion/black-t-shirt.png": Clipart("people/clothing/t-shirt_01.svg"),
    "fashion/teal-silk-shirt.png": Clipart("people/clothing/camicia_in_seta_architet_01.svg"),
    "fashion/duplicate-of-accessories-eyewear-sunglasses-black.png": Duplicate(
        "accessories/eyewear/sunglasses-black.png"
    ),
    # --- vehicles
    "vehicles/blue-convertible-man-driving.png": Clipart("recreation/holiday/car_ride_ganson.svg"),
    "vehicles/blue-convertible-beach-trip.png": Clipart("recreation/holiday/beach_trip_ganson.svg"),
    "vehicles/bmw-z4-roadster-blue-top-view.png": Clipart(
        "transportation/bmw_z_from_top_aubanel_.svg", crop=(0.0, 0.0, 1.0, 0.31)
    ),
    "vehicles/red-sports-car.png": Clipart("recreation/holiday/sportcar_sergio_luiz_ara_01.svg"),
    "vehicles/blue-hot-rod-coupe.png": Clipart("transportation/car_jamin_ellis_.svg"),
    "vehicles/formula-one-race-car.png": Clipart("transportation/formula_one_car_gerald_g_01.svg"),
    "vehicles/red-motorcycle.png": Clipart("transportation/motorcycle_jarno_vasama_.svg"),
    "vehicles/green-off-road-jeep.png": Clipart("transportation/toyota_land_cruiser_ganson.svg"),
    # --- accessories (sub-folders become tags)
    "accessories/eyewear/sunglasses-black.png": Clipart("people/clothing/sunglasses_01.svg", keep_alpha=True),
    "accessories/eyewear/sunglasses-outline.png": Clipart("people/clothing/sunglasses_linda_kim_01.svg"),
    "accessories/bags/leather-handbag.png": Clipart("unsorted/borsetta.svg"),
    "accessories/bags/orange-summer-tote-bag.png": Clipart("containers/borsa_estiva_architetto__01.svg"),
    "accessories/bags/straw-tote-bag.png": Clipart("people/clothing/straw_tote_linda_kim_01.svg"),
    "accessories/hats/blue-fedora.png": Clipart("people/clothing/hats/blue_fedora.svg"),
    "accessories/hats/sombrero.png": Clipart("people/clothing/hats/sombrero_dave_pena_01.svg"),
    "accessories/hats/bush-hat.png": Clipart("people/clothing/hats/aussie_hat_01.svg"),
    "accessories/charms/plush-monster-charm-brown.png": Clipart(
        "recreation/toys/domo_kun_nicu_buculei_02.svg", keep_alpha=True
    ),
    "accessories/charms/plush-monster-charm-white.png": Clipart("recreation/toys/domo_kun_nicu_buculei_01.svg"),
    "accessories/charms/teddy-bear-with-bow.png": Clipart("recreation/toys/simple_teddy_bear_with__01.svg"),
    "accessories/charms/keyring-with-keys.png": Clipart("tools/keyring_as_.svg"),
    # --- beach
    "beach/beach-umbrella-and-chairs.png": Clipart("buildings/furniture/sedia_e_ombrelloni_archi_01.svg"),
    "beach/footprints-in-sand.png": Clipart("recreation/holiday/footprints_in_sand_ganson.svg"),
    "beach/beach-ball.png": Clipart("recreation/toys/beach_ball_01.svg"),
    "beach/palm-island-and-sun.png": Clipart("plants/island_palm_and_the_sun_01.svg"),
    # --- homeware (distractors)
    "homeware/coffee-mug.png": Clipart("food/beverages/mug.svg"),
    "homeware/mug-ceramic-teal.png": Drawn(lambda: draw_mug("#2a9d8f", "#21867a"), "Teal ceramic mug"),
    "homeware/mug-ceramic-coral.png": Drawn(lambda: draw_mug("#e76f51", "#c95a3f"), "Coral ceramic mug"),
    "homeware/terrazzo-tile.png": Drawn(draw_terrazzo_tile, "Terrazzo tile swatch"),
    "homeware/piggy-bank.png": Clipart("signs_and_symbols/money/piggybank.svg"),
    # --- brand / style references
    "brand-style/brand-palette-lunar.png": Drawn(
        lambda: draw_palette(
            "Lunar",
            [
                ("midnight", "#202c60"),
                ("moonstone", "#c9d3e6"),
                ("silver", "#a7acb6"),
                ("ember", "#e07a5f"),
                ("ivory", "#f4efe6"),
            ],
        ),
        "Brand palette 'Lunar'",
    ),
    "brand-style/brand-palette-coastal.png": Drawn(
        lambda: draw_palette(
            "Coastal",
            [
                ("ocean", "#1d5c8c"),
                ("lagoon", "#3fa7c4"),
                ("sand", "#e9d3a8"),
                ("coral", "#f28c6b"),
                ("white", "#fbfbf8"),
            ],
        ),
        "Brand palette 'Coastal'",
    ),
    "brand-style/brand-mood-coastal-sunset.png": Drawn(draw_mood_sunset, "Mood image: coastal sunset"),
    "brand-style/brand-logo-lunar-crescent.png": Drawn(
        draw_logo_crescent, "Logo mark 'lunar' (crescent moon)", keep_alpha=True
    ),
}

QUERIES: list[tuple[str, list[str]]] = [
    ("a cat", ["photos/cat-chelsea.jpg"]),
    ("a cup of coffee", ["photos/cup-of-coffee.jpg"]),
    ("a rocket", ["photos/rocket-launch.jpg"]),
    ("an astronaut", ["photos/astronaut-eileen-collins.jpg"]),
    ("a man with a camera on a tripod", ["photos/cameraman-with-tripod.jpg"]),
    ("a horse", ["photos/horse-silhouette.png"]),
    ("galaxies in deep space", ["photos/hubble-deep-field-galaxies.jpg"]),
    ("old coins", ["photos/greek-coins-pompeii.jpg"]),
    ("a brick wall", ["photos/brick-wall-texture.jpg"]),
    ("a diamond necklace", ["jewelry/diamond-pendant-necklace.png", "jewelry/gold-chain-necklace.png"]),
    ("a necklace", ["jewelry/diamond-pendant-necklace.png", "jewelry/gold-chain-necklace.png"]),
    (
        "a diamond",
        [
            "jewelry/blue-diamond-gemstone.png",
            "jewelry/blue-sapphire-gemstone.png",
            "jewelry/diamond-pendant-necklace.png",
        ],
    ),
    ("wedding rings", ["jewelry/gold-wedding-rings.png"]),
    ("an earring", ["jewelry/drop-earring.png"]),
    ("a wrist watch", ["watches/blue-wristwatch.png", "watches/stopwatch-chrome.png"]),
    ("a blue watch", ["watches/blue-wristwatch.png"]),
    ("a stopwatch", ["watches/stopwatch-chrome.png"]),
    ("a wall clock", ["watches/wall-clock-modern.png"]),
    ("high heels", ["footwear/high-heel-pump-red.png", "footwear/high-heel-pump-black.png"]),
    (
        "shoes",
        [
            "footwear/high-heel-pump-red.png",
            "footwear/high-heel-pump-black.png",
            "footwear/tennis-shoes-pair.png",
            "footwear/hiking-boot-leather.png",
        ],
    ),
    ("sneakers", ["footwear/tennis-shoes-pair.png"]),
    ("a hiking boot", ["footwear/hiking-boot-leather.png"]),
    ("sandals", ["footwear/flip-flops.png", "footwear/feet-in-sandals.png"]),
    (
        "a dress",
        [
            "fashion/pink-floral-dress.png",
            "fashion/woman-in-green-dress.png",
            "fashion/dress-boutique-silhouettes.png",
        ],
    ),
    (
        "a woman wearing a dress",
        ["fashion/woman-in-green-dress.png", "fashion/dress-boutique-silhouettes.png"],
    ),
    ("a t-shirt", ["fashion/black-t-shirt.png"]),
    ("a shirt", ["fashion/teal-silk-shirt.png", "fashion/black-t-shirt.png"]),
    (
        "a convertible sports car",
        [
            "vehicles/blue-convertible-man-driving.png",
            "vehicles/blue-convertible-beach-trip.png",
            "vehicles/bmw-z4-roadster-blue-top-view.png",
            "vehicles/red-sports-car.png",
        ],
    ),
    (
        "a blue convertible",
        [
            "vehicles/blue-convertible-man-driving.png",
            "vehicles/blue-convertible-beach-trip.png",
            "vehicles/bmw-z4-roadster-blue-top-view.png",
        ],
    ),
    (
        "a sports car",
        [
            "vehicles/red-sports-car.png",
            "vehicles/blue-hot-rod-coupe.png",
            "vehicles/bmw-z4-roadster-blue-top-view.png",
        ],
    ),
    ("a race car", ["vehicles/formula-one-race-car.png"]),
    ("a motorcycle", ["vehicles/red-motorcycle.png"]),
    ("a jeep", ["vehicles/green-off-road-jeep.png"]),
    (
        "sunglasses",
        [
            "accessories/eyewear/sunglasses-black.png",
            "fashion/duplicate-of-accessories-eyewear-sunglasses-black.png",
            "accessories/eyewear/sunglasses-outline.png",
        ],
    ),
    (
        "a handbag",
        [
            "accessories/bags/leather-handbag.png",
            "accessories/bags/orange-summer-tote-bag.png",
            "accessories/bags/straw-tote-bag.png",
        ],
    ),
    (
        "a hat",
        [
            "accessories/hats/blue-fedora.png",
            "accessories/hats/sombrero.png",
            "accessories/hats/bush-hat.png",
        ],
    ),
    ("a sombrero", ["accessories/hats/sombrero.png"]),
    (
        "a plush toy pendant",
        [
            "accessories/charms/plush-monster-charm-brown.png",
            "accessories/charms/plush-monster-charm-white.png",
            "accessories/charms/teddy-bear-with-bow.png",
        ],
    ),
    ("a teddy bear", ["accessories/charms/teddy-bear-with-bow.png"]),
    ("a bunch of keys", ["accessories/charms/keyring-with-keys.png"]),
    (
        "the beach",
        [
            "beach/beach-umbrella-and-chairs.png",
            "beach/footprints-in-sand.png",
            "beach/beach-ball.png",
            "beach/palm-island-and-sun.png",
            "vehicles/blue-convertible-beach-trip.png",
        ],
    ),
    ("a beach umbrella", ["beach/beach-umbrella-and-chairs.png"]),
    ("a beach ball", ["beach/beach-ball.png"]),
    ("a palm tree", ["beach/palm-island-and-sun.png"]),
    ("a mug", ["homeware/coffee-mug.png", "homeware/mug-ceramic-teal.png", "homeware/mug-ceramic-coral.png"]),
    ("a piggy bank", ["homeware/piggy-bank.png"]),
    (
        "a brand colour palette",
        ["brand-style/brand-palette-lunar.png", "brand-style/brand-palette-coastal.png"],
    ),
    ("a sunset over the sea", ["brand-style/brand-mood-coastal-sunset.png"]),
    ("a logo", ["brand-style/brand-logo-lunar-crescent.png"]),
]


#: the labelled queries in other languages (same relevance labels), written to queries.<lang>.jsonl: for
#: measuring multilingual search (docs/quality.md, "Multilingual queries"). Translated by hand.
QUERY_TRANSLATIONS: dict[str, dict[str, str]] = {
    "fr": {
        "a cat": "un chat",
        "a cup of coffee": "une tasse de café",
        "a rocket": "une fusée",
        "an astronaut": "un astronaute",
        "a man with a camera on a tripod": "un homme avec un appareil photo sur un trépied",
        "a horse": "un cheval",
        "galaxies in deep space": "des galaxies dans l'espace lointain",
        "old coins": "de vieilles pièces de monnaie",
        "a brick wall": "un mur de briques",
        "a diamond necklace": "un collier de diamants",
        "a necklace": "un collier",
        "a diamond": "un diamant",
        "wedding rings": "des alliances",
        "an earring": "une boucle d'oreille",
        "a wrist watch": "une montre-bracelet",
        "a blue watch": "une montre bleue",
        "a stopwatch": "un chronomètre",
        "a wall clock": "une horloge murale",
        "high heels": "des talons hauts",
        "shoes": "des chaussures",
        "sneakers": "des baskets",
        "a hiking boot": "une chaussure de randonnée",
        "sandals": "des sandales",
        "a dress": "une robe",
        "a woman wearing a dress": "une femme portant une robe",
        "a t-shirt": "un t-shirt",
        "a shirt": "une chemise",
        "a convertible sports car": "une voiture de sport décapotable",
        "a blue convertible": "une décapotable bleue",
        "a sports car": "une voiture de sport",
        "a race car": "une voiture de course",
        "a motorcycle": "une moto",
        "a jeep": "une jeep",
        "sunglasses": "des lunettes de soleil",
        "a handbag": "un sac à main",
        "a hat": "un chapeau",
        "a sombrero": "un sombrero",
        "a plush toy pendant": "un pendentif en peluche",
        "a teddy bear": "un ours en peluche",
        "a bunch of keys": "un trousseau de clés",
        "the beach": "la plage",
        "a beach umbrella": "un parasol de plage",
        "a beach ball": "un ballon de plage",
        "a palm tree": "un palmier",
        "a mug": "une tasse",
        "a piggy bank": "une tirelire",
        "a brand colour palette": "une palette de couleurs de marque",
        "a sunset over the sea": "un coucher de soleil sur la mer",
        "a logo": "un logo",
    },
    "de": {
        "a cat": "eine Katze",
        "a cup of coffee": "eine Tasse Kaffee",
        "a rocket": "eine Rakete",
        "an astronaut": "ein Astronaut",
        "a man with a camera on a tripod": "ein Mann mit einer Kamera auf einem Stativ",
        "a horse": "ein Pferd",
        "galaxies in deep space": "Galaxien im tiefen Weltraum",
        "old coins": "alte Münzen",
        "a brick wall": "eine Ziegelmauer",
        "a diamond necklace": "eine Diamantkette",
        "a necklace": "eine Halskette",
        "a diamond": "ein Diamant",
        "wedding rings": "Eheringe",
        "an earring": "ein Ohrring",
        "a wrist watch": "eine Armbanduhr",
        "a blue watch": "eine blaue Uhr",
        "a stopwatch": "eine Stoppuhr",
        "a wall clock": "eine Wanduhr",
        "high heels": "hochhackige Schuhe",
        "shoes": "Schuhe",
        "sneakers": "Turnschuhe",
        "a hiking boot": "ein Wanderstiefel",
        "sandals": "Sandalen",
        "a dress": "ein Kleid",
        "a woman wearing a dress": "eine Frau in einem Kleid",
        "a t-shirt": "ein T-Shirt",
        "a shirt": "ein Hemd",
        "a convertible sports car": "ein Cabrio-Sportwagen",
        "a blue convertible": "ein blaues Cabrio",
        "a sports car": "ein Sportwagen",
        "a race car": "ein Rennwagen",
        "a motorcycle": "ein Motorrad",
        "a jeep": "ein Jeep",
        "sunglasses": "eine Sonnenbrille",
        "a handbag": "eine Handtasche",
        "a hat": "ein Hut",
        "a sombrero": "ein Sombrero",
        "a plush toy pendant": "ein Plüschanhänger",
        "a teddy bear": "ein Teddybär",
        "a bunch of keys": "ein Schlüsselbund",
        "the beach": "der Strand",
        "a beach umbrella": "ein Sonnenschirm am Strand",
        "a beach ball": "ein Wasserball",
        "a palm tree": "eine Palme",
        "a mug": "ein Becher",
        "a piggy bank": "ein Sparschwein",
        "a brand colour palette": "die Farbpalette einer Marke",
        "a sunset over the sea": "ein Sonnenuntergang über dem Meer",
        "a logo": "ein Logo",
    },
    "es": {
        "a cat": "un gato",
        "a cup of coffee": "una taza de café",
        "a rocket": "un cohete",
        "an astronaut": "un astronauta",
        "a man with a camera on a tripod": "un hombre con una cámara sobre un trípode",
        "a horse": "un caballo",
        "galaxies in deep space": "galaxias en el espacio profundo",
        "old coins": "monedas antiguas",
        "a brick wall": "una pared de ladrillos",
        "a diamond necklace": "un collar de diamantes",
        "a necklace": "un collar",
        "a diamond": "un diamante",
        "wedding rings": "anillos de boda",
        "an earring": "un pendiente",
        "a wrist watch": "un reloj de pulsera",
        "a blue watch": "un reloj azul",
        "a stopwatch": "un cronómetro",
        "a wall clock": "un reloj de pared",
        "high heels": "zapatos de tacón alto",
        "shoes": "zapatos",
        "sneakers": "zapatillas deportivas",
        "a hiking boot": "una bota de montaña",
        "sandals": "sandalias",
        "a dress": "un vestido",
        "a woman wearing a dress": "una mujer con un vestido",
        "a t-shirt": "una camiseta",
        "a shirt": "una camisa",
        "a convertible sports car": "un deportivo descapotable",
        "a blue convertible": "un descapotable azul",
        "a sports car": "un coche deportivo",
        "a race car": "un coche de carreras",
        "a motorcycle": "una moto",
        "a jeep": "un jeep",
        "sunglasses": "gafas de sol",
        "a handbag": "un bolso",
        "a hat": "un sombrero",
        "a sombrero": "un sombrero mexicano",
        "a plush toy pendant": "un colgante de peluche",
        "a teddy bear": "un osito de peluche",
        "a bunch of keys": "un manojo de llaves",
        "the beach": "la playa",
        "a beach umbrella": "una sombrilla de playa",
        "a beach ball": "una pelota de playa",
        "a palm tree": "una palmera",
        "a mug": "una taza",
        "a piggy bank": "una hucha",
        "a brand colour palette": "la paleta de colores de una marca",
        "a sunset over the sea": "una puesta de sol sobre el mar",
        "a logo": "un logotipo",
    },
}


# ------------------------------------------------------------------------------------------- building


def save(im: Image.Image, out: Path, keep_alpha: bool = False) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    im = fit(im)
    if out.suffix == ".jpg":
        on_white(im).save(out, "JPEG", quality=87, optimize=True, progressive=False)
    elif keep_alpha:
        im.convert("RGBA").save(out, "PNG", optimize=True)
    else:
        on_white(im).save(out, "PNG", optimize=True)


def clipart_meta(svg: str) -> dict[str, str]:
    """An openclipart drawing's metadata; refuses anything not dedicated to the public domain."""
    meta = svg_metadata(OPENCLIPART / "svg" / svg)
    if not meta["licence"].lower().rstrip("/").endswith("publicdomain"):
        raise SystemExit(f"{svg}: licence {meta['licence']!r} is not public domain")
    return meta


def build(root: Path) -> list[dict[str, str]]:
    """Write every file of LIBRARY; return one README row (path, item, source, licence) per file."""
    library = root / "library"
    if library.exists():
        shutil.rmtree(library)
    rows: list[dict[str, str]] = []
    skdata = skimage_data_dir()
    # duplicates last: they copy a file built before them
    for rel, src in sorted(LIBRARY.items(), key=lambda kv: isinstance(kv[1], Duplicate)):
        out = library / rel
        if isinstance(src, SkimagePhoto):
            with Image.open(skdata / src.file) as f:
                im = f.convert("RGBA") if f.mode in ("RGBA", "LA", "P") else f.convert("RGB")
            save(im, out, keep_alpha=im.mode == "RGBA")
            source, licence = f"scikit-image `skimage/data/{src.file}`: {src.title}", src.licence
        elif isinstance(src, Clipart):
            meta = clipart_meta(src.svg)
            save(load_clipart(src), out, keep_alpha=src.keep_alpha)
            source = f"openclipart `{Path(src.svg).with_suffix('.png')}`: “{meta['title']}” by {meta['creator']}"
            source += " (cropped)" if src.crop else ""
            licence = OPENCLIPART_LICENCE
        elif isinstance(src, Drawn):
            metas = [clipart_meta(svg) for svg in src.uses]
            save(src.make(), out, keep_alpha=src.keep_alpha)
            source = f"drawn by this script: {src.title}"
            licence = "Apache-2.0 (this project)"
            if src.uses:
                source += ", from openclipart " + ", ".join(
                    f"`{Path(svg).with_suffix('.png')}` (“{m['title']}” by {m['creator']})"
                    for svg, m in zip(src.uses, metas, strict=True)
                )
                licence = "Open Clip Art parts: public domain; additions: Apache-2.0 (this project)"
        else:
            shutil.copyfile(library / src.of, out)
            source, licence = f"**byte-identical copy** of `{src.of}`", "as the original"
        item = Path(rel).stem.replace("duplicate-of-", "").replace("-", " ")
        rows.append({"path": rel, "item": item, "source": source, "licence": licence})
    return rows


def check(root: Path) -> tuple[int, list[tuple[str, str]]]:
    """Total size and the duplicate pairs (by content hash); fails when the invariants break."""
    library = root / "library"
    by_hash: dict[str, list[str]] = {}
    total = 0
    for f in sorted(library.rglob("*")):
        if f.is_file():
            total += f.stat().st_size
            by_hash.setdefault(hashlib.sha256(f.read_bytes()).hexdigest(), []).append(f.relative_to(library).as_posix())
            with Image.open(f) as im:
                if max(im.size) > MAX_SIDE:
                    raise SystemExit(f"{f}: {im.size} is larger than {MAX_SIDE} px")
    dups = [tuple(v) for v in by_hash.values() if len(v) > 1]
    if len(dups) != 1 or len(dups[0]) != 2:
        raise SystemExit(f"expected exactly one duplicate pair, found {dups}")
    if total > 6 * 1024 * 1024:
        raise SystemExit(f"library is {total / 1e6:.1f} MB, over the 6 MB budget")
    for query, relevant in QUERIES:
        for rel in relevant:
            if not (library / rel).is_file():
                raise SystemExit(f"query {query!r}: {rel} does not exist")
    return total, dups  # type: ignore[return-value]


README_HEAD = """# Sample library

`library/` is a small, real image library for tests, benchmarks and the demo: {count} files, {size:.1f} MB.
It is generated by `scripts/make_samples.py` — edit the script, not the files (this README and
`queries.jsonl` are generated too).

- **Folders are collections**: the first folder under `library/` becomes an asset's `collection`
  (`photos`, `jewelry`, `watches`, …) and every folder on the path a tag
  (`accessories/bags/…` → collection `accessories`, tags `accessories`, `bags`).
- **One duplicate**: `{dup_copy}` is a byte-identical copy of `{dup_orig}`, so ingest must collapse them
  into one asset (the id is the SHA-256 of the bytes). No other two files are identical.
- **Alpha**: {alpha} keep their transparency; every other drawing is flattened onto white.
- **Sources**: photos that ship inside the scikit-image wheel (`skimage/data`, licences as stated in the
  docstrings of `skimage.data`); clipart from Debian's `openclipart-png` / `openclipart-svg` 0.18
  (Open Clip Art Library, public-domain dedication; titles and authors from each SVG's metadata);
  and a few images drawn with Pillow by the script (brand palettes, a mood image, a logo, mugs, a tile,
  two high-heel pumps), some composed from public-domain drawings (diamond pendant necklace, blue wristwatch).
- **Scenario**: the product folders serve the grounded-generation brief *"A model poses leaning on a blue
  convertible sports car. She wears a halter dress, a diamond necklace and a blue watch, high heels, and
  holds a Labubu pendant"* — references for each item, plus distractors (other products, photos).
  Open Clip Art 0.18 has no wristwatch, high heels or Labubu: the watch and the necklace are composites,
  the pumps are drawn, and plush-monster (Domo-kun) charms stand in for the pendant.

`queries.jsonl` holds one JSON object per line, `{{"query": ..., "relevant": [paths relative to library/]}}`,
for retrieval-quality evaluation; `queries.fr.jsonl`, `queries.de.jsonl`, `queries.es.jsonl` are the same
queries translated by hand into French, German and Spanish, with the same labels (multilingual search).

Licences: scikit-image photos as stated in the `skimage.data` docstrings (quoted per file below);
Open Clip Art drawings carry the Open Clip Art Library public-domain dedication (each SVG's `cc:license`
is `http://web.resource.org/cc/PublicDomain`, checked by the script; Debian's copyright file:
`/usr/share/doc/openclipart-png/copyright`); images drawn by the script are part of this project.

| file | item | source | licence |
|---|---|---|---|
"""


def image_mode(path: Path) -> str:
    with Image.open(path) as im:
        return im.mode


def write_docs(root: Path, rows: list[dict[str, str]], total: int, dup: tuple[str, str]) -> None:
    library = root / "library"
    alpha = [r for r in LIBRARY if r.endswith(".png") and image_mode(library / r) in ("RGBA", "LA")]
    orig, copy = sorted(dup, key=lambda p: p.startswith("fashion/duplicate-of"))
    head = README_HEAD.format(
        count=len(rows),
        size=total / 1e6,
        dup_copy=copy,
        dup_orig=orig,
        alpha=", ".join(f"`{a}`" for a in sorted(alpha)),
    )
    lines = [
        f"| `{r['path']}` | {r['item']} | {r['source'].replace('|', '/')} | {r['licence']} |"
        for r in sorted(rows, key=lambda r: r["path"])
    ]
    (root / "README.md").write_text(head + "\n".join(lines) + "\n", encoding="utf-8")
    with (root / "queries.jsonl").open("w", encoding="utf-8") as f:
        for query, relevant in QUERIES:
            f.write(json.dumps({"query": query, "relevant": relevant}) + "\n")
    write_translated_queries(root)


def write_translated_queries(root: Path) -> None:
    """queries.<lang>.jsonl: QUERIES with each query in another language and the same relevance labels."""
    for lang, table in QUERY_TRANSLATIONS.items():
        missing = [q for q, _ in QUERIES if q not in table]
        if missing or len(table) != len(QUERIES):
            raise SystemExit(f"QUERY_TRANSLATIONS[{lang!r}] must translate every query; missing {missing}")
        with (root / f"queries.{lang}.jsonl").open("w", encoding="utf-8") as f:
            for query, relevant in QUERIES:
                f.write(json.dumps({"query": table[query], "relevant": relevant}, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1] / "samples")
    args = parser.parse_args(argv)
    if not (OPENCLIPART / "png").is_dir() or not (OPENCLIPART / "svg").is_dir():
        print(
            "missing Open Clip Art: apt-get install -y openclipart-png openclipart-svg librsvg2-bin",
            file=sys.stderr,
        )
        return 2
    rows = build(args.root)
    total, dups = check(args.root)
    write_docs(args.root, rows, total, dups[0])
    print(f"{len(rows)} files, {total / 1e6:.2f} MB in {args.root / 'library'}; duplicate pair: {dups[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
