"""Helpers shared by the embedding backends: device choice, offline mode, hub ids (torch imported lazily)."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assetrag.errors import ConfigError, ModelUnavailableError

if TYPE_CHECKING:
    import numpy as np
    import torch

_TRUE = {"1", "on", "yes", "true"}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def looks_like_hub_id(spec: str) -> bool:
    """True for `org/name` strings that are not an existing local path."""
    return bool(HUB_ID.match(spec)) and not Path(spec).expanduser().exists()


def resolve_device(device: str) -> torch.device:
    """`auto` → CUDA when present, else CPU; `cpu`, `cuda`, `cuda:N` as given (CUDA must exist)."""
    import torch

    choice = (device or "auto").strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} was asked for but CUDA is not available; use 'auto' or 'cpu'")
        try:
            return torch.device(choice)
        except RuntimeError as exc:
            raise ConfigError(f"device {device!r} is not a valid CUDA device: {exc}") from exc
    raise ConfigError(f"device {device!r} is not one of auto, cpu, cuda, cuda:N")


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE forbid network access (read now, not at import)."""
    return any(os.environ.get(var, "").strip().lower() in _TRUE for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hf_cache_dir() -> str:
    """The Hugging Face hub cache, from the environment as it is now."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars (\"Loading weights\") while loading; restore afterwards."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def save_weights(path: str | os.PathLike[str], tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write arrays and their JSON metadata (under the key "assetrag") to a safetensors file readable by all
    (the files under assetrag/data are package data)."""
    import json

    import numpy as np
    from safetensors.numpy import save_file

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    save_file(arrays, str(path), metadata={"assetrag": json.dumps(meta, sort_keys=True, ensure_ascii=False)})
    os.chmod(path, 0o644)


def load_weights(path: str | os.PathLike[str], missing: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(float32 arrays, metadata) of a file written by `save_weights`; `missing` is the error message's start
    when the file is not there (what it is and how to get it back)."""
    import json

    import numpy as np
    from safetensors import safe_open

    if not Path(path).is_file():
        raise ModelUnavailableError(f"{missing} ({path} is missing)")
    with safe_open(str(path), framework="numpy") as fh:
        meta = json.loads((fh.metadata() or {}).get("assetrag", "{}"))
        arrays = {k: fh.get_tensor(k).astype(np.float32) for k in fh.keys()}  # noqa: SIM118 (not a dict)
    return arrays, meta
