"""The offline model, version 2: ConSE plus a trained alignment head (still no download, still no CLIP).

ConSE (`assetrag.embedding.conse`) can only say which of ImageNet's 1,000 classes an image looks like. The
head adds what the classifier *sees*: a small MLP, trained with a contrastive loss on captioned clipart and
emoji (scripts/train_head.py; both pretrained encoders frozen), maps EfficientNet-Lite0's pooled
penultimate features (1280-d) straight into all-MiniLM-L6-v2's sentence space. The image vector is the
normalised mix `alpha · ConSE + (1 - alpha) · head` (alpha from the head file, 0.5); texts are embedded
exactly as in ConSE, so text queries cost the same. One EfficientNet pass feeds both parts.

It is still much weaker than CLIP: the head learnt from ~8k drawings and ~1.5k emoji. See
docs/offline-model.md (model card, data, numbers).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from assetrag.embedding._runtime import load_weights, save_weights
from assetrag.embedding.base import l2_normalise
from assetrag.embedding.conse import DIM, FEATURE_DIM, ConseEmbedder
from assetrag.errors import ModelUnavailableError

HEAD_FILE = Path(__file__).resolve().parents[1] / "data" / "offline-head-v1.safetensors"
HEAD_VERSION = 1
NAME_COMBINED = f"offline:conse-head-effnetlite0-minilm-v{HEAD_VERSION + 1}"
NAME_HEAD = f"offline:head-effnetlite0-minilm-v{HEAD_VERSION}"


def save_head(path: str | os.PathLike[str], weights: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write head weights (float16) and their metadata to a safetensors file."""
    save_weights(path, {k: np.asarray(v, dtype=np.float16) for k, v in weights.items()}, meta)


def load_head(path: str | os.PathLike[str] = HEAD_FILE) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(float32 weights, metadata) of a head file."""
    weights, meta = load_weights(
        path,
        "the offline model's head file is missing; reinstall assetrag (it ships in the package) or retrain it "
        "with scripts/train_head.py",
    )
    if weights.get("mean") is None or weights["mean"].shape != (FEATURE_DIM,):
        raise ModelUnavailableError(f"{path} is not an assetrag head file (no {FEATURE_DIM}-d feature statistics)")
    return weights, meta


class HeadEmbedder(ConseEmbedder):
    """Offline image/text embedder (384-d): ConSE mixed with a trained feature→sentence-space head.

    `combined=False` gives the head alone (for measurements). Weaker than CLIP; see the module docstring.
    """

    def __init__(
        self,
        *,
        combined: bool = True,
        head_file: str | os.PathLike[str] | None = None,
        device: str = "auto",
        batch_size: int = 32,
        cache_dir: str | os.PathLike[str] | None = None,
        **runtime: Any,
    ) -> None:
        """`runtime`: runtime, quantize, threads, announce — as for `ConseEmbedder`."""
        weights, meta = load_head(head_file or HEAD_FILE)
        super().__init__(device=device, batch_size=batch_size, cache_dir=cache_dir, **runtime)
        self.meta = meta
        self.alpha = float(meta.get("alpha_conse", 0.5)) if combined else 0.0
        self.name = NAME_COMBINED if combined else NAME_HEAD
        self.dim = DIM
        self._layers = []
        i = 0
        while f"w{i}" in weights:
            self._layers.append((weights[f"w{i}"], weights[f"b{i}"]))
            i += 1
        if not self._layers or self._layers[-1][0].shape[1] != DIM:
            raise ModelUnavailableError(f"the head file does not map to the {DIM}-d sentence space")
        self._mean = weights["mean"]
        self._std = weights["std"]

    def head_vectors(self, pooled: np.ndarray) -> np.ndarray:
        """(n, 384) L2-normalised head outputs for pooled EfficientNet features (n, 1280)."""
        x = (np.asarray(pooled, dtype=np.float32) - self._mean) / self._std
        with one_blas_thread():
            for j, (w, b) in enumerate(self._layers):
                x = x @ w + b
                if j < len(self._layers) - 1:
                    x = _gelu(x)
        return l2_normalise(x)

    def vectors_from_features(self, pooled: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """(n, 384) float32, L2-normalised: alpha · ConSE + (1 - alpha) · head, renormalised (both the
        `embed_images` and the fast ingest path's `embed_pixels` come here)."""
        head = self.head_vectors(pooled)
        if self.alpha <= 0:
            return head
        return l2_normalise(self.alpha * self.conse_vectors(probs) + (1.0 - self.alpha) * head)

    def __repr__(self) -> str:
        return f"HeadEmbedder(name={self.name!r}, alpha={self.alpha}, runtime={self.runtime}, device={self.device})"


_ERF = np.frompyfunc(math.erf, 1, 1)
_blas: list[Any] = []  # the threadpoolctl controller, made on first use ([None] when there is none)
_blas_lock = threading.Lock()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """numpy's BLAS on the calling thread only, for the block. The head's matmuls are small (a batch of a few
    images × 1280 × 1024): OpenBLAS's thread pool makes them 12× dearer in CPU (2 cores, ingest: 7.7 → 0.65 ms
    an image) and its spinning threads take cores from ONNX Runtime and the decode workers. Needs threadpoolctl
    (installed with scikit-learn, which sentence-transformers requires); without it nothing changes."""
    if not _blas:
        with _blas_lock:
            if not _blas:
                try:
                    from threadpoolctl import ThreadpoolController

                    _blas.append(ThreadpoolController())
                except Exception:  # not installed, or it cannot inspect this platform's libraries
                    _blas.append(None)
    controller = _blas[0]
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU, as torch's default, in float32."""
    return (0.5 * x * (1.0 + _ERF(x / math.sqrt(2.0)).astype(np.float32))).astype(np.float32)
