"""The torch half of the pixel fast path: uint8 pixels → a normalised batch on the model's device, and an
optional JPEG decoder on the GPU (nvJPEG through torchvision, when torchvision is importable).

On CUDA a batch is staged in a reused pinned host buffer, copied with `non_blocking=True`, converted and
normalised on the GPU, then cast to the model's dtype (fp16). On CPU it is the same arithmetic in float32.
torchvision is optional (it is not a dependency: its wheels pin a CUDA build of torch); without it every
image is decoded by the CPU workers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from assetrag.embedding.pixels import PixelSpec


class HostStager:
    """A pinned (page-locked) host buffer reused across batches, so host→GPU copies can be asynchronous.

    Not thread-safe on its own: callers hold their model lock while a batch is staged and consumed (the
    copy out of the buffer has finished once the batch's results are back on the host).
    """

    def __init__(self) -> None:
        self._buf: torch.Tensor | None = None

    def stage(self, arrays: Sequence[np.ndarray]) -> torch.Tensor:
        """The arrays stacked into (a view of) the pinned buffer."""
        shape = (len(arrays), *arrays[0].shape)
        need = int(np.prod(shape))
        if self._buf is None or self._buf.numel() < need:
            try:
                self._buf = torch.empty(need, dtype=torch.uint8).pin_memory()
            except RuntimeError:  # no pinnable memory (or no CUDA driver): plain memory still works
                self._buf = torch.empty(need, dtype=torch.uint8)
        view = self._buf[:need].view(shape)
        np.stack(arrays, out=view.numpy())
        return view


def to_device(
    pixels: Sequence[Any] | np.ndarray | torch.Tensor,
    device: torch.device,
    stager: HostStager | None = None,
) -> torch.Tensor:
    """(N, V, H, W, 3) uint8 on `device` from a stacked array/tensor or a list of (V, H, W, 3) arrays/tensors
    (NumPy or torch, host or device, mixed)."""
    if isinstance(pixels, torch.Tensor):
        return _host_to(pixels, device)
    if isinstance(pixels, np.ndarray):
        return _host_to(torch.from_numpy(np.require(pixels, np.uint8, ["C", "W"])), device)
    items = list(pixels)
    if not items:
        raise ValueError("no pixels to embed")
    host = [i for i, p in enumerate(items) if not isinstance(p, torch.Tensor)]
    if len(host) == len(items):
        arrays = [np.asarray(p) for p in items]
        if device.type == "cuda" and stager is not None:
            return stager.stage(arrays).to(device, non_blocking=True)
        return torch.from_numpy(np.stack(arrays))
    first = items[0]
    out = torch.empty((len(items), *tuple(first.shape)), dtype=torch.uint8, device=device)
    if host:
        arrays = [np.asarray(items[i]) for i in host]
        staged = (
            stager.stage(arrays)
            if (device.type == "cuda" and stager is not None)
            else torch.from_numpy(np.stack(arrays))
        )
        out[torch.tensor(host, device=device)] = staged.to(device, non_blocking=True)
    for i, p in enumerate(items):
        if isinstance(p, torch.Tensor):
            out[i] = p.to(device)
    return out


def _host_to(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    if t.device == device:
        return t
    if device.type == "cuda" and t.device.type == "cpu":
        if not t.is_pinned():
            with contextlib.suppress(RuntimeError):  # no pinnable memory: a synchronous copy still works
                t = t.pin_memory()
        return t.to(device, non_blocking=True)
    return t.to(device)


def normalise(batch: torch.Tensor, spec: PixelSpec, dtype: torch.dtype) -> torch.Tensor:
    """(N, V, H, W, 3) uint8 → (N·V, 3, H, W) `(x·scale − mean) / std` in `dtype`, computed in float32 on the
    batch's device (as the image processors do on the host)."""
    n, v, h, w, c = batch.shape
    x = batch.reshape(n * v, h, w, c).permute(0, 3, 1, 2).to(torch.float32)
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    x = (x * spec.scale - mean) / std
    return x.to(dtype).contiguous()


def resize_crop(chw: torch.Tensor, spec: PixelSpec) -> torch.Tensor:
    """A (3, h, w) uint8 tensor (on any device) → (1, H, W, 3) uint8 per `spec` (views="crop" only): the short
    side resized with antialiased bicubic (torch's approximation of PIL's filter; off by a few levels at
    most), then the centre crop."""
    _, h, w = chw.shape
    if w <= h:
        new_w, new_h = spec.short_side, int(spec.short_side * h / w)
    else:
        new_w, new_h = int(spec.short_side * w / h), spec.short_side
    x = chw
    if (new_h, new_w) != (h, w):
        mode = "bicubic" if spec.resample == "bicubic" else "bilinear"
        x = torch.nn.functional.interpolate(
            chw[None].to(torch.float32), size=(new_h, new_w), mode=mode, antialias=True, align_corners=False
        )[0]
        x = x.round_().clamp_(0, 255).to(torch.uint8)
    top, left = max(0, (new_h - spec.crop_h) // 2), max(0, (new_w - spec.crop_w) // 2)
    x = x[:, top : top + spec.crop_h, left : left + spec.crop_w]
    if x.shape[1:] != (spec.crop_h, spec.crop_w):  # smaller than the crop: pad with zeros, centred
        out = torch.zeros((3, spec.crop_h, spec.crop_w), dtype=torch.uint8, device=x.device)
        pt, pl = (spec.crop_h - x.shape[1] + 1) // 2, (spec.crop_w - x.shape[2] + 1) // 2
        out[:, pt : pt + x.shape[1], pl : pl + x.shape[2]] = x
        x = out
    return x.permute(1, 2, 0)[None].contiguous()


class GpuJpegDecoder:
    """Decodes JPEG bytes on `device` with torchvision.io.decode_jpeg (nvJPEG on CUDA) and resizes/crops them
    there. Build it with `GpuJpegDecoder.create(device)`: None when torchvision is missing or cannot decode on
    that device. Per image, a failure gives None (the caller decodes that file on the CPU instead)."""

    def __init__(self, device: torch.device, decode_jpeg: Any, rgb_mode: Any) -> None:
        self.device = device
        self._decode = decode_jpeg
        self._rgb = rgb_mode
        self._batched = True
        self._lock = threading.Lock()

    @classmethod
    def create(cls, device: torch.device | str) -> GpuJpegDecoder | None:
        device = torch.device(device)
        try:
            from torchvision.io import ImageReadMode, decode_jpeg
        except Exception:  # not installed, or built for another torch: the CPU workers decode everything
            return None
        if device.type == "cuda" and not torch.cuda.is_available():
            return None
        return cls(device, decode_jpeg, ImageReadMode.RGB)

    def decode(self, datas: Sequence[bytes], spec: PixelSpec) -> list[torch.Tensor | None]:
        """(1, H, W, 3) uint8 tensors on the device, resized and cropped per `spec`; None where decoding failed."""
        inputs = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
        with self._lock:
            images = self._decode_all(inputs)
        out: list[torch.Tensor | None] = []
        for img in images:
            if img is None or img.ndim != 3 or img.shape[0] != 3 or min(img.shape[1:]) < 1:
                out.append(None)
                continue
            out.append(resize_crop(img, spec))
        return out

    def _decode_all(self, inputs: list[torch.Tensor]) -> list[torch.Tensor | None]:
        device = str(self.device)
        if self._batched and len(inputs) > 1:
            try:  # torchvision ≥ 0.19 decodes a list in one batched nvJPEG call
                return list(self._decode(inputs, mode=self._rgb, device=device))
            except TypeError:  # an older torchvision: one tensor per call
                self._batched = False
            except Exception:  # one bad image spoils the batch: find it one by one
                pass
        out: list[torch.Tensor | None] = []
        for t in inputs:
            try:
                out.append(self._decode(t, mode=self._rgb, device=device))
            except Exception:  # nvJPEG refused it (corrupt, unsupported): the CPU decodes it and explains
                out.append(None)
        return out
