"""Read + hash + decode: the per-file stage both pipelines run in their workers.

* `read_file` reads a file whole and hashes it (its sha256 is the asset id); a FIFO, a device, a huge or an
  empty file becomes a reason, never an exception.
* `load_file` (the fast pipeline's worker, thread or process) reads and hashes a file and, for bytes not
  stored yet, decodes it to what the embedder takes — model input pixels (`assetrag.embedding.pixels`), a PIL
  image for an embedder without a pixel path, or nothing at all for a JPEG left to the GPU decoder.

No torch here: worker processes import this module and need only Pillow and NumPy.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from assetrag import objects
from assetrag.decode import DEFAULT_MAX_SIDE, Decoded, decode_bytes, hash_bytes, perceptual_hash
from assetrag.embedding.pixels import PixelSpec, decode_pixels, gpu_decodable
from assetrag.errors import BadImageError

#: files are read whole (to hash and decode them); anything bigger is refused rather than risk the memory
MAX_FILE_BYTES = objects.MAX_BYTES


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_regular_file(path: str) -> bytes:
    """The bytes of a regular file. A FIFO, socket or device named like an image raises ValueError instead of
    blocking the run forever (opened non-blocking, checked on the open descriptor), as does a huge file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file (a FIFO, socket or device named like an image); remove it")
        if st.st_size > MAX_FILE_BYTES:
            raise ValueError(f"{st.st_size:,} bytes is over the {MAX_FILE_BYTES:,}-byte limit for one image file")
        return fh.read()


# -- the worker side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What workers make of new bytes: pixels for `spec` (None: a decoded PIL image, long side ≤ max_side),
    and which share of the GPU-decodable JPEGs to leave undecoded for the GPU (0: none)."""

    spec: PixelSpec | None = None
    max_side: int = DEFAULT_MAX_SIDE
    gpu_share: float = 0.0

    def to_gpu(self, index: int) -> bool:
        """Spreads the GPU's share evenly over the files (deterministic: the index-th file of the run)."""
        s = self.gpu_share
        return s > 0 and int((index + 1) * s) > int(index * s)


@dataclass
class Loaded:
    """One file after a worker saw it. Exactly one of `pixels`, `image`, `jpeg` is set for new bytes; none is
    for bytes already seen (a copy, move or touch) or for a file that failed (`error` says why)."""

    id: str | None = None
    error: str | None = None
    pixels: Any = None  # (views, H, W, 3) uint8 model input
    image: Decoded | None = None  # for an embedder without a pixel path
    jpeg: bytes | None = None  # left for the GPU decoder
    width: int = 0
    height: int = 0
    phash: str = ""  # `decode.perceptual_hash` of the new bytes

    @property
    def new(self) -> bool:
        return self.pixels is not None or self.image is not None or self.jpeg is not None


def read_file(path: str) -> tuple[bytes, str | None, str | None]:
    """(bytes, sha256, None) for a readable non-empty regular file or object (URL), else (b"", None, why not).
    Never raises."""
    try:
        data = objects.read_bytes(path, MAX_FILE_BYTES) if objects.is_url(path) else read_regular_file(path)
    except FileNotFoundError:
        return b"", None, "cannot read the file (it is gone)"
    except OSError as exc:
        return b"", None, f"cannot read the file ({exc.strerror or exc})"
    except ValueError as exc:
        return b"", None, str(exc)
    except Exception as exc:  # an object store's own errors (credentials, throttling) are per-file reasons too
        return b"", None, f"cannot read the object ({type(exc).__name__}: {exc})"
    if not data:
        return b"", None, "empty file (0 bytes); re-export or remove it"
    return data, sha256_bytes(data), None


def load_file(path: str, target: Target, index: int, seen: Container[str]) -> Loaded:
    """Read, hash and (unless `seen` holds the hash) decode one file for `target`. Never raises."""
    data, rid, error = read_file(path)
    if error:
        return Loaded(error=error)
    out = Loaded(id=rid)
    if out.id in seen:
        return out
    return decode_into(out, data, path, target, index)


def decode_into(out: Loaded, data: bytes, path: str, target: Target, index: int = 0) -> Loaded:
    """Decode `data` into `out` for `target` (a `BadImageError` becomes `out.error`), and hash it."""
    try:
        if target.spec is None:
            out.image = decode_bytes(data, path, target.max_side)
            out.width, out.height = out.image.width, out.image.height
            out.phash = perceptual_hash(out.image.image)
            return out
        if target.to_gpu(index):
            size = gpu_decodable(data)
            if size is not None:
                out.jpeg, (out.width, out.height) = data, size
                out.phash = hash_bytes(data, path)  # a draft decode at 1/8 scale: the GPU decodes the rest
                return out
        px = decode_pixels(data, path, target.spec)
        out.pixels, out.width, out.height = px.pixels, px.width, px.height
        out.phash = hash_bytes(data, path)
    except BadImageError as exc:
        out.error = exc.reason
    except Exception as exc:  # a decoder bug must not end the run either
        out.error = f"could not decode it ({type(exc).__name__}: {exc})"
    return out


class KnownPrefixes:
    """The stored ids as sorted 64-bit prefixes: a compact "already stored?" test to ship to worker processes
    (8 bytes an id). A prefix hit is only a hint; the caller checks the full id."""

    def __init__(self, ids: Iterable[str]) -> None:
        self._keys = np.unique(np.fromiter((int(i[:16], 16) for i in ids if len(i) >= 16), dtype=np.uint64))

    def __contains__(self, rid: object) -> bool:
        if not isinstance(rid, str) or len(rid) < 16 or not len(self._keys):
            return False
        key = np.uint64(int(rid[:16], 16))
        pos = int(np.searchsorted(self._keys, key))
        return pos < len(self._keys) and self._keys[pos] == key


_PROCESS_SEEN: Container[str] = frozenset()


def init_process_worker(known: KnownPrefixes) -> None:
    """Pool initializer: what this worker process treats as already stored."""
    global _PROCESS_SEEN
    _PROCESS_SEEN = known


def load_file_in_process(path: str, target: Target, index: int) -> Loaded:
    return load_file(path, target, index, _PROCESS_SEEN)
