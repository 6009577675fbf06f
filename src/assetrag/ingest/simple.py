"""The simple pipeline: worker threads read, hash and decode (long side ≤ `max_side`); the calling thread
embeds and writes each batch. The default on a CPU."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from assetrag.decode import decode_bytes, perceptual_hash
from assetrag.errors import BadImageError
from assetrag.ingest.read import read_file
from assetrag.ingest.rows import FileError, Item
from assetrag.ingest.scan import FileEntry
from assetrag.ingest.stages import RunContext


class SimplePipeline:
    """Decode in threads, embed and write in the caller's thread (a killed run loses at most one batch)."""

    name = "simple"

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.batch_size = ctx.batch_size
        self.used: dict[str, Any] = {"pipeline": "simple", "batch": ctx.batch_size, "workers": ctx.workers}

    def items(self, todo: Sequence[FileEntry]) -> Iterator[Item]:
        """Read, hash and (for new content only) decode files in worker threads, yielded in scan order."""
        window = max(2 * self.batch_size, 4 * self.ctx.workers)
        with ThreadPoolExecutor(max_workers=self.ctx.workers, thread_name_prefix="assetrag-decode") as pool:
            pending: deque[Future[Item]] = deque()
            for e in todo:
                pending.append(pool.submit(self._prepare, e))
                if len(pending) >= window:
                    yield self._claimed(pending.popleft().result())
            while pending:
                yield self._claimed(pending.popleft().result())

    def _claimed(self, item: Item) -> Item:
        """The in-order claim, as the fast pipeline's: the first new copy of some bytes in scan order is embedded
        (its path and folder lead the record), later copies become path updates — whichever worker finished
        first. A copy a racing worker decoded too is dropped here."""
        if item.id is None:
            return item
        if item.decoded is None:
            if item.error:
                self.ctx.claims.fail(item.id, item.error)  # its copies share its fate
            return item
        if not self.ctx.claims.take(item.id):
            item.decoded, item.phash = None, ""
        return item

    def _prepare(self, entry: FileEntry) -> Item:
        t = time.perf_counter()
        try:
            return self._read_and_decode(entry)
        finally:
            self.ctx.times.add("read+decode", time.perf_counter() - t)

    def _read_and_decode(self, entry: FileEntry) -> Item:
        item = Item(entry)
        data, item.id, item.error = read_file(entry.path)
        if item.id is None or item.id in self.ctx.claims:  # stored, or an earlier copy in scan order claimed it
            return item
        try:
            item.decoded = decode_bytes(data, entry.path, self.ctx.max_side)
            item.phash = perceptual_hash(item.decoded.image)
        except BadImageError as exc:
            item.error = exc.reason
        return item

    def submit(self, batch: list[Item]) -> None:
        """Embed and write `batch` now; a batch that fails to embed is retried image by image."""
        emb = self.ctx.embedder()
        errors: list[FileError] = []
        rows = self.ctx.embed_rows(batch, lambda its: emb.embed_images([it.decoded.image for it in its]), errors)
        self.ctx.report.errors.extend(errors)
        self.ctx.write(rows)

    def drain(self) -> None:
        """Nothing in flight: `submit` writes before it returns."""

    def close(self) -> None:
        """Nothing to stop."""
