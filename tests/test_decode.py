"""Decoding: every odd image mode becomes clean RGB; broken files become BadImageError with a reason."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from assetrag.decode import MAX_PIXELS, decode_bytes
from assetrag.errors import BadImageError


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_exif_orientation_is_applied_and_size_is_upright():
    img = Image.new("RGB", (40, 20), "red")
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    d = decode_bytes(_bytes(img, "JPEG", exif=exif.tobytes(), quality=95), "rot.jpg")
    assert (d.width, d.height) == (20, 40)
    assert d.image.size == (20, 40)
    top = np.asarray(d.image)[:5].mean(axis=(0, 1))
    assert top[2] > 150 and top[0] < 100  # the blue band is now on top


def test_alpha_and_palette_transparency_composite_on_white():
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    assert np.asarray(decode_bytes(_bytes(rgba, "PNG"), "a.png").image).min() == 255
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0] * 256)
    d = decode_bytes(_bytes(pal, "PNG", transparency=0), "p.png")
    assert d.image.mode == "RGB" and np.asarray(d.image).min() == 255


def test_cmyk_and_16_bit_are_converted():
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red
    d = decode_bytes(_bytes(cmyk, "JPEG"), "c.jpg")
    r, g, b = np.asarray(d.image).reshape(-1, 3).mean(axis=0)
    assert d.image.mode == "RGB" and r > 200 and g < 60 and b < 60
    arr = np.full((8, 8), 40000, dtype=np.uint16)
    d16 = decode_bytes(_bytes(Image.fromarray(arr), "PNG"), "g16.png")
    assert d16.image.mode == "RGB" and 150 < np.asarray(d16.image).mean() < 160  # 40000/65535*255 ≈ 156


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    d = decode_bytes(buf.getvalue(), "anim.gif")
    assert np.asarray(d.image)[..., 0].mean() > 200


def test_large_images_are_shrunk_for_embedding():
    d = decode_bytes(_bytes(Image.new("RGB", (3000, 1500), "green"), "JPEG"), "big.jpg", max_side=512)
    assert (d.width, d.height) == (3000, 1500)
    assert max(d.image.size) <= 512


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"this is not an image at all", "not an image"),
        (_bytes(Image.new("RGB", (64, 64), "red"), "JPEG")[:200], "truncated"),
        (_bytes(Image.new("RGB", (64, 64), "red"), "PNG")[:80], "truncated"),
    ],
)
def test_broken_files_raise_with_a_reason(data, reason):
    with pytest.raises(BadImageError) as err:
        decode_bytes(data, "bad.jpg")
    assert err.value.path == "bad.jpg"
    assert reason in err.value.reason


def test_decompression_bomb_is_refused_without_decoding():
    side = int(MAX_PIXELS**0.5) + 10
    bomb = _bytes(Image.new("1", (side, side)), "PNG")  # tiny file, huge canvas
    assert len(bomb) < 2_000_000
    with pytest.raises(BadImageError, match="decompression bomb"):
        decode_bytes(bomb, "bomb.png")
