"""What compute this machine offers the models (the rest of assetrag asks here instead of importing torch)."""

from __future__ import annotations

import os


def cuda_available() -> bool:
    """True when torch imports and sees a CUDA device (False when torch is absent or broken)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def describe() -> tuple[bool, str]:
    """(CUDA present, a line for `assetrag doctor`); raises what a broken torch install raises."""
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        return True, f"CUDA: {torch.cuda.get_device_name(0)}"
    return False, f"CPU ({os.cpu_count()} cores), no CUDA"
