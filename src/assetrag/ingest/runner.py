"""The ingest runner: wires the stages and times each one (clip-retrieval's runner is the model).

    scan ─▶ known (skip unchanged) ─▶ pipeline: read+hash ─▶ decode ─▶ embed ─▶ write ─▶ path updates / prune

* unchanged files (same path, size and mtime) are skipped without being read;
* videos go through `ingest.video` (one at a time after the images: hash, keyframes, embed, one upsert each);
* a file whose bytes are already stored (moved, copied, touched) is a path update — never decoded again;
* one bad file is recorded with its reason and never stops the run;
* every batch is written as soon as it is embedded, so a killed run loses at most one batch (the fast
  pipeline: at most the few batches in flight); the next run finishes the job.
* bulk insert (`bulk`): on a Milvus server with a staging location, new rows are staged as Parquet files and
  loaded by the server's import path (`store.bulk`) — `auto` when at least `bulk_threshold` files are to be
  read, `on` always (a failure stops the run), `off` never. Only new bytes go that way (claims, moves, copies
  and prunes are the usual upserts and deletes, after the bulk rows are visible); each file is loaded all or
  nothing, and a re-run after a kill waits for the imports the killed run started before it looks at what is
  stored, so nothing is imported twice.

Pipelines (`pipeline=`): `simple` (`ingest.simple`), `fast` (`ingest.fast`), `auto` (fast when CUDA is
available and the device is not `cpu`, else simple).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from assetrag.config import BULK_CHOICES, DEFAULT_BULK_THRESHOLD, PIPELINE_CHOICES
from assetrag.decode import DEFAULT_MAX_SIDE, decode_bytes, perceptual_hash
from assetrag.embedding.base import Embedder
from assetrag.embedding.runtime import workers_beside
from assetrag.errors import ConfigError
from assetrag.ingest.fast import DECODE_POOLS, GPU_DECODE, FastOptions, FastPipeline
from assetrag.ingest.known import Claims, DeleteLimit, Known, PathUpdates, apply_updates, plan_prune
from assetrag.ingest.ray_engine import RayOptions
from assetrag.ingest.read import read_file, sha256_bytes
from assetrag.ingest.rows import FileError, IngestReport, Item, new_row
from assetrag.ingest.scan import FileEntry, scan
from assetrag.ingest.simple import SimplePipeline
from assetrag.ingest.stages import RunContext, StageTimes
from assetrag.ingest.video import VideoStage, hash_video
from assetrag.progress import ProgressSink
from assetrag.store import Store
from assetrag.store.bulk import ROWS_PER_FILE, BulkLoader, BulkStage, supported, wait_for_imports

#: where the stages run: in this process (the simple / fast pipelines) or on a Ray cluster
ENGINES = ("local", "ray")


class Pipeline(Protocol):
    """What the runner drives: items in scan order (read, hashed, claimed, decoded), batches to embed+write."""

    name: str
    batch_size: int
    used: dict[str, Any]

    def items(self, todo: Sequence[FileEntry]) -> Any: ...
    def submit(self, batch: list[Item]) -> None: ...
    def drain(self) -> None: ...
    def close(self) -> None: ...


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
        model_threads: int = 0,
        engine: str = "local",
        ray: RayOptions | None = None,
        bulk: str = "off",
        bulk_stage: BulkStage | str | None = None,
        bulk_threshold: int = DEFAULT_BULK_THRESHOLD,
        bulk_rows_per_file: int = ROWS_PER_FILE,
    ) -> None:
        """`pipeline`: simple | fast | auto (fast when CUDA is available and `device` is not cpu); the fast
        pipeline's knobs: see `FastOptions`. `model_threads`: the CPU threads the model computes with; decode
        workers are capped so that workers + model threads ≤ cores (at least one worker), so the decoders and
        the model do not fight over the cores. `engine`: local (these pipelines) | ray (`ingest.ray_engine`:
        read, decode and embed on a Ray cluster, with `ray`'s options). `bulk`: auto | on | off, with
        `bulk_stage` (a directory the server reads, or a prefix in its bucket) and `bulk_threshold` (files to
        read for auto to choose it); see the module doc."""
        if engine not in ENGINES:
            raise ConfigError(f"unknown ingest engine {engine!r}; choose one of {', '.join(ENGINES)}")
        if pipeline not in PIPELINE_CHOICES:
            raise ConfigError(f"unknown ingest pipeline {pipeline!r}; choose one of {', '.join(PIPELINE_CHOICES)}")
        if decode_pool not in DECODE_POOLS:
            raise ConfigError(f"unknown decode pool {decode_pool!r}; choose thread or process")
        if bulk not in BULK_CHOICES:
            raise ConfigError(f"unknown --bulk {bulk!r}; choose one of {', '.join(BULK_CHOICES)}")
        if gpu_decode not in GPU_DECODE:
            raise ConfigError(f"gpu_decode must be auto, on or off, got {gpu_decode!r}")
        self.store = store
        self._embedder_factory = embedder
        self._embedder: Embedder | None = None
        self.batch_size = batch_size
        self.workers = workers
        self.model_threads = model_threads
        self.max_side = max_side
        self.progress = progress
        self.pipeline = pipeline
        self.device = device
        self.engine = engine
        self.ray_options = ray or RayOptions()
        self.fast_options = FastOptions(decode_pool, gpu_batch_size, gpu_decode, gpu_share)
        self.bulk = bulk
        self.bulk_stage = BulkStage(bulk_stage) if isinstance(bulk_stage, str) else bulk_stage
        self.bulk_threshold = bulk_threshold
        self.bulk_rows_per_file = bulk_rows_per_file
        self._load_s = 0.0
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

    def _use_fast(self) -> bool:
        if self.pipeline != "auto":
            return self.pipeline == "fast"
        if (self.device or "auto").strip().lower() == "cpu":
            return False
        from assetrag.embedding.runtime import cuda_present

        return cuda_present()

    def run(
        self,
        roots: Sequence[str | Path],
        *,
        collection: str | None = None,
        tags: Sequence[str] = (),
        prune: bool = False,
        max_delete: int | str | None = None,
        force: bool = False,
        dry_run: bool = False,
        follow_symlinks: bool = False,
    ) -> IngestReport:
        """Ingest `roots`. With `prune`, stored paths gone from disk are taken off (see `known.plan_prune`: only
        under roots listed in this run, at most `max_delete` records — N or P%, default 10% — unless `force`);
        what was held back is listed in `report.refused`. `dry_run`: change nothing; report what a prune would
        take off. `follow_symlinks`: also read files whose real location is outside `roots`."""
        t0 = time.perf_counter()
        limit = DeleteLimit.parse(max_delete)
        report = IngestReport(dry_run=dry_run)
        times = StageTimes()
        with times.timed("scan"):
            entries, scan_errors, listings = scan(
                roots, collection=collection, tags=tags, follow_symlinks=follow_symlinks
            )
        report.errors.extend(FileError(e.path, e.reason) for e in scan_errors)
        report.missing_roots = [listing.path for listing in listings if not listing.listed]
        report.scanned = len(entries)
        with times.timed("known"):
            if not dry_run:
                self._recover_bulk(report)
            known = Known.load(self.store)
        todo: list[FileEntry] = []
        videos: list[FileEntry] = []
        for e in entries:
            if known.unchanged(e):
                report.unchanged += 1
            else:
                (videos if e.is_video else todo).append(e)
        seen = {e.path for e in entries}
        if dry_run:
            if prune:  # files read (not decoded) to tell a move from a deletion, as the real run would
                moved = stored_again([*todo, *videos], known.ids)
                plan = plan_prune(known, seen, listings, limit=limit, force=force, keep_ids=moved)
                report.would_prune = [p for p, _ in plan.paths]
                report.would_delete = plan.deletes
                report.refused, report.held_back = plan.refused, plan.held_back
            else:
                report.missing = len(known.gone(seen, roots))
            report.elapsed_s = time.perf_counter() - t0
            report.stages = dict(times.seconds)
            return report
        with times.timed("known"):
            known.drop_partial(self.store)  # a video a killed run left half-written is sampled again

        updates = PathUpdates()
        for e in (*todo, *videos):  # a path that now holds other bytes must leave the record that had it
            for rid in known.claims.get(e.path, ()):
                updates.remove(rid, e.path)

        claims = Claims(known.ids)
        fast = bool(todo) and self.engine == "local" and self._use_fast()
        workers = self.workers
        if self.model_threads > 0 and not fast:  # on a CPU the model's threads and the decoders share the cores
            workers = workers_beside(self.model_threads, workers)
        ctx = RunContext(
            self.store, lambda: self.embedder, report, claims, times, self.batch_size, workers, self.max_side
        )
        ctx.bulk, ctx.bulk_required = self._bulk_loader(ctx, len(todo)), self.bulk == "on"
        pipeline: Pipeline
        if self.engine == "ray" and todo:
            from assetrag.ingest.ray_engine import RayPipeline

            with times.timed("cluster start"):
                pipeline = RayPipeline(ctx, self.ray_options)
        elif fast:
            with times.timed("model load"):
                pipeline = FastPipeline(ctx, self.fast_options)
        else:
            pipeline = SimplePipeline(ctx)
        self.used = pipeline.used

        def apply(*, mid_run: bool) -> None:
            pipeline.drain()  # records of this run's new bytes are written before paths join them
            if not mid_run:  # staged rows are loaded and visible before the last path updates
                ctx.finish_bulk(self.progress)
            with times.timed("path updates"):
                apply_updates(self.store, updates, known, claims, report, mid_run=mid_run)

        if self.progress:
            self.progress.start(len(todo) + len(videos), "ingesting")
        batch: list[Item] = []
        moved: set[str] = set()  # stored records that got a path in this run (a move is not a deletion)
        try:
            for item in pipeline.items(todo):
                if self.progress:
                    self.progress.advance(1)
                if item.error:
                    report.errors.append(FileError(item.entry.path, item.error))
                    continue
                assert item.id is not None
                if not item.new:  # bytes already stored: a move, copy or touch
                    moved.add(item.id)
                    updates.add(item.id, item.entry)
                    if updates.size >= pipeline.batch_size:
                        self._submit(pipeline, batch)
                        apply(mid_run=True)
                    continue
                report.decoded += 1
                batch.append(item)
                if len(batch) >= pipeline.batch_size:
                    self._submit(pipeline, batch)
            self._submit(pipeline, batch)
            if videos:
                pipeline.drain()  # the images' batches are written; the videos use the model in this thread
                stage = VideoStage(ctx)
                for e in videos:
                    stored = stage.ingest(e, updates)
                    if stored is not None:  # its bytes are stored: a move, copy or touch
                        moved.add(stored)
                    if self.progress:
                        self.progress.advance(1)
            if prune:
                plan = plan_prune(known, seen, listings, limit=limit, force=force, keep_ids=moved)
                report.refused, report.held_back = plan.refused, plan.held_back
                for path, pid in plan.paths:
                    updates.remove(pid, path)
            else:  # a moved record's old path goes with its new one (`known._with_paths`): not missing
                report.missing = sum(1 for _, rid in known.gone(seen, roots) if rid not in moved)
            apply(mid_run=False)
            if report.added or report.updated or report.pruned:
                with times.timed("flush"):
                    self.store.flush()  # Milvus Lite: searches over unflushed rows are slow
        finally:
            pipeline.close()
            ctx.abort_bulk()
            if self.progress:
                self.progress.stop()
        report.elapsed_s = time.perf_counter() - t0
        report.model_load_s = self._load_s
        if self._load_s and "model load" not in times.seconds:  # the simple pipeline loads it before its first batch
            times.add("model load", self._load_s)
        report.embed_s = times.get("embed") + times.get("gpu-decode")
        report.stages = dict(times.seconds)
        return report

    def _bulk_loader(self, ctx: RunContext, to_read: int) -> BulkLoader | None:
        """The bulk job of this run, or None for upserts (see the module doc: `bulk`)."""
        if self.bulk == "off" or not to_read:
            return None
        if self.bulk == "auto" and (
            to_read < self.bulk_threshold or self.bulk_stage is None or not self.store.is_server
        ):
            return None
        if self.bulk_stage is None:
            raise ConfigError(
                "--bulk on needs a staging location the Milvus server reads: --bulk-stage DIR (a directory it "
                "sees at the same path) or s3://its-bucket/prefix, or ASSETRAG_BULK_STAGE"
            )
        why = supported(self.store)
        if why:
            if self.bulk == "on":
                raise ConfigError(f"--bulk on: {why}; use --bulk auto or off")
            ctx.report.notes.append(f"bulk insert not used: {why}")
            return None
        return BulkLoader(
            self.store,
            self.bulk_stage,
            rows_per_file=self.bulk_rows_per_file,
            on_failed=ctx.bulk_failed if self.bulk == "auto" else None,
        )

    def _recover_bulk(self, report: IngestReport) -> None:
        """Before looking at what is stored: imports a killed run started are waited for, and (with a stage)
        what its jobs left there is settled and deleted — else their rows could appear after this run decided
        they were missing, and be imported twice."""
        if not self.store.is_server:
            return
        waited = wait_for_imports(self.store)
        if waited:
            report.notes.append(f"waited for {waited} bulk insert(s) an earlier run started")
        if self.bulk_stage is not None and self.store.exists():  # also under --bulk off: it may follow a kill
            cleaned = BulkLoader(self.store, self.bulk_stage).recover()
            if cleaned:
                report.notes.append(f"settled {cleaned} bulk job(s) an earlier run left in {self.bulk_stage.location}")

    @staticmethod
    def _submit(pipeline: Pipeline, batch: list[Item]) -> None:
        if batch:
            pipeline.submit(batch)
            batch.clear()


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
    item = Item(
        FileEntry(path, os.path.dirname(path), st.st_size, st.st_mtime_ns, tuple(tags), collection, metadata or {}),
        id=sha256_bytes(data),
        decoded=decoded,
        phash=perceptual_hash(decoded.image),
    )
    store.ensure(embedder.name, embedder.dim)
    row = new_row(item, embedder.embed_images([decoded.image])[0])
    row["source"] = source
    row["lineage"] = lineage or {}
    store.upsert([row])
    return row["id"]


def stored_again(entries: Sequence[FileEntry], known_ids: set[str]) -> set[str]:
    """Record keys of stored bytes that these new or changed files hold again (moves and copies): each file is
    read and hashed (a video in chunks), nothing is decoded. What a dry run reads to tell a move from a
    deletion, as the real run does."""
    found: set[str] = set()
    for e in entries:
        rid = hash_video(e.path)[0] if e.is_video else read_file(e.path)[1]
        if rid in known_ids:
            found.add(rid)
    return found
