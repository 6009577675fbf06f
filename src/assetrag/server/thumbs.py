"""Thumbnails: made once per (asset, size) and kept on disk; asset ids are content hashes, so a cached
thumbnail never goes stale.

A video keyframe's thumbnail is made on first request by decoding the frame at its time from the video
(`assetrag.video.frame_at`: one seek and at most a GOP of decoding), then cached like any other under the
keyframe's id — ingest stores no pictures, so a library stays vectors and fields only and works with any
server cache directory."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from assetrag.decode import decode_file
from assetrag.video import frame_at


class Thumbnails:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, asset_id: str, size: int) -> Path:
        return self.root / asset_id[:2] / f"{asset_id}-{size}.jpg"

    def get(self, asset_id: str, source: Path, size: int, time: float | None = None) -> Path:
        """The cached JPEG thumbnail (long side ≤ size) of `source` — for a video, of its frame at `time`
        seconds — made now if missing."""
        dest = self.path_for(asset_id, size)
        if dest.is_file():
            return dest
        # a video's frame at `time`; an image EXIF-upright RGB, alpha on white
        image = frame_at(source, time, max_side=size) if time is not None else decode_file(source, max_side=size).image
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        try:
            image.save(tmp, format="JPEG", quality=85, optimize=True)
            os.replace(tmp, dest)  # atomic: a concurrent request sees the old state or the whole file
        finally:
            tmp.unlink(missing_ok=True)
        return dest
