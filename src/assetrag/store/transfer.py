"""Copy a library from one store to another (Milvus Lite → server, server → Lite, server → server).

Rows and vectors are copied as they are (no re-embedding), read with pymilvus' `query_iterator` and
upserted by primary key: a copy killed anywhere and run again ends with the same library, and the end is
verified (row counts, id sets, a sample of rows compared field by field, vectors exactly).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from assetrag.errors import ModelMismatchError, StoreError
from assetrag.progress import ProgressSink
from assetrag.store.client import Store
from assetrag.store.index import IndexSpec
from assetrag.store.migrations import crash_point
from assetrag.store.schema import ALL_FIELDS, SCALAR_FIELDS

BATCH = 1000
SAMPLE = 200


@dataclass(frozen=True)
class TransferReport:
    """What `copy_library` did and found: `rows` in the source, all present in the destination."""

    source: str
    destination: str
    model: str
    dim: int
    rows: int
    copied: int
    destination_rows: int
    extra: int  # rows the destination holds that the source does not (it was not empty)
    sampled: int  # rows compared field by field, vector included
    created: bool  # the destination library was created by this copy
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe(store: Store) -> str:
    db = f", database {store.db_name!r}" if store.db_name else ""
    return f"library {store.name!r} at {store.uri}{db}"


def prepare_destination(
    dst: Store, model: str, dim: int, index: IndexSpec | None, mismatch: Callable[[tuple[str, int]], str]
) -> bool:
    """Create `dst` for `model`/`dim` with `index` when it does not exist (True), or check that it was built with
    the same model and dim (False); otherwise ModelMismatchError with `mismatch((built model, built dim))`."""
    built = dst.model_info()
    if built is None:
        if index is not None:
            dst.index = index
        dst.ensure(model, dim)
        return True
    if built != (model, dim):
        raise ModelMismatchError(
            mismatch(built), library=dst.name, built_model=built[0], built_dim=built[1], model=model, dim=dim
        )
    return False


def copy_library(
    src: Store, dst: Store, progress: ProgressSink | None = None, batch: int = BATCH, *, sample: int = SAMPLE
) -> TransferReport:
    """Copy every row of `src` into `dst` (created with the source's model, dim and index when absent).

    Refuses a destination built with another model or dim (ModelMismatchError). Raises StoreError when the
    check at the end finds a row missing or different; run it again to finish an interrupted copy.
    """
    t0 = time.perf_counter()
    if _same(src, dst):
        raise StoreError(f"the source and the destination are the same {describe(src)}; name another one")
    info = src.model_info()
    if info is None:
        raise StoreError(f"{describe(src)} does not exist: nothing to copy (check --uri and --library)")
    model, dim = info
    src_index = src.index_info()
    created = prepare_destination(
        dst,
        model,
        dim,
        IndexSpec.of(src_index) if src_index else src.index,
        lambda built: (
            f"{describe(dst)} was built with model {built[0]!r} (dim {built[1]}) but {describe(src)} holds "
            f"{model!r} (dim {dim}): vectors of different models cannot share a library. Copy into another "
            "library name (e.g. --to-library), which is created with the source's model"
        ),
    )
    total = src.count()
    if progress:
        progress.start(total, "copying")
    copied = 0
    try:
        for n, rows in enumerate(src.batches(ALL_FIELDS, batch_size=batch), 1):
            dst.upsert(rows)
            copied += len(rows)
            if progress:
                progress.advance(len(rows))
            crash_point(f"transfer.batch.{n}")
    finally:
        if progress:
            progress.stop()
    dst.flush()
    crash_point("transfer.copied")
    src_ids = {r["id"] for r in src.iterate(("id",), batch_size=10_000)}
    dst_ids = {r["id"] for r in dst.iterate(("id",), batch_size=10_000)}
    missing = src_ids - dst_ids
    if missing:
        raise StoreError(
            f"copying {describe(src)} to {describe(dst)}: {len(missing)} of {len(src_ids)} rows are missing "
            f"afterwards (e.g. {min(missing)}); run the copy again (another process writing to the source "
            "meanwhile would cause this)"
        )
    sampled = _compare_sample(src, dst, sorted(src_ids), sample)
    return TransferReport(
        source=describe(src),
        destination=describe(dst),
        model=model,
        dim=dim,
        rows=len(src_ids),
        copied=copied,
        destination_rows=len(dst_ids),
        extra=len(dst_ids - src_ids),
        sampled=sampled,
        created=created,
        seconds=round(time.perf_counter() - t0, 2),
    )


def _compare_sample(src: Store, dst: Store, ids: list[str], sample: int) -> int:
    """Compare up to `sample` rows (random, every field, vectors exactly); raises StoreError on a difference."""
    picked = random.Random(len(ids)).sample(ids, min(sample, len(ids)))
    for i in range(0, len(picked), 100):
        chunk = picked[i : i + 100]
        theirs = {r["id"]: r for r in dst.get(chunk, ALL_FIELDS)}
        for mine in src.get(chunk, ALL_FIELDS):
            other = theirs.get(mine["id"])
            diff = "missing" if other is None else _difference(mine, other)
            if diff:
                raise StoreError(
                    f"copying {describe(src)} to {describe(dst)}: row {mine['id']} differs afterwards ({diff}); "
                    "run the copy again"
                )
    return len(picked)


def _difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    """The first field that differs between two rows ('' when none)."""
    if not np.array_equal(np.asarray(a["vector"], np.float32), np.asarray(b["vector"], np.float32)):
        return "vector"
    for key in SCALAR_FIELDS:
        x, y = a.get(key), b.get(key)
        if isinstance(x, (list, tuple)) or isinstance(y, (list, tuple)):
            x, y = list(x or []), list(y or [])
        if x != y:
            return key
    return ""


def _same(a: Store, b: Store) -> bool:
    def where(s: Store) -> tuple[str, str, str]:
        uri = s.uri if s.is_server else os.path.abspath(s.uri)
        return uri.rstrip("/"), s.db_name or "default", s.name

    return where(a) == where(b)
