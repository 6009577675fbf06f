"""Incremental ingest: scan → hash → decode (parallel) → embed (batched) → upsert, batch by batch.

* unchanged files (same path, size and mtime) are skipped without being read;
* a file whose bytes are already stored (moved, copied, touched) is a path update — never decoded again;
* one bad file is recorded with its reason and never stops the run;
* every batch is written as soon as it is embedded, so a killed run loses at most one batch (the fast
  pipeline: at most the few batches in flight); the next run finishes the job.

Two pipelines share all of that (`pipeline=`):

* `simple` — worker threads read, hash and decode (long side ≤ 512); this thread embeds and writes each batch.
* `fast` — workers (threads, or processes with `decode_pool="process"`) decode straight to the model's input
  pixels when the embedder has a pixel path (`PixelEmbedder`); an embed thread and a write thread take the
  batches, so decoding, the model and the store work at once (`assetrag.pipeline`). On CUDA batches are at
  least `gpu_batch_size` (256) and, when torchvision is importable, a share of the JPEGs (`gpu_share`) is
  decoded on the GPU (nvJPEG) while the CPU workers decode the rest.
* `auto` (default) — `fast` when CUDA is available (and the device is not `cpu`), else `simple`.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from assetrag.decode import DEFAULT_MAX_SIDE, Decoded, decode_bytes
from assetrag.embedding.base import Embedder, pixel_spec_of
from assetrag.errors import AssetragError, BadImageError, ConfigError
from assetrag.pipeline import (
    MAX_FILE_BYTES,
    KnownPrefixes,
    Loaded,
    Stages,
    Target,
    decode_into,
    init_process_worker,
    load_file,
    load_file_in_process,
    read_regular_file,
    sha256_bytes,
)
from assetrag.embedding.pixels import decode_pixels
from assetrag.scan import FileEntry, scan
from assetrag.store import MAX_PATHS, SCALAR_FIELDS, Store

__all__ = ["MAX_FILE_BYTES", "FileError", "IngestReport", "Ingestor", "add_file", "read_regular_file", "sha256_bytes"]

PIPELINES = ("auto", "simple", "fast")
DECODE_POOLS = ("thread", "process")


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
    loaded: Loaded | None = None  # the fast pipeline's worker output (pixels, image or JPEG bytes)

    @property
    def new(self) -> bool:
        """True when this item's bytes must be embedded (False: a path update of stored bytes)."""
        return self.decoded is not None or (self.loaded is not None and self.loaded.new)

    @property
    def size(self) -> tuple[int, int]:
        """The original image's (width, height), EXIF-upright."""
        if self.decoded is not None:
            return self.decoded.width, self.decoded.height
        assert self.loaded is not None
        return self.loaded.width, self.loaded.height


class _Seen:
    """What fast-pipeline worker threads treat as already seen (a read-only view: the main thread claims)."""

    def __init__(self, known: set[str], claimed: set[str]) -> None:
        self.known, self.claimed = known, claimed

    def __contains__(self, rid: object) -> bool:
        return rid in self.known or rid in self.claimed


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
        pipeline: str = "simple",
        device: str = "auto",
        decode_pool: str = "thread",
        gpu_batch_size: int = 256,
        gpu_decode: str = "auto",
        gpu_share: float = 0.6,
    ) -> None:
        """`pipeline`: simple | fast | auto (fast when CUDA is available and `device` is not cpu).
        Fast pipeline only: `decode_pool` thread | process; on CUDA, batches of at least `gpu_batch_size`;
        `gpu_decode` auto (on CUDA when torchvision is importable) | on (any device, with torchvision) | off,
        and `gpu_share` of the JPEGs the GPU can take are decoded there."""
        if pipeline not in PIPELINES:
            raise ConfigError(f"unknown ingest pipeline {pipeline!r}; choose one of {', '.join(PIPELINES)}")
        if decode_pool not in DECODE_POOLS:
            raise ConfigError(f"unknown decode pool {decode_pool!r}; choose thread or process")
        if gpu_decode not in ("auto", "on", "off"):
            raise ConfigError(f"gpu_decode must be auto, on or off, got {gpu_decode!r}")
        self.store = store
        self._embedder_factory = embedder
        self._embedder: Embedder | None = None
        self.batch_size = batch_size
        self.workers = workers
        self.max_side = max_side
        self.progress = progress
        self.pipeline = pipeline
        self.device = device
        self.decode_pool = decode_pool
        self.gpu_batch_size = gpu_batch_size
        self.gpu_decode = gpu_decode
        self.gpu_share = min(max(float(gpu_share), 0.0), 1.0)
        self._claim_lock = threading.Lock()
        self._load_s = 0.0
        self._failed: dict[str, str] = {}  # content id → why it could not be ingested (this run)
        self._stages: Stages | None = None  # the fast pipeline's embed and write threads, while it runs
        self._target = Target(max_side=max_side)
        self._gpu: Any = None  # GpuJpegDecoder when the GPU decodes part of the JPEGs
        self._embed_s = 0.0
        #: what the last run used (for reports and benchmarks): pipeline, batch, device, dtype, decode
        self.used: dict[str, Any] = {}

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

        fast = bool(todo) and self._use_fast()
        batch_size = self._start_fast(report) if fast else self.batch_size
        self.used = self.used if fast else {"pipeline": "simple", "batch": batch_size, "workers": self.workers}
        if self.progress:
            self.progress.start(len(todo), "ingesting")
        claimed: set[str] = set()
        batch: list[_Item] = []
        items = self._loaded(todo, known.ids, claimed) if fast else self._prepared(todo, known.ids, claimed)
        try:
            for item in items:
                if self.progress:
                    self.progress.advance(1)
                if fast:
                    self._claim(item, known.ids, claimed)
                if item.error:
                    report.errors.append(FileError(item.entry.path, item.error))
                    continue
                assert item.id is not None
                if not item.new:  # bytes already stored: a move, copy or touch
                    updates.add(item.id, item.entry)
                    if updates.size >= batch_size:
                        self._flush(batch, report)
                        self._apply(updates, known, report, later=claimed)
                    continue
                report.decoded += 1
                batch.append(item)
                if len(batch) >= batch_size:
                    self._flush(batch, report)
            self._flush(batch, report)
            if self._stages is not None:
                self._stages.drain()
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
            if self._stages is not None:
                self._stages.close()
                self._stages = None
                report.embed_s += self._embed_s
            if self.progress:
                self.progress.stop()
        report.elapsed_s = time.perf_counter() - t0
        report.model_load_s = self._load_s
        return report

    # -- the fast pipeline ------------------------------------------------------------------------

    def _use_fast(self) -> bool:
        if self.pipeline != "auto":
            return self.pipeline == "fast"
        if (self.device or "auto").strip().lower() == "cpu":
            return False
        try:
            import torch
        except ImportError:
            return False
        return bool(torch.cuda.is_available())

    def _start_fast(self, report: IngestReport) -> int:
        """Load the model (its pixel recipe tells the workers what to make), start the embed and write
        threads; returns the batch size."""
        emb = self.embedder
        spec = pixel_spec_of(emb)
        device = getattr(emb, "device", None)
        on_cuda = getattr(device, "type", None) == "cuda"
        batch = max(self.batch_size, self.gpu_batch_size) if on_cuda else self.batch_size
        self._gpu = None
        wanted = self.gpu_decode == "on" or (self.gpu_decode == "auto" and on_cuda)
        if wanted and spec is not None and spec.views == "crop" and device is not None:
            from assetrag.embedding.tensors import GpuJpegDecoder

            self._gpu = GpuJpegDecoder.create(device)
        share = self.gpu_share if self._gpu is not None else 0.0
        self._target = Target(spec=spec, max_side=self.max_side, gpu_share=share)
        self._embed_s = 0.0
        self._stages = Stages(self._embed_batch, lambda rows: self._write_rows(rows, report))
        self.used = {
            "pipeline": "fast",
            "batch": batch,
            "workers": self.workers,
            "decode_pool": self.decode_pool,
            "device": str(device) if device is not None else "?",
            "dtype": str(getattr(emb, "dtype", "float32")).replace("torch.", ""),
            "pixel_path": spec is not None,
            "gpu_decode": f"torchvision, share {share:g}" if self._gpu is not None else "off",
        }
        return batch

    def _loaded(self, todo: Sequence[FileEntry], known_ids: set[str], claimed: set[str]) -> Iterable[_Item]:
        """The fast pipeline's workers: read, hash and decode to model input, yielded in scan order."""
        window = max(2 * self.batch_size, 4 * self.workers)
        pool: Executor
        if self.decode_pool == "process":
            import multiprocessing

            pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),  # no fork of a process with CUDA and threads
                initializer=init_process_worker,
                initargs=(KnownPrefixes(known_ids),),
            )
        else:
            pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="assetrag-decode")
        seen = _Seen(known_ids, claimed)
        target = self._target
        with pool:
            pending: deque[tuple[FileEntry, Future[Loaded]]] = deque()
            for i, e in enumerate(todo):
                if self.decode_pool == "process":
                    fut = pool.submit(load_file_in_process, e.path, target, i)
                else:
                    fut = pool.submit(load_file, e.path, target, i, seen)
                pending.append((e, fut))
                if len(pending) >= window:
                    yield self._item(*pending.popleft())
            while pending:
                yield self._item(*pending.popleft())

    @staticmethod
    def _item(entry: FileEntry, fut: Future[Loaded]) -> _Item:
        loaded = fut.result()
        return _Item(entry, id=loaded.id, error=loaded.error, loaded=loaded)

    def _claim(self, item: _Item, known_ids: set[str], claimed: set[str]) -> None:
        """The fast pipeline's in-order claim: the first new copy of some bytes is embedded, later copies (and
        bytes already stored) become path updates; bytes a worker skipped by mistake are decoded here."""
        if item.id is None or item.loaded is None:
            return
        if item.error:
            self._failed.setdefault(item.id, item.error)  # its copies share its fate
            return
        taken = item.id in known_ids or item.id in claimed
        if item.new and taken:
            item.loaded = Loaded(id=item.id)  # a copy decoded twice by racing workers: keep one
        elif not item.new and not taken:  # a worker process's prefix filter said "stored" and was wrong
            try:
                data = read_regular_file(item.entry.path)
            except (OSError, ValueError) as exc:
                item.error = f"cannot read the file ({exc})"
                return
            if sha256_bytes(data) != item.id:
                item.error = "the file changed while it was being ingested; run ingest again"
                return
            decode_into(item.loaded, data, item.entry.path, replace(self._target, gpu_share=0.0))
            item.error = item.loaded.error
            if item.error:
                self._failed.setdefault(item.id, item.error)
                return
        if item.new:
            claimed.add(item.id)

    def _embed_batch(self, batch: list[_Item]) -> tuple[list[dict[str, Any]], list[FileError]]:
        """The embed thread: GPU-decode what was left for it, embed, make rows (never raises on one bad file)."""
        t = time.perf_counter()
        errors: list[FileError] = []
        emb = self.embedder
        if self._target.spec is None:
            good = self._embed_each(batch, lambda its: emb.embed_images([it.loaded.image.image for it in its]), errors)
        else:
            ready = self._gpu_decoded(batch, errors)
            good = self._embed_each(ready, lambda its: emb.embed_pixels([it.loaded.pixels for it in its]), errors)
        rows = [_new_row(it, vec) for it, vec in good]
        for it in batch:  # free the pixels (and GPU memory) now, not when the batch list goes
            it.loaded = None
        self._embed_s += time.perf_counter() - t
        return rows, errors

    def _gpu_decoded(self, batch: list[_Item], errors: list[FileError]) -> list[_Item]:
        todo = [it for it in batch if it.loaded is not None and it.loaded.jpeg is not None]
        if todo:
            spec = self._target.spec
            assert spec is not None and self._gpu is not None
            tensors = self._gpu.decode([it.loaded.jpeg for it in todo], spec)
            for it, px in zip(todo, tensors, strict=True):
                loaded = it.loaded
                if px is None:  # nvJPEG refused it: decode on the CPU, which also says what is wrong
                    try:
                        px = decode_pixels(loaded.jpeg, it.entry.path, spec).pixels
                    except BadImageError as exc:
                        errors.append(FileError(it.entry.path, exc.reason))
                        loaded.jpeg = None
                        continue
                loaded.pixels, loaded.jpeg = px, None
        return [it for it in batch if it.loaded is not None and it.loaded.pixels is not None]

    @staticmethod
    def _embed_each(
        items: list[_Item], embed: Callable[[list[_Item]], np.ndarray], errors: list[FileError]
    ) -> list[tuple[_Item, np.ndarray]]:
        """Embed `items` in one call; when that fails, one by one, so one bad image costs only itself."""
        if not items:
            return []
        try:
            return list(zip(items, embed(items), strict=True))
        except AssetragError:
            raise
        except Exception:
            good = []
            for it in items:
                try:
                    good.append((it, embed([it])[0]))
                except AssetragError:
                    raise
                except Exception as exc:
                    errors.append(FileError(it.entry.path, f"the model could not embed it: {exc}"))
            return good

    def _write_rows(self, result: tuple[list[dict[str, Any]], list[FileError]], report: IngestReport) -> None:
        """The write thread: one upsert per batch."""
        rows, errors = result
        report.errors.extend(errors)
        self.store.upsert(rows)
        report.added += len(rows)

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
        if self._stages is not None:  # the fast pipeline: hand it to the embed and write threads
            self._stages.submit(list(batch))
            batch.clear()
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
        if self._stages is not None:  # records of this run's new bytes must be written before paths join them
            self._stages.drain()
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
    e = item.entry
    width, height = item.size
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
