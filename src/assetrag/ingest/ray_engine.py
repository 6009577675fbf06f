"""Ingest on a Ray cluster (`assetrag ingest --engine ray [--address auto|ray://host:10001]`).

The same stages as the local pipelines, as Ray Data operators, streamed in scan order:

    driver: scan, known (skip unchanged)  ─▶  read + sha256 (CPU tasks)  ─▶  decode (CPU tasks; bytes the store
    holds are not decoded)  ─▶  embed (an actor pool, `map_batches` with a callable class: one model per
    actor, one GPU each when the cluster has GPUs)  ─▶  driver: claims, path updates, batched writes

The driver keeps every decision of the incremental rules (`ingest.known`: unchanged, claims, moves, copies,
prune) and writes to the store; Ray only reads, decodes and embeds the new bytes. A worker or actor that dies
is restarted and its task retried by Ray (`max_restarts` / `max_task_retries`), so the result is the same.
`RayPipeline` plugs into `Ingestor` like the simple and fast pipelines: same report, same progress bar.

Test hook: with `ASSETRAG_RAY_FAULT_FLAG=<file>` in the workers' environment, the first embed actor to see
no such file creates it and kills its own process (a crash mid-run, once).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assetrag.errors import ConfigError
from assetrag.ingest.read import KnownPrefixes, Loaded, read_file
from assetrag.ingest.rows import Item, new_row
from assetrag.ingest.scan import FileEntry
from assetrag.ingest.stages import RunContext

FAULT_FLAG_ENV = "ASSETRAG_RAY_FAULT_FLAG"
#: Ray restarts a dead embed actor and retries its batch this many times
RETRIES = 3


@dataclass(frozen=True)
class RayOptions:
    """`address`: None (start a local Ray, or join the one this process already runs), `auto` (the cluster
    this machine belongs to) or `ray://host:10001`; `model`: `load_embedder` keyword arguments for the actors
    (spec, runtime, torch_threads…); `actors`: embed actors (default: one a GPU, else one a 4 CPUs, ≥ 1)."""

    address: str | None = None
    model: dict[str, Any] = field(default_factory=dict)
    actors: int = 0
    max_side: int = 0


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"--engine ray needs Ray: pip install 'assetrag[ray]' ({exc})") from exc
    return ray


#: Ray waits a fixed time for a local cluster's processes (the GCS, the raylet) to start; on a busy machine that
#: can fail once and work next time
START_TRIES = 3


def start_ray(ray: Any, address: str | None = None, **kwargs: Any) -> None:
    """`ray.init(address, **kwargs)`. A local start (no address) that hits Ray's fixed start-up timeout is tried
    again, up to `START_TRIES` times; then ConfigError says what to do. Other failures propagate."""
    for attempt in range(1, START_TRIES + 1):
        try:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, **kwargs)
            return
        except Exception as exc:
            if address is not None or "timed out" not in str(exc).lower():  # the raylet's or the GCS's start
                raise
            ray.shutdown()
            if attempt == START_TRIES:
                raise ConfigError(
                    f"Ray's local cluster did not start in {START_TRIES} tries ({exc}); the machine may be busy: "
                    "try again, or start Ray once with `ray start --head` and pass --address auto"
                ) from exc


# -- the workers' side (runs in Ray tasks and actors) --------------------------------------------------


def _read_hash(row: dict[str, Any]) -> dict[str, Any]:
    data, rid, error = read_file(row["path"])
    return {"index": row["index"], "path": row["path"], "id": rid or "", "error": error or "", "data": data}


def _decode(row: dict[str, Any], known: KnownPrefixes, max_side: int) -> dict[str, Any]:
    from assetrag.decode import decode_bytes
    from assetrag.errors import BadImageError

    out = {k: row[k] for k in ("index", "id", "error")}
    out.update(rgb=b"", w=0, h=0, width=0, height=0)
    if out["error"] or out["id"] in known:  # failed, or bytes the store holds (a move, copy or touch)
        return out
    try:
        d = decode_bytes(row["data"], row["path"], max_side)
    except BadImageError as exc:
        out["error"] = exc.reason
        return out
    except Exception as exc:
        out["error"] = f"could not decode it ({type(exc).__name__}: {exc})"
        return out
    image = d.image.convert("RGB")
    out.update(rgb=image.tobytes(), w=image.width, h=image.height, width=d.width, height=d.height)
    return out


class EmbedActor:
    """One model per actor; `__call__` embeds the batch's decoded images (a batch that fails is retried image
    by image, like `stages.embed_each`)."""

    def __init__(self, model: dict[str, Any]) -> None:
        from assetrag.embedding import load_embedder

        self.embedder = load_embedder(**model)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from PIL import Image

        from assetrag.ingest.stages import embed_each

        flag = os.environ.get(FAULT_FLAG_ENV)
        if flag and not os.path.exists(flag):
            with open(flag, "w") as fh:
                fh.write(str(os.getpid()))
            os._exit(1)  # a crash mid-run: Ray restarts the actor and retries this batch
        n = len(batch["index"])
        vectors = np.zeros((n, self.embedder.dim), dtype=np.float32)
        has = np.zeros(n, dtype=bool)
        errors = [str(e) for e in batch["error"]]
        todo = [i for i in range(n) if batch["w"][i] > 0 and not errors[i]]
        images = {i: Image.frombytes("RGB", (int(batch["w"][i]), int(batch["h"][i])), batch["rgb"][i]) for i in todo}

        def failed(i: int, why: str) -> None:
            errors[i] = why

        for i, vec in embed_each(todo, lambda ii: self.embedder.embed_images([images[i] for i in ii]), failed):
            vectors[i], has[i] = vec, True
        return {
            "index": batch["index"],
            "id": batch["id"],
            "error": np.array(errors, dtype=object),
            "width": batch["width"],
            "height": batch["height"],
            "vector": vectors,
            "has_vector": has,
            "model": np.array([self.embedder.name] * n, dtype=object),
        }


# -- the driver's side ---------------------------------------------------------------------------------


class RayPipeline:
    """Read, hash, decode and embed on Ray; the driver claims, batches and writes (see the module doc)."""

    name = "ray"

    def __init__(self, ctx: RunContext, options: RayOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.batch_size = ctx.batch_size
        self.ray = _ray()
        if not self.ray.is_initialized():
            start_ray(self.ray, options.address)
        resources = self.ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 1))
        self.actors = options.actors or (self.gpus or max(1, cpus // 4))
        self._dim_checked = False
        self.used: dict[str, Any] = {
            "pipeline": "ray",
            "batch": ctx.batch_size,
            "actors": self.actors,
            "gpus": self.gpus,
            "cpus": cpus,
        }

    def _dataset(self, data: Any, todo: Sequence[FileEntry], known: KnownPrefixes, model: dict[str, Any]) -> Any:
        return (
            data.from_items([{"index": i, "path": e.path} for i, e in enumerate(todo)], override_num_blocks=None)
            .map(_read_hash, num_cpus=1)
            .map(_decode, fn_kwargs={"known": known, "max_side": self.ctx.max_side}, num_cpus=1)
            .map_batches(
                EmbedActor,
                fn_constructor_kwargs={"model": model},
                batch_size=self.batch_size,
                batch_format="numpy",
                concurrency=self.actors,
                num_gpus=1 if self.gpus else 0,
                num_cpus=0 if self.gpus else 1,
                max_restarts=RETRIES,
                max_task_retries=RETRIES,
            )
        )

    def items(self, todo: Sequence[FileEntry]) -> Iterator[Item]:
        if not todo:
            return
        data = self.ray.data
        data.DataContext.get_current().execution_options.preserve_order = True  # claims follow scan order
        data.DataContext.get_current().enable_progress_bars = False  # the runner's bar counts the files
        known = KnownPrefixes(self.ctx.claims.known)
        model = {"runtime": "auto", **self.options.model}
        with warnings.catch_warnings():
            # bounded restarts/retries have no named map_batches parameter yet (the extra-keyword form is
            # deprecated; pyproject keeps Ray below 2.64, which removes it): Ray Data's default is endless
            warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated", category=DeprecationWarning)
            ds = self._dataset(data, todo, known, model)
        claims = self.ctx.claims
        for row in ds.iter_rows():
            entry = todo[int(row["index"])]
            item = Item(entry, id=str(row["id"]) or None)
            if row["error"]:
                item.error = str(row["error"])
                if item.id:
                    claims.fail(item.id, item.error)
                yield item
                continue
            if not self._dim_checked and row["has_vector"]:
                self.ctx.store.ensure(str(row["model"]), len(row["vector"]))
                self._dim_checked = True
            if row["has_vector"] and item.id and claims.take(item.id):
                item.loaded = Loaded(id=item.id, width=int(row["width"]), height=int(row["height"]))
                item.vector = np.asarray(row["vector"], dtype=np.float32)
            elif item.id and item.id not in claims:  # the prefix filter's rare false "stored": run again
                item.error = "could not be embedded this run (a content-id prefix collision); run ingest again"
            yield item

    def submit(self, batch: list[Item]) -> None:
        """Write a batch of rows embedded on the cluster (one upsert, from the driver)."""
        self.ctx.write([new_row(it, it.vector) for it in batch])

    def drain(self) -> None:
        """Nothing in flight: `submit` writes before it returns."""

    def close(self) -> None:
        """The Ray runtime stays up (it may be the caller's); `ray.shutdown()` ends it."""
