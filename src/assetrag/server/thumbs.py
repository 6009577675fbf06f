"""Thumbnails: made once per (asset, size) and kept on disk; asset ids are content hashes, so a cached
thumbnail never goes stale."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from assetrag.decode import decode_file


class Thumbnails:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, asset_id: str, size: int) -> Path:
        return self.root / asset_id[:2] / f"{asset_id}-{size}.jpg"

    def get(self, asset_id: str, source: Path, size: int) -> Path:
        """The cached JPEG thumbnail (long side ≤ size) of `source`, made now if missing."""
        dest = self.path_for(asset_id, size)
        if dest.is_file():
            return dest
        image = decode_file(source, max_side=size).image  # EXIF-upright RGB, alpha on white
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        try:
            image.save(tmp, format="JPEG", quality=85, optimize=True)
            os.replace(tmp, dest)  # atomic: a concurrent request sees the old state or the whole file
        finally:
            tmp.unlink(missing_ok=True)
        return dest
