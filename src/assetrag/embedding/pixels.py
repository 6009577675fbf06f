"""Model input pixels made by the decode workers: the fast ingest path's half that needs no torch.

A model that can take pixels directly (`PixelEmbedder`) describes them with a `PixelSpec`: how to resize and
crop an image, and how the model normalises the result. Workers turn file bytes straight into those uint8
pixels (JPEG draft mode to the smallest DCT scale that still covers the model's input, then the exact resize
and crop of the model's own image processor), so the embedder only stacks, normalises and runs the model.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from assetrag.decode import MAX_PIXELS, decode_bytes

_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


@dataclass(frozen=True)
class PixelSpec:
    """What a model's image processor does to an RGB image, as data (picklable, no torch).

    `views="crop"` (CLIP processors): resize the short side to `short_side` (the long side to
    `int(short_side * long / short)`), then take the centre `crop_h`×`crop_w`. `views="conse"` (the offline
    model): two views of `crop_h`×`crop_w` — the centre `crop/short_side` of the short side, and the whole
    image squashed. The model then computes `(pixel * scale - mean) / std` per channel.
    """

    short_side: int
    crop_h: int
    crop_w: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 1 / 255
    resample: Literal["bicubic", "bilinear"] = "bicubic"
    views: Literal["crop", "conse"] = "crop"
    reducing_gap: float | None = None

    @property
    def n_views(self) -> int:
        return 2 if self.views == "conse" else 1

    @property
    def draft_side(self) -> int:
        """The JPEG decoder may shrink (DCT scaling) as long as both sides stay at least this long."""
        return max(self.short_side, self.crop_h, self.crop_w)

    def prepare(self, image: Image.Image) -> np.ndarray:
        """(n_views, crop_h, crop_w, 3) uint8: exactly the pixels the model's processor would normalise."""
        im = image if image.mode == "RGB" else image.convert("RGB")
        resample = _RESAMPLE[self.resample]
        size = (self.crop_w, self.crop_h)
        if self.views == "conse":
            w, h = im.size
            side = min(w, h) * self.crop_h / self.short_side
            box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
            crop = im.resize(size, resample, box=box, reducing_gap=self.reducing_gap)
            whole = im.resize(size, resample, reducing_gap=self.reducing_gap)
            return np.stack([np.asarray(crop), np.asarray(whole)])
        w, h = im.size
        if w <= h:
            new_w, new_h = self.short_side, int(self.short_side * h / w)
        else:
            new_w, new_h = int(self.short_side * w / h), self.short_side
        if (new_w, new_h) != (w, h):
            im = im.resize((new_w, new_h), resample, reducing_gap=self.reducing_gap)
        arr = np.asarray(im)
        top, left = (new_h - self.crop_h) // 2, (new_w - self.crop_w) // 2
        if top < 0 or left < 0:  # smaller than the crop: zero padding, as transformers' center_crop does
            out = np.zeros((max(new_h, self.crop_h), max(new_w, self.crop_w), 3), np.uint8)
            pt, pl = -((new_h - out.shape[0]) // 2), -((new_w - out.shape[1]) // 2)
            out[pt : pt + new_h, pl : pl + new_w] = arr
            arr, new_h, new_w = out, out.shape[0], out.shape[1]
            top, left = (new_h - self.crop_h) // 2, (new_w - self.crop_w) // 2
        return np.ascontiguousarray(arr[top : top + self.crop_h, left : left + self.crop_w])[None]


@dataclass(frozen=True)
class Pixels:
    """Model input pixels of one file, with the original (upright) size of the image."""

    pixels: np.ndarray  # (n_views, H, W, 3) uint8
    width: int
    height: int


def decode_pixels(data: bytes, name: str, spec: PixelSpec) -> Pixels:
    """`decode_bytes` (same safety: bomb limit, EXIF, CMYK, 16-bit, alpha on white, first frame) with the JPEG
    decoded only as large as the model needs, then resized and cropped for it. Raises `BadImageError`."""
    decoded = decode_bytes(data, name, max_side=None, draft_side=spec.draft_side)
    return Pixels(spec.prepare(decoded.image), decoded.width, decoded.height)


def gpu_decodable(data: bytes) -> tuple[int, int] | None:
    """(width, height) when `data` is a JPEG a GPU decoder (nvJPEG) can take as is — baseline, 8-bit, YCbCr or
    grey, upright (no EXIF rotation), complete (ends with the EOI marker, so truncation is caught on the CPU),
    within the bomb limit; None for everything else, which the CPU path decodes with all its safeguards."""
    if len(data) < 4 or data[:3] != b"\xff\xd8\xff" or not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "JPEG" or img.mode not in ("RGB", "L") or img.info.get("progressive"):
                return None
            width, height = img.size
            if width * height > MAX_PIXELS or width < 1 or height < 1:
                return None
            if img.getexif().get(0x0112, 1) not in (0, 1):
                return None
            return width, height
    except Exception:  # anything odd: let the CPU path decide and explain
        return None


def normalise_np(batch: np.ndarray, spec: PixelSpec) -> np.ndarray:
    """(N, V, H, W, 3) uint8 → (N·V, 3, H, W) float32 `(x·scale − mean) / std` (the NumPy twin of
    `tensors.normalise`, for ONNX Runtime)."""
    n, v, h, w, c = batch.shape
    x = batch.reshape(n * v, h, w, c).astype(np.float32).transpose(0, 3, 1, 2)
    mean = np.asarray(spec.mean, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(spec.std, dtype=np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((x * np.float32(spec.scale) - mean) / std, dtype=np.float32)
