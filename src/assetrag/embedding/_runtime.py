"""Helpers shared by the embedding backends: device choice, offline mode, hub ids (torch imported lazily)."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from assetrag.errors import ConfigError

if TYPE_CHECKING:
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
