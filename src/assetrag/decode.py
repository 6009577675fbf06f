"""Turn an image file into a clean RGB PIL image, or a `BadImageError` that says why not."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from assetrag.errors import BadImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
#: Pillow's own default bomb limit; anything larger is refused, never decoded
MAX_PIXELS = 89_478_485
#: long side of the image handed to the embedder (models resize to 224–384 anyway)
DEFAULT_MAX_SIDE = 512

ImageFile.LOAD_TRUNCATED_IMAGES = False


@dataclass(frozen=True)
class Decoded:
    """A decoded image, shrunk for embedding, with the original (upright) size."""

    image: Image.Image
    width: int
    height: int


def decode_bytes(
    data: bytes, name: str, max_side: int | None = DEFAULT_MAX_SIDE, *, draft_side: int | None = None
) -> Decoded:
    """Decode `data` (the bytes of file `name`) to RGB, EXIF-upright, alpha on white, long side ≤ max_side.

    A JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that keeps both sides ≥ `draft_side`
    (default: `max_side`); `max_side=None, draft_side=224` gives a short side of at least 224, unresized."""
    if not data:
        raise BadImageError(name, "empty file (0 bytes); re-export or remove it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise BadImageError(
                    name,
                    f"{width}×{height} pixels exceeds the {MAX_PIXELS:,}-pixel safety limit "
                    "(possible decompression bomb); downscale it before ingesting",
                )
            orientation = img.getexif().get(0x0112, 1)
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            draft = draft_side or max_side
            if draft and img.format == "JPEG":
                img.draft("RGB", (draft, draft))  # DCT-domain downscale: much less to decode
            img.seek(0)  # first frame of an animation
            img.load()
            img = ImageOps.exif_transpose(img)
            img = to_rgb(img)
            if max_side and max(img.size) > max_side:
                img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    except BadImageError:
        raise
    except UnidentifiedImageError as exc:
        raise BadImageError(name, "not an image Pillow can read (wrong extension or unsupported format)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImageError(name, f"too many pixels (possible decompression bomb): {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise BadImageError(name, f"corrupt or truncated image data ({exc}); re-export the file") from exc
    return Decoded(image=img, width=int(width), height=int(height))


def decode_file(path: str | Path, max_side: int | None = DEFAULT_MAX_SIDE) -> Decoded:
    """`decode_bytes` for a file on disk (read errors become `BadImageError`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadImageError(str(path), f"cannot read the file ({exc.strerror or exc})") from exc
    return decode_bytes(data, str(path), max_side)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode → RGB: palette/alpha composited on white, CMYK converted, 16-bit/float scaled."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
        if mode == "RGB":
            return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode not in ("CMYK", "YCbCr", "LAB", "HSV", "1", "L")):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


# -- perceptual hash -------------------------------------------------------------------------------------------

#: the side an image is shrunk to before it is hashed, so every ingest path (a full decode, a JPEG draft decode,
#: a GPU-decoded JPEG's bytes) hashes the same picture
HASH_SIDE = 256


def perceptual_hash(img: Image.Image) -> str:
    """The 64-bit perceptual hash stored with each asset (`phash`), as 16 hex digits: `imagehash`'s difference
    hash (dHash, 8×8) of the image shrunk to `HASH_SIDE`. Chosen by benchmarks/near_duplicates.py: of pHash,
    dHash, wHash and aHash it keeps the most copies (resized, re-encoded, cropped ≤ 5 %, overlaid,
    colour-shifted) at the fewest distinct images (docs/benchmarks.md)."""
    import imagehash

    small = img.copy()
    small.thumbnail((HASH_SIDE, HASH_SIDE), Image.Resampling.BILINEAR)
    return str(imagehash.dhash(to_rgb(small)))


def hash_bytes(data: bytes, name: str) -> str:
    """`perceptual_hash` of encoded image bytes (a JPEG is draft-decoded near `HASH_SIDE`: cheap)."""
    return perceptual_hash(decode_bytes(data, name, HASH_SIDE).image)


def hash_distance(a: str, b: str) -> int:
    """Bits that differ between two `perceptual_hash` values."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
