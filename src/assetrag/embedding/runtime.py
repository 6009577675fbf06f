"""Which runtime runs a model (ONNX Runtime or torch), and how ONNX Runtime sessions are made.

`--runtime auto|onnx|torch` (`Settings.runtime`, ASSETRAG_RUNTIME): `auto` runs ONNX Runtime on a CPU and torch
on CUDA; `onnx` always ONNX Runtime (CPU); `torch` always eager torch. `--quantize auto|none|int8`
(`Settings.quantize`, ASSETRAG_QUANTIZE): int8 dynamic quantisation of transformer text/vision towers on the
ONNX path; `auto` uses it only where it was measured harmless (see each model). Nothing here imports torch
unless CUDA must be asked about on a machine that has an NVIDIA driver.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from assetrag.errors import ConfigError

RUNTIMES = ("auto", "onnx", "torch")
QUANTIZE = ("auto", "none", "int8")


def check_runtime(value: str | None) -> str:
    """The normalised runtime name; ConfigError on an unknown one."""
    text = (value or "auto").strip().lower()
    if text not in RUNTIMES:
        raise ConfigError(f"unknown runtime {value!r}; choose one of {', '.join(RUNTIMES)} (env ASSETRAG_RUNTIME)")
    return text


def check_quantize(value: str | None) -> str:
    """The normalised quantisation choice; ConfigError on an unknown one."""
    text = (value or "auto").strip().lower()
    if text not in QUANTIZE:
        raise ConfigError(f"unknown quantize {value!r}; choose one of {', '.join(QUANTIZE)} (env ASSETRAG_QUANTIZE)")
    return text


def cuda_present() -> bool:
    """True when torch sees a CUDA device. Without an NVIDIA driver on this machine, answered without importing
    torch (which costs seconds)."""
    if "torch" not in sys.modules:
        hints = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia")
        if sys.platform.startswith("linux") and not any(os.path.exists(p) for p in hints):
            return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def onnxruntime_problem() -> str | None:
    """Why ONNX Runtime cannot be used here (None when it imports)."""
    try:
        import onnxruntime  # noqa: F401
    except Exception as exc:  # ImportError, or a broken native library
        return f"onnxruntime does not import ({exc}); `pip install onnxruntime` or use --runtime torch"
    return None


def ort_version() -> str:
    """The installed onnxruntime version, or 'not installed'."""
    try:
        import onnxruntime

        return str(onnxruntime.__version__)
    except Exception:
        return "not installed"


@dataclass(frozen=True)
class RuntimeChoice:
    """The runtime a model will use and one phrase saying why."""

    name: str  # onnx | torch
    reason: str


def choose_runtime(runtime: str | None, device: str | None) -> RuntimeChoice:
    """`auto` → ONNX Runtime on a CPU (torch when onnxruntime does not import), torch on CUDA. An explicit `onnx`
    with a CUDA device, or when onnxruntime does not import, is a ConfigError."""
    wanted = check_runtime(runtime)
    dev = (device or "auto").strip().lower()
    if wanted == "torch":
        return RuntimeChoice("torch", "asked for (runtime torch)")
    problem = onnxruntime_problem()
    if wanted == "onnx":
        if dev.startswith("cuda"):
            raise ConfigError(f"runtime onnx runs on the CPU only; device {device!r} needs --runtime torch (or auto)")
        if problem:
            raise ConfigError(problem)
        return RuntimeChoice("onnx", "asked for (runtime onnx)")
    if dev.startswith("cuda") or (dev == "auto" and cuda_present()):
        return RuntimeChoice("torch", "CUDA: torch runs the model on the GPU")
    if problem:
        return RuntimeChoice("torch", f"CPU, but {problem}")
    return RuntimeChoice("onnx", "CPU: ONNX Runtime is faster than eager torch there")


def default_threads() -> int:
    """Model threads when none are set: every core."""
    return os.cpu_count() or 1


def new_session(graph: bytes | str, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session over a serialised graph (bytes) or a file: `threads` intra-op threads, one
    inter-op thread, and idle threads that sleep instead of spinning (so they do not steal decode workers' cores).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads or default_threads()))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])


def model_threads(embedder: Any) -> int:
    """How many CPU threads `embedder` computes with (ingest sizes its decode workers so that decode workers +
    model threads ≤ cores). ONNX embedders say so themselves; for torch it is torch's intra-op pool; 0 on CUDA."""
    threads = getattr(embedder, "threads", None)
    if isinstance(threads, int):
        return threads
    device = getattr(embedder, "device", None)
    if getattr(device, "type", None) == "cuda":
        return 0
    if "torch" in sys.modules:
        import torch

        return int(torch.get_num_threads())
    return default_threads()


def decode_workers(embedder: Any, wanted: int, cores: int | None = None) -> int:
    """Decode workers to start next to `embedder`: `wanted`, but no more than the cores the model leaves (≥ 1)."""
    return workers_beside(model_threads(embedder), wanted, cores)


def workers_beside(threads: int, wanted: int, cores: int | None = None) -> int:
    """Decode workers next to a model computing with `threads` CPU threads: `wanted`, capped so that workers +
    model threads ≤ cores (at least one)."""
    total = cores or os.cpu_count() or 1
    return max(1, min(int(wanted), total - int(threads)))
