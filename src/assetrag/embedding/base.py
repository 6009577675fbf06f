"""The `Embedder` protocol every embedding backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from assetrag.embedding.pixels import PixelSpec


@runtime_checkable
class Embedder(Protocol):
    """Puts images and texts into one vector space.

    Rows are float32 and L2-normalised, so a dot product is the cosine similarity.
    """

    name: str  # stable identifier stored with the collection, e.g. "clip:openai/clip-vit-base-patch32"
    dim: int

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(len(images), dim) float32, L2-normalised. Images are RGB PIL images."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised."""
        ...


@runtime_checkable
class PixelEmbedder(Embedder, Protocol):
    """An embedder that also takes ready-made model input pixels (the fast ingest path).

    `pixel_spec` says how to make them (None when this model's preprocessing is not one a `PixelSpec` can
    describe: then use `embed_images`); `embed_pixels` must give the same rows as `embed_images` on the images
    the pixels were made from (within float tolerance).
    """

    @property
    def pixel_spec(self) -> PixelSpec | None: ...

    def embed_pixels(self, pixels: Sequence[Any] | Any) -> np.ndarray:
        """(n, dim) float32, L2-normalised, from n uint8 arrays of shape (views, H, W, 3) made by
        `pixel_spec.prepare` — NumPy arrays or torch tensors (on any device), a list or one stacked array."""
        ...


def pixel_spec_of(embedder: Embedder) -> PixelSpec | None:
    """The embedder's `PixelSpec` when it has the fast path, else None."""
    if isinstance(embedder, PixelEmbedder):
        return embedder.pixel_spec
    return None


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32, copy=False)
