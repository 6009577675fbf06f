"""What compute this machine offers the models, as `assetrag doctor` reports it."""

from __future__ import annotations

import os

from assetrag.embedding.runtime import cuda_present


def describe() -> tuple[bool, str]:
    """(CUDA present, a line for `assetrag doctor`). Without an NVIDIA driver torch is not imported."""
    if not cuda_present():
        return False, f"CPU ({os.cpu_count()} cores), no CUDA"
    import torch

    return True, f"CUDA: {torch.cuda.get_device_name(0)}"
