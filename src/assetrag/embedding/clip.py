"""CLIP-family embedders (CLIP, SigLIP, …) through Hugging Face transformers.

Weights come from a local checkpoint directory, the local Hugging Face cache, or — only when
`allow_download` is true and HF_HUB_OFFLINE is not set — the hub. Images are preprocessed by the
PIL image processors, so torchvision is never needed. On ONNX Runtime (`runtime`) the vision and text towers
are exported once to graphs (see `assetrag.embedding.graphs`); the model's weights are then not loaded into
torch at all (transformers still reads the config, tokenizer and image processor).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from assetrag.config import DEFAULT_CLIP_CHECKPOINT
from assetrag.embedding._runtime import (
    HUB_ID,
    hf_cache_dir,
    hub_offline,
    quiet_transformers,
    resolve_device,
)
from assetrag.embedding.base import l2_normalise
from assetrag.embedding.pixels import PixelSpec, normalise_np
from assetrag.embedding.runtime import check_quantize, choose_runtime, default_threads
from assetrag.errors import ModelUnavailableError

_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_SNAPSHOT = re.compile(r"models--(?P<org>[^/\\]+?)--(?P<name>[^/\\]+)[/\\]snapshots[/\\][^/\\]+$")


def how_to_get_weights(repo_id: str = DEFAULT_CLIP_CHECKPOINT) -> str:
    """One sentence telling a user how to make CLIP weights available offline."""
    return (
        f"on a machine with internet run `huggingface-cli download {repo_id}` and copy its Hugging Face "
        "cache (~/.cache/huggingface) to this machine, or save the checkpoint to a folder and pass "
        "`--model /path/to/dir`"
    )


def cached_locally(repo_id: str, cache_dir: str | None = None) -> bool:
    """True when the HF cache holds `repo_id`'s config and weights (checked on disk, no network)."""
    from huggingface_hub import try_to_load_from_cache

    cache = cache_dir or hf_cache_dir()

    def has(filename: str) -> bool:
        return isinstance(try_to_load_from_cache(repo_id, filename, cache_dir=cache), str)

    try:
        return has("config.json") and any(has(f) for f in _WEIGHT_FILES)
    except Exception:  # a malformed id or an unreadable cache is simply "not cached"
        return False


def _name_for_dir(path: Path) -> str:
    """A stable, reloadable identifier: the hub id for a HF-cache snapshot, else the absolute path."""
    match = _SNAPSHOT.search(str(path))
    if match:
        return f"{match['org']}/{match['name']}"
    return str(path)


def _embedding_dim(config: Any) -> int:
    dim = getattr(config, "projection_dim", None)
    text = getattr(config, "text_config", None)
    if dim is None and text is not None:
        dim = getattr(text, "projection_size", None) or getattr(text, "hidden_size", None)
    if not dim:
        raise ModelUnavailableError(f"cannot tell the embedding size of a {config.model_type!r} checkpoint")
    return int(dim)


def _features(out: Any) -> Any:
    """transformers ≥5 returns a ModelOutput whose pooler_output is the projected embedding; 4.x a tensor."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    if pooled is None:
        raise ModelUnavailableError("the checkpoint returned no pooled embedding; is it a CLIP-family model?")
    return pooled


def _pixel_spec(processor: Any) -> PixelSpec | None:
    """A CLIP-style processor (RGB, resize the short side, centre crop, rescale, normalise) as a `PixelSpec`."""
    try:
        cfg = processor.to_dict()
        size, crop = cfg.get("size"), cfg.get("crop_size")
        if isinstance(size, int):
            size = {"shortest_edge": size}
        if isinstance(crop, int):
            crop = {"height": crop, "width": crop}
        resample = {2: "bilinear", 3: "bicubic"}.get(int(cfg.get("resample", 3)))
        ok = (
            cfg.get("do_resize", True)
            and cfg.get("do_center_crop", True)
            and cfg.get("do_rescale", True)
            and cfg.get("do_normalize", True)
            and not cfg.get("do_pad")
            and isinstance(size, dict)
            and set(k for k, v in size.items() if v) == {"shortest_edge"}
            and isinstance(crop, dict)
            and resample is not None
        )
        if not ok:
            return None
        mean, std = tuple(float(v) for v in cfg["image_mean"]), tuple(float(v) for v in cfg["image_std"])
        if len(mean) != 3 or len(std) != 3:
            return None
        return PixelSpec(
            short_side=int(size["shortest_edge"]),
            crop_h=int(crop["height"]),
            crop_w=int(crop["width"]),
            mean=mean,  # type: ignore[arg-type]
            std=std,  # type: ignore[arg-type]
            scale=float(cfg.get("rescale_factor", 1 / 255)),
            resample=resample,  # type: ignore[arg-type]
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


class ClipEmbedder:
    """Images and texts in a CLIP-family joint space (`clip`, `siglip`, or any model with
    `get_image_features`/`get_text_features`). fp16 on CUDA, fp32 on CPU; rows are L2-normalised.

    `runtime` auto | onnx | torch: on ONNX Runtime the towers run as exported graphs (fp32, or int8 with
    `quantize="int8"`; `auto` keeps fp32: no recall measurement backs int8 for CLIP yet)."""

    def __init__(
        self,
        checkpoint: str | os.PathLike[str] = DEFAULT_CLIP_CHECKPOINT,
        *,
        device: str = "auto",
        batch_size: int = 32,
        allow_download: bool = False,
        runtime: str = "auto",
        quantize: str = "auto",
        threads: int | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.batch_size = max(1, int(batch_size))
        self.quantize = check_quantize(quantize)
        choice = choose_runtime(runtime, device)
        self.runtime, self.runtime_reason = choice.name, choice.reason
        self._lock = threading.Lock()
        self._onnx: tuple[Any, Any] | None = None  # (vision session, text session)
        source, self._repo_id, local_only, cache_dir = self._resolve(checkpoint, allow_download)
        self.name = f"clip:{self._repo_id or _name_for_dir(Path(source))}"
        if self.runtime == "onnx":
            from assetrag.config import Settings

            self.device, self.dtype = "cpu", "float32"
            self.threads = int(threads or default_threads())
            self._load(source, local_only, cache_dir, with_model=False)
            try:
                self._load_onnx(source, local_only, cache_dir, Settings().cache_dir, announce)
                return
            except ModelUnavailableError as exc:
                if (runtime or "auto").strip().lower() == "onnx":
                    raise
                self.runtime, self.runtime_reason = "torch", f"ONNX Runtime could not load it ({exc})"
                if announce:
                    announce(f"Running {self.name} on torch: {self.runtime_reason}")
        import torch

        self.device = resolve_device(device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        if threads and self.device.type == "cpu":
            torch.set_num_threads(int(threads))
        self.threads = 0 if self.device.type == "cuda" else torch.get_num_threads()
        self._load(source, local_only, cache_dir)

    # -- loading ----------------------------------------------------------------------------------

    @staticmethod
    def _resolve(checkpoint: str | os.PathLike[str], allow_download: bool) -> tuple[str, str | None, bool, str | None]:
        """(what to pass to from_pretrained, hub id or None, local_files_only, cache_dir)."""
        text = os.fspath(checkpoint).strip()
        path = Path(text).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise ModelUnavailableError(
                    f"{path} is not a model checkpoint (no config.json in it). Point --model at a folder "
                    f"written by `save_pretrained` or a hub snapshot; to get CLIP, {how_to_get_weights()}"
                )
            return str(path.resolve()), None, True, None
        if path.exists() or not HUB_ID.match(text):
            raise ModelUnavailableError(
                f"no CLIP checkpoint folder at {text!r} (and it is not a hub id like 'org/name'). "
                f"To get CLIP, {how_to_get_weights()}"
            )
        local_only = not allow_download or hub_offline()
        cache = hf_cache_dir()
        if local_only and not cached_locally(text, cache):
            why = "downloads are off (HF_HUB_OFFLINE)" if allow_download else "downloads were not allowed"
            raise ModelUnavailableError(
                f"the CLIP checkpoint {text!r} is neither a folder here nor in the local Hugging Face cache "
                f"({cache}), and {why}. "
                f"To get it, {how_to_get_weights(text)}"
            )
        return text, text, local_only, cache

    def _load(self, source: str, local_only: bool, cache_dir: str | None, with_model: bool = True) -> None:
        """Config, tokenizer and image processor (and, for torch, the model) from `source`."""
        from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer
        from transformers import __version__ as hf_version

        common: dict[str, Any] = {"local_files_only": local_only}
        if cache_dir:
            common["cache_dir"] = cache_dir
        # The PIL image processors need no torchvision (transformers ≥5.10: backend=; before: use_fast=False).
        major, minor = (int(x) for x in re.findall(r"\d+", hf_version)[:2])
        image_kw = {"backend": "pil"} if (major, minor) >= (5, 10) else {"use_fast": False}
        try:
            with quiet_transformers():
                config = AutoConfig.from_pretrained(source, **common)
                model = _model(source, config, common) if with_model else None
                tokenizer = AutoTokenizer.from_pretrained(source, **common)
                processor = AutoImageProcessor.from_pretrained(source, **common, **image_kw)
        except ModelUnavailableError:
            raise
        except (OSError, ValueError, KeyError, ImportError, RuntimeError) as exc:
            repo = self._repo_id or DEFAULT_CLIP_CHECKPOINT
            raise ModelUnavailableError(
                f"cannot load CLIP checkpoint {source!r}: {str(exc).strip().splitlines()[0]} — "
                f"to get CLIP weights, {how_to_get_weights(repo)}"
            ) from exc
        self.model_type: str = config.model_type
        self.dim: int = _embedding_dim(config)
        self._config = config
        if model is not None:
            self._model = model.to(device=self.device, dtype=self.dtype).eval()
        self._tokenizer = tokenizer
        self._processor = processor
        self._pixel_spec = _pixel_spec(processor)
        self._stager: Any = None
        text_cfg = getattr(config, "text_config", None)
        limits = [
            getattr(tokenizer, "model_max_length", None),
            getattr(text_cfg, "max_position_embeddings", None),
        ]
        self._max_len = min((int(n) for n in limits if n and n < 100_000), default=77)  # tokenizers may say 1e30
        # SigLIP was trained on max_length-padded text; CLIP pools at EOS, so dynamic padding is fine.
        self._padding: str | bool = "max_length" if self.model_type.startswith("siglip") else True

    def _load_onnx(
        self,
        source: str,
        local_only: bool,
        cache_dir: str | None,
        graph_cache: Path,
        announce: Callable[[str], None] | None,
    ) -> None:
        """The vision and text towers as ONNX Runtime sessions (exported from the checkpoint the first time)."""
        from assetrag.embedding.graphs import Exports, announce_exports, session_for

        folder = _checkpoint_folder(source, cache_dir)
        if folder is None:  # a hub id not downloaded yet: loading it in torch fetches it (downloads are allowed)
            common: dict[str, Any] = {"local_files_only": local_only, **({"cache_dir": cache_dir} if cache_dir else {})}
            with quiet_transformers():
                _model(source, self._config, common)
            folder = _checkpoint_folder(source, cache_dir)
            if folder is None:
                raise ModelUnavailableError(f"cannot find the files of {source!r} in the Hugging Face cache")
        int8 = self.quantize == "int8"
        exports = Exports()
        vision, text = _tower_graphs(self, source, folder, local_only, cache_dir, int8)
        self._onnx = (
            session_for(vision, graph_cache, self.threads, exports),
            session_for(text, graph_cache, self.threads, exports),
        )
        announce_exports(exports, self.name, announce)

    # -- embedding --------------------------------------------------------------------------------

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, dim) float32, L2-normalised."""
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = [im if im.mode == "RGB" else im.convert("RGB") for im in images[start : start + self.batch_size]]
            if self._onnx is not None:
                pixels = np.asarray(self._processor(images=chunk, return_tensors="np")["pixel_values"], np.float32)
                out.append(self._run_vision(pixels))
                continue
            import torch

            pixels = self._processor(images=chunk, return_tensors="pt")["pixel_values"]
            with self._lock, torch.inference_mode():
                feats = _features(self._model.get_image_features(pixel_values=pixels.to(self.device, self.dtype)))
            out.append(feats.float().cpu().numpy())
        return self._finish(out)

    @property
    def pixel_spec(self) -> PixelSpec | None:
        """The processor's recipe as a `PixelSpec` (None for processors it cannot describe, e.g. SigLIP's)."""
        return self._pixel_spec

    def embed_pixels(self, pixels: Sequence[Any] | Any) -> np.ndarray:
        """(n, dim) float32, L2-normalised, from uint8 pixels made by `pixel_spec.prepare` (see `PixelEmbedder`).

        One forward pass for the whole batch: the caller picks its size. On CUDA the pixels go through a
        pinned buffer and a non-blocking copy, and are normalised on the GPU in float32, then cast to fp16.
        """
        spec = self._pixel_spec
        if spec is None:
            raise ValueError(f"{self.name} has no pixel fast path; use embed_images")
        if len(pixels) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._onnx is not None:
            batch = pixels if isinstance(pixels, np.ndarray) else np.stack([np.asarray(p) for p in pixels])
            if tuple(batch.shape[1:]) != (1, spec.crop_h, spec.crop_w, 3):
                raise ValueError(f"pixels of shape {tuple(batch.shape)} do not match {spec}")
            return self._finish([self._run_vision(normalise_np(batch, spec))])
        import torch

        from assetrag.embedding.tensors import HostStager, normalise, to_device

        with self._lock, torch.inference_mode():
            if self._stager is None:
                self._stager = HostStager()
            batch = to_device(pixels, self.device, self._stager)
            if tuple(batch.shape[1:]) != (1, spec.crop_h, spec.crop_w, 3):
                raise ValueError(f"pixels of shape {tuple(batch.shape)} do not match {spec}")
            x = normalise(batch, spec, self.dtype)
            feats = _features(self._model.get_image_features(pixel_values=x)).float().cpu().numpy()
        return self._finish([feats])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised."""
        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = self._tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=self._padding,
                truncation=True,
                max_length=self._max_len,
                return_tensors="np" if self._onnx is not None else "pt",
            )
            if self._onnx is not None:
                feed = {k: np.asarray(batch[k], dtype=np.int64) for k in ("input_ids", "attention_mask")}
                if "attention_mask" not in batch:
                    feed["attention_mask"] = np.ones_like(feed["input_ids"])
                with self._lock:
                    out.append(self._onnx[1].run(None, feed)[0])
                continue
            import torch

            inputs = {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
            with self._lock, torch.inference_mode():
                feats = _features(self._model.get_text_features(**inputs))
            out.append(feats.float().cpu().numpy())
        return self._finish(out)

    def _run_vision(self, pixels: np.ndarray) -> np.ndarray:
        assert self._onnx is not None
        with self._lock:
            return self._onnx[0].run(None, {"pixel_values": pixels})[0]

    def _finish(self, parts: list[np.ndarray]) -> np.ndarray:
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.concatenate(parts, axis=0))

    def __repr__(self) -> str:
        return f"ClipEmbedder(name={self.name!r}, dim={self.dim}, runtime={self.runtime}, device={self.device})"


def _model(source: str, config: Any, common: dict[str, Any]) -> Any:
    """The torch model (CLIPModel, SiglipModel, or what AutoModel makes), checked to be an image–text model."""
    from transformers import AutoModel, CLIPModel, SiglipModel

    model_cls = {"clip": CLIPModel, "siglip": SiglipModel}.get(config.model_type, AutoModel)
    model = model_cls.from_pretrained(source, **common)
    if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
        raise ModelUnavailableError(f"{source!r} is a {config.model_type!r} model, not a CLIP-family image–text model")
    return model


def _checkpoint_folder(source: str, cache_dir: str | None) -> Path | None:
    """The folder holding the checkpoint's files (a hub id's cached snapshot), or None when not on disk."""
    path = Path(source)
    if path.is_dir():
        return path
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(source, "config.json", cache_dir=cache_dir or hf_cache_dir())
    return Path(found).parent if isinstance(found, str) else None


def _tower_graphs(
    emb: ClipEmbedder, source: str, folder: Path, local_only: bool, cache_dir: str | None, int8: bool
) -> tuple[Any, Any]:
    """GraphSpecs of the vision tower (pixel_values → features) and the text tower (input_ids, attention_mask →
    features), keyed by the checkpoint's weight and config files."""
    from assetrag.embedding.graphs import GraphSpec, export_torch, weights_key

    files = [folder / f for f in (*_WEIGHT_FILES, "config.json") if (folder / f).is_file()]
    key = weights_key(files, extra=emb.name)
    slug = emb.name.rsplit("/", 1)[-1][-40:]
    loaded: list[Any] = []

    def model() -> Any:
        if not loaded:
            common: dict[str, Any] = {"local_files_only": local_only}
            if cache_dir:
                common["cache_dir"] = cache_dir
            try:
                with quiet_transformers():
                    loaded.append(_model(source, emb._config, {**common, "attn_implementation": "eager"}).eval())
            except (OSError, ValueError, KeyError, ImportError, RuntimeError) as exc:
                raise ModelUnavailableError(f"cannot load CLIP checkpoint {source!r} to export it: {exc}") from exc
        return loaded[0]

    def export_vision(f: Any) -> None:
        import torch

        m, spec = model(), emb._pixel_spec
        side = (spec.crop_h, spec.crop_w) if spec else (emb._config.vision_config.image_size,) * 2

        def vision(clip: Any, pixel_values: Any) -> Any:
            return _features(clip.get_image_features(pixel_values=pixel_values))

        dyn = {"pixel_values": {0: "n"}, "features": {0: "n"}}
        export_torch(m, vision, (torch.zeros(2, 3, *side),), f, ["pixel_values"], ["features"], dyn)

    def export_text(f: Any) -> None:
        import torch

        def text(clip: Any, input_ids: Any, attention_mask: Any) -> Any:
            return _features(clip.get_text_features(input_ids=input_ids, attention_mask=attention_mask))

        ids = torch.ones((2, min(8, emb._max_len)), dtype=torch.long)
        dyn = {"input_ids": {0: "n", 1: "tokens"}, "attention_mask": {0: "n", 1: "tokens"}, "features": {0: "n"}}
        export_torch(model(), text, (ids, torch.ones_like(ids)), f, ["input_ids", "attention_mask"], ["features"], dyn)

    return (
        GraphSpec(f"clip-vision-{slug}", key, export_vision, int8=int8),
        GraphSpec(f"clip-text-{slug}", key, export_text, int8=int8),
    )
