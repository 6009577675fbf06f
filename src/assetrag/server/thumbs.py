"""Thumbnails: made once per (asset, size) and kept on disk; asset ids are content hashes, so a cached
thumbnail never goes stale. The cache is bounded (`max_bytes`, `ASSETRAG_THUMB_CACHE_MB`, default 256 MB): past
it, the least recently used thumbnails are deleted.

A video keyframe's thumbnail is made on first request by decoding the frame at its time from the video
(`assetrag.video.frame_at`: one seek and at most a GOP of decoding), then cached like any other under the
keyframe's id — ingest stores no pictures, so a library stays vectors and fields only and works with any
server cache directory."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path

from assetrag import objects
from assetrag.decode import decode_bytes, decode_file
from assetrag.errors import BadImageError
from assetrag.ingest import MAX_FILE_BYTES
from assetrag.video import frame_at

DEFAULT_CACHE_MB = 256


class Thumbnails:
    def __init__(self, root: Path, max_bytes: int = DEFAULT_CACHE_MB * 1024 * 1024) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._index: OrderedDict[Path, int] | None = None  # path → bytes, least recently used first
        self._bytes = 0

    def path_for(self, asset_id: str, size: int) -> Path:
        return self.root / asset_id[:2] / f"{asset_id}-{size}.jpg"

    @property
    def bytes(self) -> int:
        """What the cache holds on disk now (as far as this process knows)."""
        with self._lock:
            self._load()
            return self._bytes

    def get(self, asset_id: str, source: Path | str, size: int, time: float | None = None) -> Path:
        """The cached JPEG thumbnail (long side ≤ size) of `source` (a file, or an object URL) — for a video,
        of its frame at `time` seconds — made now if missing."""
        dest = self.path_for(asset_id, size)
        if dest.is_file():
            self._used(dest)
            return dest
        if isinstance(source, str) and objects.is_url(source):
            try:
                data = objects.read_bytes(source, MAX_FILE_BYTES)
            except (OSError, ValueError) as exc:
                raise BadImageError(source, f"cannot read the object ({exc})") from exc
            image = decode_bytes(data, source, max_side=size).image
        elif time is not None:  # a video keyframe: the frame at its time
            image = frame_at(source, time, max_side=size)
        else:
            image = decode_file(source, max_side=size).image  # EXIF-upright RGB, alpha on white
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        try:
            image.save(tmp, format="JPEG", quality=85, optimize=True)
            os.replace(tmp, dest)  # atomic: a concurrent request sees the old state or the whole file
        finally:
            tmp.unlink(missing_ok=True)
        self._added(dest)
        return dest

    # -- the LRU bound ------------------------------------------------------------------------------

    def _load(self) -> None:
        """Index what is on disk (once per process), least recently used (atime, set on each use) first."""
        if self._index is not None:
            return
        found = []
        for path in self.root.glob("*/*.jpg"):
            try:
                st = path.stat()
            except OSError:
                continue
            found.append((st.st_atime_ns, path, st.st_size))
        found.sort()
        self._index = OrderedDict((path, size) for _, path, size in found)
        self._bytes = sum(self._index.values())

    def _used(self, path: Path) -> None:
        with self._lock:
            self._load()
            assert self._index is not None
            if path in self._index:
                self._index.move_to_end(path)
            else:
                self._index[path] = _size(path)
                self._bytes += self._index[path]
        with contextlib.suppress(OSError):  # the use survives a restart (the index is rebuilt by atime)
            os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))  # mtime: when it was made

    def _added(self, path: Path) -> None:
        with self._lock:
            self._load()
            assert self._index is not None
            self._bytes -= self._index.pop(path, 0)
            self._index[path] = _size(path)
            self._bytes += self._index[path]
            while self._bytes > self.max_bytes and len(self._index) > 1:
                old, n = self._index.popitem(last=False)
                self._bytes -= n
                old.unlink(missing_ok=True)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
