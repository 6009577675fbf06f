"""The fast pipeline (the default on CUDA):

    files ─workers: read, sha256, decode to model input─▶ main: claim, batch ─▶ embed thread ─▶ write thread

Workers (threads, or processes with `decode_pool="process"`) decode straight to the model's input pixels when
the embedder has a pixel path (`PixelEmbedder`); an embed thread and a write thread take the batches, so
decoding, the model and the store work at once. On CUDA batches are at least `gpu_batch_size` and, when
torchvision is importable, a share of the JPEGs (`gpu_share`) is decoded on the GPU (nvJPEG) while the CPU
workers decode the rest. A killed run loses at most the few batches in flight.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from assetrag.embedding.base import pixel_spec_of
from assetrag.embedding.pixels import decode_pixels
from assetrag.errors import BadImageError
from assetrag.ingest.read import (
    KnownPrefixes,
    Loaded,
    Target,
    decode_into,
    init_process_worker,
    load_file,
    load_file_in_process,
    read_file,
    sha256_bytes,
)
from assetrag.ingest.rows import FileError, Item
from assetrag.ingest.scan import FileEntry
from assetrag.ingest.stages import RunContext, Stages

DECODE_POOLS = ("thread", "process")
GPU_DECODE = ("auto", "on", "off")


@dataclass(frozen=True)
class FastOptions:
    """The fast pipeline's knobs: `decode_pool` thread | process; on CUDA, batches of at least
    `gpu_batch_size`; `gpu_decode` auto (on CUDA when torchvision is importable) | on | off, and the share of
    GPU-decodable JPEGs decoded there (`gpu_share`)."""

    decode_pool: str = "thread"
    gpu_batch_size: int = 256
    gpu_decode: str = "auto"
    gpu_share: float = 0.6


class FastPipeline:
    """Overlapped decode → embed → write (see the module doc)."""

    name = "fast"

    def __init__(self, ctx: RunContext, options: FastOptions) -> None:
        """Loads the model (its pixel recipe tells the workers what to make) and starts the embed and write
        threads."""
        self.ctx = ctx
        self.options = options
        emb = ctx.embedder()
        spec = pixel_spec_of(emb)
        device = getattr(emb, "device", None)
        on_cuda = getattr(device, "type", None) == "cuda"
        self.batch_size = max(ctx.batch_size, options.gpu_batch_size) if on_cuda else ctx.batch_size
        self._gpu: Any = None  # GpuJpegDecoder when the GPU decodes part of the JPEGs
        wanted = options.gpu_decode == "on" or (options.gpu_decode == "auto" and on_cuda)
        if wanted and spec is not None and spec.views == "crop" and device is not None:
            from assetrag.embedding.tensors import GpuJpegDecoder

            self._gpu = GpuJpegDecoder.create(device)
        share = min(max(float(options.gpu_share), 0.0), 1.0) if self._gpu is not None else 0.0
        self._target = Target(spec=spec, max_side=ctx.max_side, gpu_share=share)
        self._stages = Stages(self._embed_batch, self._write)
        self.used: dict[str, Any] = {
            "pipeline": "fast",
            "batch": self.batch_size,
            "workers": ctx.workers,
            "decode_pool": options.decode_pool,
            "device": str(device) if device is not None else "?",
            "dtype": str(getattr(emb, "dtype", "float32")).replace("torch.", ""),
            "pixel_path": spec is not None,
            "gpu_decode": f"torchvision, share {share:g}" if self._gpu is not None else "off",
        }

    # -- the main thread: workers' output in scan order, claimed ------------------------------------

    def items(self, todo: Sequence[FileEntry]) -> Iterator[Item]:
        """The workers read, hash and decode to model input; yielded in scan order, each claimed here."""
        window = max(2 * self.ctx.batch_size, 4 * self.ctx.workers)
        process = self.options.decode_pool == "process"
        pool: Executor
        if process:
            import multiprocessing

            pool = ProcessPoolExecutor(
                max_workers=self.ctx.workers,
                mp_context=multiprocessing.get_context("spawn"),  # no fork of a process with CUDA and threads
                initializer=init_process_worker,
                initargs=(KnownPrefixes(self.ctx.claims.known),),
            )
        else:
            pool = ThreadPoolExecutor(max_workers=self.ctx.workers, thread_name_prefix="assetrag-decode")
        target = self._target
        with pool:
            pending: deque[tuple[FileEntry, Future[Loaded]]] = deque()
            for i, e in enumerate(todo):
                if process:
                    fut = pool.submit(load_file_in_process, e.path, target, i)
                else:
                    fut = pool.submit(self._load, e.path, target, i)
                pending.append((e, fut))
                if len(pending) >= window:
                    yield self._claimed(*pending.popleft())
            while pending:
                yield self._claimed(*pending.popleft())

    def _load(self, path: str, target: Target, index: int) -> Loaded:
        t = time.perf_counter()
        try:
            return load_file(path, target, index, self.ctx.claims)
        finally:
            self.ctx.times.add("read+decode", time.perf_counter() - t)

    def _claimed(self, entry: FileEntry, fut: Future[Loaded]) -> Item:
        loaded = fut.result()
        item = Item(entry, id=loaded.id, error=loaded.error, loaded=loaded)
        self._claim(item)
        return item

    def _claim(self, item: Item) -> None:
        """The in-order claim: the first new copy of some bytes is embedded, later copies (and bytes already
        stored) become path updates; bytes a worker skipped by mistake are decoded here."""
        claims = self.ctx.claims
        if item.id is None or item.loaded is None:
            return
        if item.error:
            claims.fail(item.id, item.error)  # its copies share its fate
            return
        taken = item.id in claims
        if item.new and taken:
            item.loaded = Loaded(id=item.id)  # a copy decoded twice by racing workers: keep one
        elif not item.new and not taken:  # a worker process's prefix filter said "stored" and was wrong
            data, _, error = read_file(item.entry.path)
            if error:
                item.error = error
                return
            if sha256_bytes(data) != item.id:
                item.error = "the file changed while it was being ingested; run ingest again"
                return
            decode_into(item.loaded, data, item.entry.path, replace(self._target, gpu_share=0.0))
            item.error = item.loaded.error
            if item.error:
                claims.fail(item.id, item.error)
                return
        if item.new:
            claims.take(item.id)

    # -- the embed and write threads --------------------------------------------------------------

    def submit(self, batch: list[Item]) -> None:
        """Hand `batch` to the embed thread (blocks while the queue is full)."""
        self._stages.submit(list(batch))

    def drain(self) -> None:
        """Wait until every submitted batch is written (raises the first error either thread hit)."""
        self._stages.drain()

    def close(self) -> None:
        self._stages.close()

    def _embed_batch(self, batch: list[Item]) -> tuple[list[dict[str, Any]], list[FileError]]:
        """GPU-decode what was left for it, embed, make rows (never raises on one bad file)."""
        errors: list[FileError] = []
        emb = self.ctx.embedder()
        if self._target.spec is None:
            rows = self.ctx.embed_rows(
                batch, lambda its: emb.embed_images([it.loaded.image.image for it in its]), errors
            )
        else:
            ready = self._gpu_decoded(batch, errors)
            rows = self.ctx.embed_rows(ready, lambda its: emb.embed_pixels([it.loaded.pixels for it in its]), errors)
        for it in batch:  # free the pixels (and GPU memory) now, not when the batch list goes
            it.loaded = None
        return rows, errors

    def _gpu_decoded(self, batch: list[Item], errors: list[FileError]) -> list[Item]:
        todo = [it for it in batch if it.loaded is not None and it.loaded.jpeg is not None]
        if todo:
            spec = self._target.spec
            assert spec is not None and self._gpu is not None
            with self.ctx.times.timed("gpu-decode"):
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

    def _write(self, result: tuple[list[dict[str, Any]], list[FileError]]) -> None:
        """The write thread: one upsert per batch."""
        rows, errors = result
        self.ctx.report.errors.extend(errors)
        self.ctx.write(rows)
