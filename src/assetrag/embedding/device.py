"""What compute this machine offers the models, as `assetrag doctor` reports it."""

from __future__ import annotations

import os


def describe() -> tuple[bool, str]:
    """(CUDA present, a line for `assetrag doctor`); raises what a broken torch install raises."""
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        return True, f"CUDA: {torch.cuda.get_device_name(0)}"
    return False, f"CPU ({os.cpu_count()} cores), no CUDA"
