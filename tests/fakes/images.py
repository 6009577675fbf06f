"""Small deterministic test images."""

from __future__ import annotations

import numpy as np
from PIL import Image


def make_image(seed: int, size: tuple[int, int] = (48, 32)) -> Image.Image:
    """A small RGB noise image, distinct per seed (so images received by a fake can be told apart)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(arr, "RGB")
