"""What an ingest run handles and produces: one file's item, its Milvus row, the per-file errors and the report."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from assetrag.decode import Decoded
from assetrag.ingest.read import Loaded
from assetrag.ingest.scan import FileEntry
from assetrag.store import MAX_TAGS


@dataclass(frozen=True)
class FileError:
    path: str
    reason: str


@dataclass
class IngestReport:
    """What an ingest run did. `decoded` counts images actually decoded (0 on an unchanged re-run); `stages`
    holds the seconds each stage took (summed over the threads that ran it).

    A prune that was held back lists why in `refused` (the rest of the run — new and changed files — was
    still done) and the gone paths it kept in `held_back`; `dry_run` runs change nothing and list in
    `would_prune` the stored paths a prune would take off (`would_delete`: the records left with no path, which
    would be deleted). `missing_roots`: roots given that do not exist or cannot be listed."""

    scanned: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    pruned: int = 0
    missing: int = 0
    decoded: int = 0
    videos: int = 0  # videos sampled (each also counts in `added` and `decoded`)
    keyframes: int = 0  # their keyframes (one row each)
    video_seconds: float = 0.0  # their length
    errors: list[FileError] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)
    missing_roots: list[str] = field(default_factory=list)
    dry_run: bool = False
    would_prune: list[str] = field(default_factory=list)
    would_delete: int = 0
    bulk_rows: int = 0  # new rows loaded by bulk insert (also counted in `added`)
    notes: list[str] = field(default_factory=list)  # what the user should know (e.g. bulk insert fell back)
    elapsed_s: float = 0.0
    embed_s: float = 0.0
    model_load_s: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        """New images per second of work (loading the model once is not counted)."""
        work = self.elapsed_s - self.model_load_s
        return self.decoded / work if work > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["images_per_s"] = round(self.images_per_s, 2)
        out["stages"] = {k: round(v, 3) for k, v in self.stages.items()}
        return out


@dataclass
class Item:
    """One file on its way through a pipeline: the simple pipeline sets `decoded`, the fast one `loaded`."""

    entry: FileEntry
    id: str | None = None
    decoded: Decoded | None = None
    error: str | None = None
    loaded: Loaded | None = None  # the fast pipeline's worker output (pixels, image or JPEG bytes)
    vector: Any = None  # embedded elsewhere already (the Ray engine's actors)
    phash: str = ""  # the simple pipeline's `decode.perceptual_hash` (the fast one's is `loaded.phash`)

    @property
    def new(self) -> bool:
        """True when this item's bytes must be embedded (False: a path update of stored bytes)."""
        return self.vector is not None or self.decoded is not None or (self.loaded is not None and self.loaded.new)

    @property
    def size(self) -> tuple[int, int]:
        """The original image's (width, height), EXIF-upright."""
        if self.decoded is not None:
            return self.decoded.width, self.decoded.height
        assert self.loaded is not None
        return self.loaded.width, self.loaded.height


def new_row(item: Item, vector: np.ndarray, *, size: tuple[int, int] | None = None) -> dict[str, Any]:
    """The Milvus row of a newly embedded file (`size`: its picture size when the item has no decoded image)."""
    e = item.entry
    width, height = size or item.size
    assert item.id is not None
    return {
        "id": item.id,
        "vector": np.asarray(vector, dtype=np.float32).tolist(),
        "path": e.path,
        "paths": [e.path],
        "mtimes": [int(e.mtime)],
        "filename": os.path.basename(e.path),
        "size": int(e.size),
        "mtime": int(e.mtime),
        "width": int(width),
        "height": int(height),
        "tags": list(e.tags),
        "collection": e.collection,
        "source": str(e.metadata.get("source", "ingested")),
        "lineage": {},
        "metadata": e.metadata,
        "phash": item.phash or (item.loaded.phash if item.loaded is not None else ""),
    }


def merge_tags(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """`a` then the new ones of `b`, at most `MAX_TAGS`."""
    return list(dict.fromkeys([*a, *b]))[:MAX_TAGS]
