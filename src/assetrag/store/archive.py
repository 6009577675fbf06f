"""Export a whole library to one Parquet file, and import it back (backups, moves, hand-offs).

The file holds one row per asset — every field, the vector as a fixed-size list of float32, the JSON fields
(`lineage`, `metadata`) as JSON strings — written a batch (one row group) at a time, so memory stays bounded
whatever the library's size. The Parquet schema metadata key `assetrag` holds, as JSON: the format and its
version, the model name and dim, the schema version, the library name, its index and the row count.
Importing refuses an archive of another model than the library it goes into.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from assetrag.errors import StoreError
from assetrag.progress import ProgressSink
from assetrag.store.client import Store
from assetrag.store.index import IndexSpec
from assetrag.store.schema import ALL_FIELDS, SCALAR_FIELDS, SCHEMA_VERSION, with_defaults
from assetrag.store.transfer import describe, prepare_destination

FORMAT = "assetrag-library"
FORMAT_VERSION = 1
META_KEY = b"assetrag"
BATCH = 1000
_JSON_FIELDS = ("lineage", "metadata")


@dataclass(frozen=True)
class ArchiveReport:
    """What an export or import did."""

    path: str
    library: str
    model: str
    dim: int
    schema_version: int
    rows: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def arrow_schema(dim: int, meta: dict[str, Any] | None = None) -> pa.Schema:
    """The Parquet columns of an archive of `dim`-dimensional vectors (schema 2 fields)."""
    strings = pa.list_(pa.string())
    fields = [
        ("id", pa.string()),
        ("vector", pa.list_(pa.float32(), dim)),
        ("path", pa.string()),
        ("paths", strings),
        ("mtimes", pa.list_(pa.int64())),
        ("filename", pa.string()),
        ("size", pa.int64()),
        ("mtime", pa.int64()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("tags", strings),
        ("collection", pa.string()),
        ("source", pa.string()),
        ("lineage", pa.string()),
        ("metadata", pa.string()),
        ("phash", pa.string()),
        ("media", pa.string()),
        ("time", pa.float32()),
        ("video_id", pa.string()),
        ("frames", pa.int64()),
    ]
    assert [name for name, _ in fields] == ["id", "vector", *SCALAR_FIELDS[1:]]  # kept in step with schema.py
    metadata = {META_KEY: json.dumps(meta, ensure_ascii=False).encode()} if meta else None
    return pa.schema(fields, metadata=metadata)


def export_library(
    store: Store, path: str | os.PathLike[str], *, batch: int = BATCH, progress: ProgressSink | None = None
) -> ArchiveReport:
    """Write every row of `store` to the Parquet file `path` (replaced only once the export is complete)."""
    t0 = time.perf_counter()
    info = store.model_info()
    if info is None:
        raise StoreError(f"{describe(store)} does not exist: nothing to export (check --uri and --library)")
    model, dim = info
    index = store.index_info()
    total = store.count()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model,
        "dim": dim,
        "schema_version": SCHEMA_VERSION,
        "library": store.name,
        "index": {"index_type": index.get("index_type", store.index.index_type), "params": index.get("params", {})},
        "rows": total,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    schema = arrow_schema(dim, meta)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    rows = 0
    if progress:
        progress.start(total, "exporting")
    try:
        with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
            for chunk in store.batches(ALL_FIELDS, batch_size=batch):
                for row in chunk:
                    for key in _JSON_FIELDS:
                        row[key] = json.dumps(row.get(key), ensure_ascii=False)
                writer.write_batch(pa.RecordBatch.from_pylist(chunk, schema=schema))
                rows += len(chunk)
                if progress:
                    progress.advance(len(chunk))
        os.replace(partial, target)
    finally:
        if progress:
            progress.stop()
        if partial.exists():
            partial.unlink()
    return ArchiveReport(str(target), store.name, model, dim, SCHEMA_VERSION, rows, round(time.perf_counter() - t0, 2))


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The `assetrag` metadata of an archive (StoreError when the file is not one this version can read)."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"{path} is not a Parquet file assetrag can read: {exc}") from exc
    raw = (schema.metadata or {}).get(META_KEY)
    meta = json.loads(raw) if raw else {}
    if meta.get("format") != FORMAT:
        raise StoreError(f"{path} is not an assetrag library export (no {META_KEY.decode()!r} metadata)")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION or int(meta.get("schema_version", 0)) > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was exported by a newer assetrag (format {meta.get('format_version')}, schema "
            f"{meta.get('schema_version')}); upgrade assetrag to import it"
        )
    return meta


def import_archive(
    store: Store, path: str | os.PathLike[str], *, batch: int = BATCH, progress: ProgressSink | None = None
) -> ArchiveReport:
    """Upsert every row of the archive at `path` into `store` (created with the archive's model, dim and
    index when absent; an existing library must have the same model and dim)."""
    t0 = time.perf_counter()
    meta = read_meta(path)
    model, dim = str(meta["model"]), int(meta["dim"])
    index = meta.get("index") or {}
    prepare_destination(
        store,
        model,
        dim,
        IndexSpec.of({"index_type": index["index_type"], "params": index.get("params") or {}})
        if index.get("index_type")
        else None,
        lambda built: (
            f"{path} holds library {meta.get('library')!r} embedded with model {model!r} (dim {dim}), but "
            f"{describe(store)} was built with {built[0]!r} (dim {built[1]}): vectors of different models "
            "cannot share a library. Import into another library name (--library NAME), which is created "
            "with the archive's model"
        ),
    )
    parquet = pq.ParquetFile(path)
    total = parquet.metadata.num_rows
    rows = 0
    if progress:
        progress.start(total, "importing")
    try:
        for record_batch in parquet.iter_batches(batch_size=batch):
            chunk = record_batch.to_pylist()
            for row in chunk:
                for key in _JSON_FIELDS:
                    if isinstance(row.get(key), str):
                        row[key] = json.loads(row[key])
            store.upsert([with_defaults(r) for r in chunk])  # an older archive lacks the newer fields
            rows += len(chunk)
            if progress:
                progress.advance(len(chunk))
    finally:
        if progress:
            progress.stop()
    store.flush()
    version = int(meta.get("schema_version", SCHEMA_VERSION))
    return ArchiveReport(str(path), store.name, model, dim, version, rows, round(time.perf_counter() - t0, 2))
