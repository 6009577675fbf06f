"""Stage machinery shared by the pipelines: per-stage timing, embedding with a per-image fallback, and the
embed/write threads the fast pipeline overlaps with decoding.

`Stages` runs the embed and write steps in two threads joined by bounded queues, so decoding, the model and
the store all work at once; the first failure in either thread is kept and raised in the caller's thread on
its next call, and nothing blocks forever.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from assetrag.embedding.base import Embedder
from assetrag.errors import AssetragError
from assetrag.ingest.known import Claims
from assetrag.ingest.rows import FileError, IngestReport, Item, new_row
from assetrag.progress import ProgressSink
from assetrag.store import Store
from assetrag.store.bulk import BulkError, BulkLoader

T = TypeVar("T")


@dataclass
class RunContext:
    """What a pipeline works with during one run (the runner makes it)."""

    store: Store
    embedder: Callable[[], Embedder]  # loads the model on first call
    report: IngestReport
    claims: Claims
    times: StageTimes
    batch_size: int
    workers: int
    max_side: int
    #: the bulk job new rows go to instead of upserts (`runner`'s --bulk); None: upserts
    bulk: BulkLoader | None = None
    #: --bulk on: a bulk insert that cannot be done stops the run (auto: the rows are upserted instead)
    bulk_required: bool = False
    _bulk_checked: bool = False

    def write(self, rows: list[dict[str, Any]]) -> None:
        """A batch of new rows: one upsert (timed as "write"), or staged for the bulk job ("bulk stage")."""
        if rows and self._bulk_ready():
            assert self.bulk is not None
            with self.times.timed("bulk stage"):
                self.bulk.add(rows)
        else:
            self._upsert(rows)
        self.report.added += len(rows)

    def _upsert(self, rows: list[dict[str, Any]]) -> None:
        with self.times.timed("write"):
            self.store.upsert(rows)

    def _bulk_ready(self) -> bool:
        """Whether the bulk job takes rows; the first call checks that the server can load from the stage
        (here, not before the run: the collection exists only once the first row is embedded)."""
        if self.bulk is None:
            return False
        if not self._bulk_checked:
            self._bulk_checked = True
            try:
                with self.times.timed("bulk stage"):
                    self.bulk.check()
            except BulkError as exc:
                if self.bulk_required:
                    raise
                self.report.notes.append(f"bulk insert not used: {exc}")
                self.bulk = None
                return False
        return True

    def bulk_failed(self, rows: list[dict[str, Any]], why: str) -> None:
        """`BulkLoader`'s `on_failed` (--bulk auto): the rows of a file the server did not load are upserted."""
        self.report.notes.append(f"bulk insert of {len(rows)} rows failed ({why}); they were upserted instead")
        self._upsert(rows)

    def finish_bulk(self, progress: ProgressSink | None = None) -> None:
        """Load what is staged and wait until it is visible (before path updates may join those records)."""
        if self.bulk is None or not self._bulk_checked:
            return
        with self.times.timed("bulk insert"):
            self.report.bulk_rows += self.bulk.finish(progress)
        self.bulk = None

    def abort_bulk(self) -> None:
        if self.bulk is not None:
            self.bulk.abort()

    def embed_rows(
        self, items: list[Item], embed: Callable[[list[Item]], np.ndarray], errors: list[FileError]
    ) -> list[dict[str, Any]]:
        """The rows of `items` embedded by `embed` (timed as "embed"); images that fail go to `errors`."""
        with self.times.timed("embed"):
            good = embed_each(items, embed, lambda it, why: errors.append(FileError(it.entry.path, why)))
            return [new_row(it, vec) for it, vec in good]


class StageTimes:
    """Seconds spent per stage, summed over threads (so a stage run by 2 workers can exceed the wall time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t)

    def get(self, stage: str) -> float:
        return self.seconds.get(stage, 0.0)


def embed_each(
    items: list[T], embed: Callable[[list[T]], np.ndarray], failed: Callable[[T, str], None]
) -> list[tuple[T, np.ndarray]]:
    """Embed `items` in one call; when that fails, one by one, so one bad image costs only itself (`failed`
    hears which and why). A user-facing `AssetragError` (e.g. the model cannot load) ends the run."""
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
                failed(it, f"the model could not embed it: {exc}")
        return good


_STOP = object()


class Stages:
    """Two threads — `embed(batch) -> result`, then `write(result)` — joined by queues of `depth` batches.

    `submit` hands a batch over (blocking while the queue is full); `drain` waits until every submitted batch
    is written; both raise the first error either thread hit (later batches are then dropped, never
    written). `close` stops the threads, dropping what has not been written yet.
    """

    def __init__(self, embed: Callable[[Any], Any], write: Callable[[Any], None], *, depth: int = 1) -> None:
        self._embed, self._write = embed, write
        self._to_embed: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._to_write: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._cond = threading.Condition()
        self._pending = 0
        self._error: BaseException | None = None
        self._dropping = False
        self._threads = [
            threading.Thread(target=self._run_embed, name="assetrag-embed", daemon=True),
            threading.Thread(target=self._run_write, name="assetrag-write", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def submit(self, batch: Any) -> None:
        self._check()
        with self._cond:
            self._pending += 1
        self._to_embed.put(batch)

    def drain(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._pending == 0)
        self._check()

    def close(self) -> None:
        self._dropping = True
        self._to_embed.put(_STOP)
        for t in self._threads:
            t.join()

    @property
    def error(self) -> BaseException | None:
        return self._error

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def _done(self) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = exc

    def _run_embed(self) -> None:
        while True:
            batch = self._to_embed.get()
            if batch is _STOP:
                self._to_write.put(_STOP)
                return
            if self._error is not None or self._dropping:
                self._done()
                continue
            try:
                result = self._embed(batch)
            except BaseException as exc:  # kept, and raised in the caller's thread
                self._fail(exc)
                self._done()
                continue
            self._to_write.put(result)

    def _run_write(self) -> None:
        while True:
            result = self._to_write.get()
            if result is _STOP:
                return
            try:
                if self._error is None and not self._dropping:
                    self._write(result)
            except BaseException as exc:
                self._fail(exc)
            finally:
                self._done()
