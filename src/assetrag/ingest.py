"""Incremental ingest: scan → hash → decode (parallel) → embed (batched) → upsert, batch by batch.

* unchanged files (same path, size and mtime) are skipped without being read;
* a file whose bytes are already stored (moved, copied, touched) is a path update — never decoded again;
* one bad file is recorded with its reason and never stops the run;
* every batch is written as soon as it is embedded, so a killed run loses at most one batch.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from assetrag.decode import DEFAULT_MAX_SIDE, Decoded, decode_bytes
from assetrag.embedding.base import Embedder
from assetrag.errors import AssetragError, BadImageError
from assetrag.scan import FileEntry, scan
from assetrag.store import MAX_PATHS, SCALAR_FIELDS, Store


class ProgressSink(Protocol):
    """Where ingest reports progress (the CLI draws a bar; the server records it in a job)."""

    def start(self, total: int, description: str) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class FileError:
    path: str
    reason: str


@dataclass
class IngestReport:
    """What an ingest run did. `decoded` counts images actually decoded (0 on an unchanged re-run)."""

    scanned: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    pruned: int = 0
    missing: int = 0
    decoded: int = 0
    errors: list[FileError] = field(default_factory=list)
    elapsed_s: float = 0.0
    embed_s: float = 0.0
    model_load_s: float = 0.0

    @property
    def images_per_s(self) -> float:
        """New images per second of work (loading the model once is not counted)."""
        work = self.elapsed_s - self.model_load_s
        return self.decoded / work if work > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["images_per_s"] = round(self.images_per_s, 2)
        return out


@dataclass
class _Known:
    """What the store already holds, indexed for the incremental check."""

    by_path: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # path → (id, size, mtime)
    ids: set[str] = field(default_factory=set)
    #: path → every record listing it; more than one only after a run was killed between writing a changed
    #: file's new record and taking the path off its old one — such a path is re-read and set right
    claims: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, store: Store) -> _Known:
        known = cls()
        for row in store.iterate(fields=("id", "paths", "mtimes", "size")):
            known.ids.add(row["id"])
            mtimes = list(row.get("mtimes") or [])
            for i, p in enumerate(row.get("paths") or []):
                known.by_path[p] = (row["id"], int(row["size"]), int(mtimes[i]) if i < len(mtimes) else -1)
                known.claims.setdefault(p, []).append(row["id"])
        return known


@dataclass
class _Item:
    entry: FileEntry
    id: str | None = None
    decoded: Decoded | None = None
    error: str | None = None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: files are read whole (to hash and decode them); anything bigger is refused rather than risk the memory
MAX_FILE_BYTES = 1 << 30


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


class Ingestor:
    """Runs one ingest over a store with an embedder (loaded only if something new must be embedded)."""

    def __init__(
        self,
        store: Store,
        embedder: Callable[[], Embedder],
        *,
        batch_size: int = 32,
        workers: int = 2,
        max_side: int = DEFAULT_MAX_SIDE,
        progress: ProgressSink | None = None,
    ) -> None:
        self.store = store
        self._embedder_factory = embedder
        self._embedder: Embedder | None = None
        self.batch_size = batch_size
        self.workers = workers
        self.max_side = max_side
        self.progress = progress
        self._claim_lock = threading.Lock()
        self._load_s = 0.0
        self._failed: dict[str, str] = {}  # content id → why it could not be ingested (this run)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            t = time.perf_counter()
            self._embedder = self._embedder_factory()
            self.store.ensure(self._embedder.name, self._embedder.dim)
            self._load_s = time.perf_counter() - t
        return self._embedder

    def run(
        self,
        roots: Sequence[str | Path],
        *,
        collection: str | None = None,
        tags: Sequence[str] = (),
        prune: bool = False,
    ) -> IngestReport:
        t0 = time.perf_counter()
        report = IngestReport()
        entries, scan_errors = scan(roots, collection=collection, tags=tags)
        report.errors.extend(FileError(e.path, e.reason) for e in scan_errors)
        report.scanned = len(entries)
        known = _Known.load(self.store) if self.store.model_info() else _Known()

        todo: list[FileEntry] = []
        for e in entries:
            hit = known.by_path.get(e.path)
            if hit and hit[1] == e.size and hit[2] == e.mtime and len(known.claims[e.path]) == 1:
                report.unchanged += 1
            else:
                todo.append(e)

        updates = _PathUpdates()
        # a path that now holds other bytes must leave the record that had it
        for e in todo:
            for rid in known.claims.get(e.path, ()):
                updates.remove(rid, e.path)

        if self.progress:
            self.progress.start(len(todo), "ingesting")
        claimed: set[str] = set()
        batch: list[_Item] = []
        try:
            for item in self._prepared(todo, known.ids, claimed):
                if self.progress:
                    self.progress.advance(1)
                if item.error:
                    report.errors.append(FileError(item.entry.path, item.error))
                    continue
                assert item.id is not None
                if item.decoded is None:  # bytes already stored: a move, copy or touch
                    updates.add(item.id, item.entry)
                    if updates.size >= self.batch_size:
                        self._flush(batch, report)
                        self._apply(updates, known, report, later=claimed)
                    continue
                report.decoded += 1
                batch.append(item)
                if len(batch) >= self.batch_size:
                    self._flush(batch, report)
            self._flush(batch, report)
            seen = {e.path for e in entries}
            gone = [
                (path, pid)
                for path, (pid, _, _) in known.by_path.items()
                if path not in seen and _under(path, roots) and not os.path.exists(path)
            ]
            if prune:
                for path, pid in gone:
                    updates.remove(pid, path)
            else:
                report.missing = len(gone)
            self._apply(updates, known, report)
            if report.added or report.updated or report.pruned:
                self.store.flush()  # Milvus Lite: searches over unflushed rows are slow
        finally:
            if self.progress:
                self.progress.stop()
        report.elapsed_s = time.perf_counter() - t0
        report.model_load_s = self._load_s
        return report

    # -- stages -----------------------------------------------------------------------------------

    def _prepared(self, todo: Sequence[FileEntry], known_ids: set[str], claimed: set[str]) -> Iterable[_Item]:
        """Read, hash and (for new content only) decode files in worker threads, yielded in order."""
        window = max(2 * self.batch_size, 4 * self.workers)
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="assetrag-decode") as pool:
            pending: deque[Future[_Item]] = deque()
            it = iter(todo)
            for e in it:
                pending.append(pool.submit(self._prepare, e, known_ids, claimed))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def _prepare(self, entry: FileEntry, known_ids: set[str], claimed: set[str]) -> _Item:
        item = _Item(entry)
        try:
            data = read_regular_file(entry.path)
        except OSError as exc:
            item.error = f"cannot read the file ({exc.strerror or exc})"
            return item
        except ValueError as exc:
            item.error = str(exc)
            return item
        if not data:
            item.error = "empty file (0 bytes); re-export or remove it"
            return item
        item.id = sha256_bytes(data)
        with self._claim_lock:
            is_new = item.id not in known_ids and item.id not in claimed
            if is_new:
                claimed.add(item.id)
        if not is_new:
            return item
        try:
            item.decoded = decode_bytes(data, entry.path, self.max_side)
        except BadImageError as exc:
            item.error = exc.reason
            with self._claim_lock:
                claimed.discard(item.id)
                self._failed[item.id] = exc.reason
        return item

    def _flush(self, batch: list[_Item], report: IngestReport) -> None:
        """Embed and write a batch; a batch that fails to embed is retried image by image."""
        if not batch:
            return
        t = time.perf_counter()
        images = [it.decoded.image for it in batch if it.decoded is not None]
        try:
            vectors = self.embedder.embed_images(images)
            good = list(zip(batch, vectors, strict=True))
        except AssetragError:
            raise
        except Exception:
            good = []
            for it in batch:
                try:
                    assert it.decoded is not None
                    good.append((it, self.embedder.embed_images([it.decoded.image])[0]))
                except Exception as exc:
                    report.errors.append(FileError(it.entry.path, f"the model could not embed it: {exc}"))
        report.embed_s += time.perf_counter() - t
        rows = [_new_row(it, vec) for it, vec in good]
        self.store.upsert(rows)
        report.added += len(rows)
        batch.clear()

    def _apply(self, updates: _PathUpdates, known: _Known, report: IngestReport, later: set[str] | None = None) -> None:
        """Apply path additions/removals to stored records (one read and one write per record).

        Copies of content in `later` (claimed by this run, its record maybe not written yet: the copy that
        claimed the bytes can come after this one in scan order) stay queued when their record is missing.
        """
        if not updates.size:
            return
        ids = list(updates.ids())
        stored = self.store.model_info() is not None
        rows = {r["id"]: r for r in self.store.get(ids, (*SCALAR_FIELDS, "vector"))} if stored else {}
        upserts: list[dict[str, Any]] = []
        deletes: list[str] = []
        waiting: dict[str, list[FileEntry]] = {}
        for rid in ids:
            row = rows.get(rid)
            if row is None and later is not None and rid in later and rid not in self._failed:
                waiting[rid] = updates.adds.get(rid, [])
                continue
            if row is None:  # its byte-identical twin failed earlier in this run: same bytes, same fate
                reason = self._failed.get(rid, "an identical copy of this file could not be ingested")
                report.errors.extend(FileError(a.path, reason) for a in updates.adds.get(rid, []))
                continue
            adds = updates.adds.get(rid, [])
            removes = updates.removes.get(rid, set())
            pairs = [
                (p, m)
                for p, m in zip(row.get("paths") or [], row.get("mtimes") or [], strict=False)
                if p not in removes and p not in {a.path for a in adds}
            ]
            # paths that vanished from disk (the file moved) are dropped when a new one arrives
            if adds:
                kept = [(p, m) for p, m in pairs if os.path.exists(p)]
                report.duplicates += len(adds) if kept else len(adds) - 1
                pairs = kept
            pairs.extend((a.path, a.mtime) for a in adds)
            if not pairs:
                deletes.append(rid)
                continue
            pairs = pairs[:MAX_PATHS]
            moved = pairs[0][0] != row.get("path")
            row["paths"] = [p for p, _ in pairs]
            row["mtimes"] = [int(m) for _, m in pairs]
            row["path"] = pairs[0][0]
            row["mtime"] = int(pairs[0][1])
            row["filename"] = os.path.basename(pairs[0][0])
            if adds:
                # a moved record takes its new folder's tags; a copy adds its folder's tags
                base_tags = [] if moved else list(row.get("tags") or [])
                row["tags"] = _merge_tags(base_tags, [t for a in adds for t in a.tags])
                primary = next((a for a in adds if a.path == row["path"]), None)
                if primary is not None:
                    row["collection"] = primary.collection
                    row["metadata"] = {**(row.get("metadata") or {}), **primary.metadata}
            upserts.append(row)
            for p in removes:
                known.by_path.pop(p, None)
        self.store.upsert(upserts)
        self.store.delete(deletes)
        report.updated += len(upserts)
        report.pruned += len(deletes)
        updates.clear()
        updates.adds.update(waiting)


class _PathUpdates:
    """Pending path additions and removals, grouped by record id."""

    def __init__(self) -> None:
        self.adds: dict[str, list[FileEntry]] = {}
        self.removes: dict[str, set[str]] = {}

    def add(self, rid: str, entry: FileEntry) -> None:
        self.adds.setdefault(rid, []).append(entry)

    def remove(self, rid: str, path: str) -> None:
        self.removes.setdefault(rid, set()).add(path)

    def ids(self) -> Iterable[str]:
        return dict.fromkeys([*self.adds, *self.removes])

    @property
    def size(self) -> int:
        return len(self.adds) + len(self.removes)

    def clear(self) -> None:
        self.adds.clear()
        self.removes.clear()


def _new_row(item: _Item, vector: np.ndarray) -> dict[str, Any]:
    e, d = item.entry, item.decoded
    assert d is not None and item.id is not None
    return {
        "id": item.id,
        "vector": np.asarray(vector, dtype=np.float32).tolist(),
        "path": e.path,
        "paths": [e.path],
        "mtimes": [int(e.mtime)],
        "filename": os.path.basename(e.path),
        "size": int(e.size),
        "mtime": int(e.mtime),
        "width": d.width,
        "height": d.height,
        "tags": list(e.tags),
        "collection": e.collection,
        "source": str(e.metadata.get("source", "ingested")),
        "lineage": {},
        "metadata": e.metadata,
    }


def _merge_tags(a: Sequence[str], b: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*a, *b]))[:64]


def _under(path: str, roots: Sequence[str | Path]) -> bool:
    for root in roots:
        r = os.path.abspath(os.fspath(root))
        if path == r or path.startswith(r.rstrip(os.sep) + os.sep):
            return True
    return False


def add_file(
    store: Store,
    embedder: Embedder,
    path: str | Path,
    *,
    collection: str,
    tags: Sequence[str] = (),
    source: str = "ingested",
    lineage: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
) -> str:
    """Store one image file with explicit fields (e.g. a generated image with its lineage); returns its id."""
    path = os.path.abspath(os.fspath(path))
    data = Path(path).read_bytes()
    decoded = decode_bytes(data, path, max_side)
    st = os.stat(path)
    item = _Item(
        FileEntry(path, os.path.dirname(path), st.st_size, st.st_mtime_ns, tuple(tags), collection, metadata or {}),
        id=sha256_bytes(data),
        decoded=decoded,
    )
    store.ensure(embedder.name, embedder.dim)
    row = _new_row(item, embedder.embed_images([decoded.image])[0])
    row["source"] = source
    row["lineage"] = lineage or {}
    store.upsert([row])
    return row["id"]
