"""The ONNX graph cache: export a model once from its checkpoint, keep it under `<cache>/onnx/`, reuse it.

A graph's file name carries the model part, a key of its weight files (size + mtime + name, so no torch is needed
to compute it), the onnxruntime version and the opset; any change gives a new file. Next to it a sidecar
(`.json`) records the graph's sha256 and size: a truncated, garbage or mismatched file is never loaded, it is
rebuilt. The sidecar also stamps the graph file's size and mtime once its checksum has been verified, so a warm
start trusts an unchanged file without hashing it again (100 MB of graphs: ~0.2 s of CPU a start); any later
rewrite changes the mtime and brings the full check back (the stamp waits until the mtime is a few seconds
old). A valid cached graph is handed to ONNX Runtime by its path (it reads the file itself: cheaper than a
Python `bytes` copy). Writes go to a temporary file and `os.replace`, under a lock file where the OS has one,
so processes exporting at once do not corrupt the cache. An unwritable cache costs one warning: the graph is
then exported in memory every run.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from assetrag.embedding.runtime import new_session, ort_version
from assetrag.errors import ModelUnavailableError

CACHE_FORMAT = 1
OPSET = 17
_warned_unwritable = False
#: a graph's size + mtime are stamped as verified only once its mtime is this old: a same-size rewrite within a
#: file system's timestamp granularity (up to 2 s on some) could otherwise keep the stamped mtime
STAMP_AFTER_NS = 3_000_000_000


def weights_key(files: Sequence[str | os.PathLike[str]], extra: str = "") -> str:
    """A short key that changes when any of `files` changes (name, size, mtime) or `extra` does; no file is read."""
    h = hashlib.sha256(extra.encode())
    for f in files:
        st = os.stat(f)
        h.update(f"{os.path.basename(f)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:12]


@dataclass(frozen=True)
class GraphSpec:
    """One graph: `part` names it (e.g. `minilm-l6-v2-text`), `weights` is its `weights_key`, `export(f)` writes the
    fp32 graph to a file object (it may import torch), `int8` asks for its dynamically quantised variant."""

    part: str
    weights: str
    export: Callable[[BinaryIO], None] = field(compare=False, repr=False)
    int8: bool = False

    @property
    def filename(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9._]+", "_", self.part).strip("_")
        ort = re.sub(r"[^0-9A-Za-z.]+", "_", ort_version())
        return f"{slug}-{self.weights}-ort{ort}-op{OPSET}{'-int8' if self.int8 else ''}.onnx"

    def meta(self) -> dict[str, Any]:
        return {
            "format": CACHE_FORMAT,
            "part": self.part,
            "weights": self.weights,
            "ort": ort_version(),
            "opset": OPSET,
            "int8": self.int8,
        }


@dataclass
class Exports:
    """What building graphs cost this load (for the one line a loader announces)."""

    seconds: float = 0.0
    graphs: list[str] = field(default_factory=list)
    where: str = ""


def cache_root(cache_dir: str | os.PathLike[str]) -> Path:
    return Path(cache_dir) / "onnx"


def session_for(spec: GraphSpec, cache_dir: str | os.PathLike[str], threads: int | None, exports: Exports) -> Any:
    """An ONNX Runtime session for `spec`, from the cache when a valid graph is there, else exported (and cached)."""
    source = graph_source(spec, cache_dir, exports)
    try:
        return new_session(source if isinstance(source, bytes) else str(source), threads)
    except Exception as exc:  # a graph that passed its checksum but ORT refuses: build it again, once
        path = cache_root(cache_dir) / spec.filename
        _forget(path)
        data = graph_bytes(spec, cache_dir, exports)
        try:
            return new_session(data, threads)
        except Exception as again:
            raise ModelUnavailableError(f"ONNX Runtime cannot load the {spec.part} graph: {again}") from exc


def graph_source(spec: GraphSpec, cache_dir: str | os.PathLike[str], exports: Exports) -> Path | bytes:
    """Where ONNX Runtime reads `spec`'s graph from: the path of a valid cached file, else the bytes of a fresh
    export (written to the cache when it can be)."""
    path = cache_root(cache_dir) / spec.filename
    if valid_file(path, spec.meta()):
        return path
    data = graph_bytes(spec, cache_dir, exports)
    return path if valid_file(path, spec.meta()) else data


class LazySession:
    """A session made on its first `run` (`make()` builds it): a model loads a tower it may never run — the offline
    model's image tower, for a text query — without paying for the session. Thread-safe."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._session: Any = None
        self._lock = threading.Lock()

    @property
    def session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._make()
        return self._session

    def run(self, *args: Any, **kwargs: Any) -> Any:
        return self.session.run(*args, **kwargs)


def graph_bytes(spec: GraphSpec, cache_dir: str | os.PathLike[str], exports: Exports) -> bytes:
    """The serialised graph for `spec`: a valid cached copy, or a fresh export written to the cache."""
    path = cache_root(cache_dir) / spec.filename
    cached = read_valid(path, spec.meta())
    if cached is not None:
        return cached
    with _lock(path):
        cached = read_valid(path, spec.meta())  # another process may have built it while we waited
        if cached is not None:
            return cached
        t0 = time.perf_counter()
        if spec.int8:
            data = quantize_int8(graph_bytes(replace(spec, int8=False), cache_dir, exports))
        else:
            buf = io.BytesIO()
            try:
                spec.export(buf)
            except ModelUnavailableError:
                raise
            except Exception as exc:  # no torch, an exporter that cannot trace the model, …
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise ModelUnavailableError(f"cannot export the {spec.part} graph to ONNX: {first}") from exc
            data = buf.getvalue()
        exports.seconds += time.perf_counter() - t0
        exports.graphs.append(spec.part + (" int8" if spec.int8 else ""))
        exports.where = str(path.parent) if write_atomically(path, data, spec.meta()) else "memory only"
    return data


def read_valid(path: Path, meta: dict[str, Any]) -> bytes | None:
    """The graph's bytes when its sidecar matches `meta` and the bytes match the sidecar's size and sha256."""
    side = _sidecar(path, meta)
    return None if side is None else _checked_bytes(path, side)


def valid_file(path: Path, meta: dict[str, Any]) -> bool:
    """True when the cached graph at `path` is valid for `meta`: its size and mtime are those the sidecar stamped
    when the checksum was last verified, or else its checksum verifies now (and the stamp is written, best
    effort, so the next start skips the hash)."""
    side = _sidecar(path, meta)
    if side is None:
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_size == side.get("size") and st.st_mtime_ns == side.get("mtime_ns"):
        return True
    if _checked_bytes(path, side) is None:
        return False
    with contextlib.suppress(OSError):
        after = path.stat()
        settled = time.time_ns() - st.st_mtime_ns > STAMP_AFTER_NS  # a rewrite now cannot keep this mtime
        if settled and (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns):
            _replace(path.with_suffix(".json"), _side_bytes({**side, "mtime_ns": st.st_mtime_ns}))
    return True


def _checked_bytes(path: Path, side: dict[str, Any]) -> bytes | None:
    """The file's bytes when their size and sha256 are the sidecar's, else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) != side.get("size") or hashlib.sha256(data).hexdigest() != side.get("sha256"):
        return None
    return data


def _sidecar(path: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
    try:
        side = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(side, dict) or any(side.get(k) != v for k, v in meta.items()):
        return None
    return side


def _side_bytes(side: dict[str, Any]) -> bytes:
    return json.dumps(side, sort_keys=True).encode()


def write_atomically(path: Path, data: bytes, meta: dict[str, Any]) -> bool:
    """Write the graph and then its sidecar, each via a temporary file and `os.replace`; False (and one warning
    per process) when the cache cannot be written."""
    global _warned_unwritable
    side = {**meta, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _replace(path, data)
        _replace(path.with_suffix(".json"), _side_bytes(side))
        return True
    except OSError as exc:
        if not _warned_unwritable:
            _warned_unwritable = True
            warnings.warn(
                f"cannot write the ONNX graph cache in {path.parent} ({exc.strerror or exc}); exporting in memory "
                "on every start instead (set ASSETRAG_CACHE to a writable folder)",
                RuntimeWarning,
                stacklevel=3,
            )
        return False


def _replace(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _forget(path: Path) -> None:
    for p in (path, path.with_suffix(".json")):
        with contextlib.suppress(OSError):
            p.unlink()


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive lock next to `path` (POSIX `flock`); without a writable folder or fcntl, no lock."""
    try:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path.with_suffix(".lock"), "a+b")  # noqa: SIM115 (held for the block)
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def quantize_int8(fp32: bytes) -> bytes:
    """Dynamic int8 quantisation of a serialised fp32 graph: MatMul weights int8 per output channel, activations
    quantised on the fly (MiniLM: cosine to fp32 ≈ 0.993; per-tensor or all ops: 0.91-0.98)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "consider pre-processing" advice on every call
    try:
        with tempfile.TemporaryDirectory(prefix="assetrag-int8-") as tmp:
            src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
            src.write_bytes(fp32)
            quantize_dynamic(
                str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
            )
            return dst.read_bytes()
    finally:
        root.setLevel(level)


def export_torch(
    model: Any,
    forward: Callable[..., Any],
    args: tuple[Any, ...],
    f: BinaryIO,
    inputs: list[str],
    outputs: list[str],
    dynamic: dict[str, dict[int, str]],
) -> None:
    """`forward(model, *args)` exported by `torch.onnx.export` (the TorchScript exporter, fixed opset, dynamic axes)
    with its warnings silenced. `model` is held as a submodule, so its weights are parameters, not traced
    constants."""
    import torch

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *xs: Any) -> Any:
            return forward(self.model, *xs)

    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Graph().eval(),
            args,
            f,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def announce_exports(exports: Exports, what: str, say: Callable[[str], None] | None) -> None:
    """One line when graphs were built during this load (nothing on a warm cache)."""
    if exports.graphs and say is not None:
        say(
            f"Prepared ONNX Runtime graphs for {what} in {exports.seconds:.1f}s "
            f"({', '.join(exports.graphs)}; once — cached in {exports.where})"
        )
