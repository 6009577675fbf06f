"""Bulk insert: new rows staged as Parquet files where the Milvus server can read them, then loaded by the
server's import path (`Import` / pymilvus `do_bulk_insert`) instead of row upserts — for the first import of
a large archive.

Which servers (`supported`): Milvus servers ≥ 2.3 (the schema's ARRAY fields need ≥ 2.3.2; Parquet import with
ARRAY and JSON fields was measured on 2.3.5). Milvus Lite has no import at all (milvus-lite 3.2.2 serves no
`Import` call): upserts there. Milvus 2.2 lacks ARRAY fields, so an assetrag library cannot live there anyway.

Where the files go (`BulkStage`):

* a directory, e.g. `/srv/milvus-bulk`: a standalone on local storage (`common.storageType: local`, as the
  PyPI `milvus` package and the tests run it) opens the path it is given as is — any absolute path *the
  server* can read, inside or outside its `localStorage.path` (measured on 2.3.5). When the server sees the
  directory under another name (a container's volume), `server_path` is that name.
* an object-storage URL, e.g. `s3://milvus-bucket/assetrag-bulk`: a server on MinIO/S3 reads keys of its own
  bucket (`minio.bucketName`), so the stage must be in that bucket; the path sent is the key
  (`assetrag-bulk/<job>/00000.parquet`), or `server_path` + the rest when the server names it otherwise.

A job (`BulkLoader`): rows → Parquet files of `rows_per_file` rows, written in the order of the collection's
own field list (read from the server, so fields added by later schemas follow) → one import task per file →
wait with progress → every staged id is visible to a Strong read → the files are deleted.

Safety. The server does not deduplicate primary keys on import (a second import of an id stores it twice), so
only ids not stored may be bulk-loaded — ingest guarantees that (it bulk-loads only bytes it has never stored).
Each task is all or nothing: its rows become visible only once it completed (a failed task is cleaned by the
server), so a client killed mid-job leaves whole files loaded or not loaded, never half a file. What a killed
client leaves is recovered by the next job on that collection (`recover`): each job keeps a manifest
(`job.json`: its files and task ids) beside its files; the next one waits for those tasks, waits until their
ids are visible (a task completes some seconds before its rows are searchable — the window in which a re-run
would otherwise see them missing and import them twice), then deletes them. Tasks still running on the
server are waited for too (`wait_for_imports`), even with no stage configured.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pymilvus import DataType, MilvusException

from assetrag import objects
from assetrag.errors import StoreError
from assetrag.store import filters as F
from assetrag.store.client import Store
from assetrag.store.schema import with_defaults, with_text

#: rows in one staged file (one import task): ~50k × (2 KiB vector + ~300 B of fields) ≈ 120 MB of Parquet
ROWS_PER_FILE = 50_000
#: ids per visibility query (`id in [...]`, ~70 characters each)
IDS_PER_QUERY = 5_000
MANIFEST = "job.json"
#: the first server version whose import takes the schema's fields from Parquet
MIN_VERSION = (2, 3, 0)
#: import task states (milvus.proto.common.ImportState)
_PENDING, _FAILED, _STARTED, _PERSISTED, _COMPLETED, _FAILED_AND_CLEANED = 0, 1, 2, 5, 6, 7
_RUNNING = {_PENDING, _STARTED, _PERSISTED}
_FAILED_STATES = {_FAILED, _FAILED_AND_CLEANED}


class BulkError(StoreError):
    """A bulk insert cannot be done here, or the server refused or failed one (the message says what to do)."""


def supported(store: Store) -> str | None:
    """None when `store` can bulk-insert, else why not (one sentence)."""
    if not store.is_server:
        return "Milvus Lite has no bulk insert (milvus-lite serves no Import call); rows are upserted"
    try:
        version = store.client.get_server_version()
    except Exception as exc:  # an old server without GetVersion, or a dropped connection
        return f"the server did not say its version ({exc})"
    parsed = parse_version(str(version))
    if parsed is None or parsed < MIN_VERSION:
        return f"Milvus {version} is older than 2.3: no Parquet bulk insert of ARRAY fields"
    return None


def parse_version(text: str) -> tuple[int, int, int] | None:
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


@dataclass(frozen=True)
class BulkStage:
    """Where staged files are written (`location`: a directory or an object-storage URL) and what the server
    calls that place (`server_path`; default: the directory's absolute path, or the URL's key in its bucket)."""

    location: str
    server_path: str | None = None

    def __post_init__(self) -> None:
        if not self.location:
            raise BulkError("no bulk staging location: set --bulk-stage DIR|s3://bucket/prefix or ASSETRAG_BULK_STAGE")
        loc = self.location.rstrip("/")
        object.__setattr__(self, "location", loc if self.is_url else os.path.abspath(loc))

    @property
    def is_url(self) -> bool:
        return objects.is_url(self.location)

    def path(self, *parts: str) -> str:
        """Where this client writes `parts` (a local path or a URL)."""
        return "/".join([self.location, *parts])

    def server_name(self, *parts: str) -> str:
        """The path the server is given for `parts`."""
        if self.server_path:
            base = self.server_path.rstrip("/")
        elif self.is_url:
            base = self.location.split("://", 1)[1].partition("/")[2]  # the key, without the bucket
        else:
            base = self.location
        return "/".join([p for p in (base, *parts) if p])

    # -- file operations (local or object storage) -----------------------------------------------------

    def write_bytes(self, data: bytes, *parts: str) -> None:
        target = self.path(*parts)
        if self.is_url:
            with objects.filesystem(target).open(_bare(target), "wb") as fh:
                fh.write(data)
            return
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.part"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)

    def read_bytes(self, *parts: str) -> bytes:
        target = self.path(*parts)
        if self.is_url:
            with objects.filesystem(target).open(_bare(target), "rb") as fh:
                return bytes(fh.read())
        with open(target, "rb") as fh:
            return fh.read()

    def jobs(self, prefix: str) -> list[str]:
        """Names of the job folders here that start with `prefix`."""
        if self.is_url:
            fs = objects.filesystem(self.location)
            try:
                names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(_bare(self.location), detail=False)]
            except FileNotFoundError:
                return []
        else:
            names = os.listdir(self.location) if os.path.isdir(self.location) else []
        return sorted(n for n in names if n.startswith(prefix))

    def remove(self, *parts: str) -> None:
        target = self.path(*parts)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            if self.is_url:
                objects.filesystem(target).rm(_bare(target), recursive=True)
            elif os.path.isdir(target):
                shutil.rmtree(target)
            else:
                os.remove(target)


def _bare(url: str) -> str:
    return url.split("://", 1)[1]


@dataclass
class _Task:
    name: str  # the file's name in the job folder
    rows: int
    ids: list[str]
    task_id: int | None = None
    held: list[dict[str, Any]] = field(default_factory=list)  # its rows, while it may still fail


class BulkLoader:
    """One bulk job into `store`'s collection: `check()`, `add(rows)` as they come, `finish()` (see the module
    doc). `on_failed(rows, why)`: where the rows of a file the server could not load go (ingest upserts them);
    None: a failure raises `BulkError`."""

    def __init__(
        self,
        store: Store,
        stage: BulkStage,
        *,
        rows_per_file: int = ROWS_PER_FILE,
        progress: Any = None,
        on_failed: Callable[[list[dict[str, Any]], str], None] | None = None,
        timeout: float = 3600.0,
        poll: float = 0.5,
    ) -> None:
        self.store = store
        self.stage = stage
        self.rows_per_file = max(1, rows_per_file)
        self.progress = progress
        self.on_failed = on_failed
        self.timeout = timeout
        self.poll = poll
        self.job = f"{_safe(store.name)}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self._buffer: list[dict[str, Any]] = []
        self._tasks: list[_Task] = []
        self._fields: list[dict[str, Any]] | None = None
        self._schema: pa.Schema | None = None
        #: what the job did: rows loaded, rows handed to `on_failed`, seconds waiting for import tasks and then
        #: for their rows to be visible
        self.loaded = 0
        self.failed = 0
        self.wait_s = 0.0
        self.visible_s = 0.0

    # -- set-up ------------------------------------------------------------------------------------

    def check(self) -> None:
        """Raise `BulkError` (saying what to do) unless the server supports bulk insert, the stage is writable
        and the server can read a file staged there (a zero-row probe import, ~1-3 s)."""
        why = supported(self.store)
        if why:
            raise BulkError(f"bulk insert is not available: {why}. Use --bulk off")
        try:
            self.stage.write_bytes(b"", self.job, "probe")
            self.stage.remove(self.job, "probe")
        except Exception as exc:
            raise BulkError(
                f"cannot write to the bulk staging location {self.stage.location} ({exc}); fix --bulk-stage / "
                "ASSETRAG_BULK_STAGE (a directory the Milvus server can read, or a prefix in its bucket) or use "
                "--bulk off"
            ) from exc
        name = "probe.parquet"
        self.stage.write_bytes(self._parquet([]), self.job, name)
        try:
            task = self._submit(name)
            state = self._wait(task, "probe")
        finally:
            self.stage.remove(self.job)
        if state.state in _FAILED_STATES:
            raise BulkError(
                f"the Milvus server at {self.store.uri} cannot load files staged in {self.stage.location} "
                f"(it was given {self.stage.server_name(self.job, name)!r} and said: {_reason(state)}). The "
                "staging location must be one the server reads: a directory it sees at the same path (or set "
                "ASSETRAG_BULK_SERVER_PATH to its name there), or a prefix in its own MinIO/S3 bucket; or use "
                "--bulk off"
            )

    def recover(self) -> int:
        """Finish what killed jobs on this collection left in the stage: wait for their tasks, wait until their
        rows are visible, delete their files. Returns how many jobs were cleaned up."""
        done = 0
        for job in self.stage.jobs(f"{_safe(self.store.name)}-"):
            if job == self.job:
                continue
            try:
                manifest = json.loads(self.stage.read_bytes(job, MANIFEST))
            except Exception:  # no manifest: killed before its first import; its files were never loaded
                manifest = {"tasks": []}
            if manifest.get("collection", self.store.name) != self.store.name:
                continue
            for entry in manifest.get("tasks", []):
                task = _Task(entry["name"], int(entry["rows"]), [], int(entry["task"]))
                state = self._wait(task, "an earlier bulk job")
                if state.state not in _FAILED_STATES:
                    with contextlib.suppress(Exception):
                        table = pq.read_table(pa.BufferReader(self.stage.read_bytes(job, task.name)), columns=["id"])
                        task.ids = [str(x) for x in table.column("id").to_pylist()]
                        self._visible([task])
            self.stage.remove(job)
            done += 1
        return done

    # -- the job -----------------------------------------------------------------------------------

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        """Stage `rows` (new ids only); a full file is written and its import started."""
        self._buffer.extend(rows)
        while len(self._buffer) >= self.rows_per_file:
            chunk, self._buffer = self._buffer[: self.rows_per_file], self._buffer[self.rows_per_file :]
            self._ship(chunk)

    def finish(self, progress: Any = None) -> int:
        """Stage what is left, wait for every task, check every staged id is visible, delete the files.
        Returns the rows loaded by bulk insert (rows of failed files went to `on_failed`). `progress` (a
        `ProgressSink`) hears the rows of the files still loading."""
        if progress is not None:
            waiting = len(self._buffer) + sum(t.rows for t in self._tasks if t.held)
            progress.start(waiting, "bulk insert")
            self.progress = progress
        if self._buffer:
            chunk, self._buffer = self._buffer, []
            self._ship(chunk)
        pending = [t for t in self._tasks if t.held]
        for task in pending:
            self._settle(task)
        loaded = [t for t in self._tasks if t.task_id is not None and t.ids]
        self._visible(loaded)
        self.stage.remove(self.job)
        return self.loaded

    def abort(self) -> None:
        """Delete the files not handed to the server (a started import runs on; `recover` deals with it)."""
        if not any(t.task_id is not None for t in self._tasks):
            with contextlib.suppress(Exception):  # on the way out of a failed run: never hide its error
                self.stage.remove(self.job)

    def _ship(self, rows: list[dict[str, Any]]) -> None:
        # at most one file in flight besides this one: memory stays bounded and a failure is seen early
        for task in self._tasks:
            if task.held:
                self._settle(task)
        task = _Task(f"{len(self._tasks):05d}.parquet", len(rows), [str(r["id"]) for r in rows], held=rows)
        self._tasks.append(task)
        try:
            data = self._parquet(rows)
        except BulkError as exc:  # a row an upsert would refuse too: `on_failed` hears Milvus' own words
            self._failed(task, str(exc))
            return
        try:
            self.stage.write_bytes(data, self.job, task.name)
        except Exception as exc:
            self._failed(task, f"staging {self.stage.path(self.job, task.name)} failed: {exc}")
            return
        try:
            task.task_id = self._submit(task.name)
        except BulkError as exc:
            self._failed(task, str(exc))
            return
        self._write_manifest()

    def _settle(self, task: _Task) -> None:
        state = self._wait(task, f"bulk insert {task.name}")
        if state.state in _FAILED_STATES:
            self._failed(task, f"the server failed the import: {_reason(state)}")
            return
        if int(state.row_count) != task.rows:
            raise BulkError(
                f"bulk insert of {task.name} loaded {state.row_count} rows, {task.rows} were staged; run the "
                "ingest again with --bulk off to repair it"
            )
        self.loaded += task.rows
        task.held = []

    def _failed(self, task: _Task, why: str) -> None:
        rows, task.held, task.ids = task.held, [], []
        if self.on_failed is None:
            raise BulkError(
                f"bulk insert of {len(rows)} rows failed ({why}); nothing of that file was stored. Run the "
                "same ingest again (it picks up the missing files), with --bulk off to use upserts"
            )
        self.failed += len(rows)
        self.on_failed(rows, why)

    # -- server calls ------------------------------------------------------------------------------

    def _submit(self, name: str) -> int:
        path = self.stage.server_name(self.job, name)
        try:
            return int(self.store.client._get_connection().do_bulk_insert(self.store.name, "", [path]))
        except MilvusException as exc:
            raise BulkError(
                f"the Milvus server at {self.store.uri} refused the bulk insert of {path}: {exc.message or exc}"
            ) from exc

    def _wait(self, task: _Task | int, what: str) -> Any:
        task_id = task if isinstance(task, int) else task.task_id
        assert task_id is not None
        conn = self.store.client._get_connection()
        deadline = time.monotonic() + self.timeout
        t0 = time.perf_counter()
        shown = 0
        try:
            while True:
                try:
                    state = conn.get_bulk_insert_state(task_id)
                except MilvusException as exc:
                    raise BulkError(
                        f"the Milvus server at {self.store.uri} did not say how {what} (task {task_id}) fares: "
                        f"{exc.message or exc}. Run the ingest again: it waits for the task first"
                    ) from exc
                if self.progress is not None and not isinstance(task, int):
                    pct = int(dict(state.infos).get("progress_percent", "0") or 0)
                    step = task.rows * pct // 100 - shown
                    if step > 0:
                        self.progress.advance(step)
                        shown += step
                if state.state not in _RUNNING:
                    return state
                if time.monotonic() > deadline:
                    raise BulkError(
                        f"{what} (task {task_id}) did not finish in {self.timeout:.0f} s; it may still be running "
                        "on the server: run the ingest again later (it waits for it)"
                    )
                time.sleep(self.poll)
        finally:
            self.wait_s += time.perf_counter() - t0

    def _visible(self, tasks: Sequence[_Task]) -> None:
        """Wait until every id of `tasks` is visible to a Strong read (a completed task's segments are loaded
        by the query nodes some seconds later); raise if some never show up."""
        ids = [i for t in tasks for i in t.ids]
        if not ids:
            return
        t0 = time.perf_counter()
        # ask the query nodes to load the new segments now (measured on 2.3.5: visible after ~4.5 s instead
        # of the ~13-15 s its periodic target update takes); a server that refuses it just takes longer
        with contextlib.suppress(StoreError):
            self.store._call(self.store.client.load_collection, self.store.name, _refresh=True)
        deadline = time.monotonic() + min(self.timeout, 120.0 + len(ids) / 2000)
        chunks = [ids[i : i + IDS_PER_QUERY] for i in range(0, len(ids), IDS_PER_QUERY)]
        try:
            while chunks:
                chunks = [c for c in chunks if self._count(c) < len(c)]
                if not chunks:
                    return
                if time.monotonic() > deadline:
                    missing = sum(len(c) for c in chunks)
                    raise BulkError(
                        f"bulk insert completed but up to {missing} of its {len(ids)} rows are not visible "
                        f"after {time.perf_counter() - t0:.0f} s; run the ingest again (it re-adds what is "
                        "missing once the server has caught up)"
                    )
                time.sleep(max(self.poll, 0.5))
        finally:
            self.visible_s += time.perf_counter() - t0

    def _count(self, ids: list[str]) -> int:
        res = self.store._call(
            self.store.client.query,
            self.store.name,
            filter=F.one_of("id", ids),
            output_fields=["count(*)"],
            **self.store._strong(),
        )
        return int(res[0]["count(*)"])

    def _write_manifest(self) -> None:
        manifest = {
            "collection": self.store.name,
            "uri": self.store.uri,
            "tasks": [{"name": t.name, "rows": t.rows, "task": t.task_id} for t in self._tasks if t.task_id],
        }
        self.stage.write_bytes(json.dumps(manifest).encode(), self.job, MANIFEST)

    # -- Parquet -----------------------------------------------------------------------------------

    def fields(self) -> list[dict[str, Any]]:
        """The collection's fields as the server describes them (function outputs, e.g. BM25's sparse
        vector, are computed by the server and left out)."""
        if self._fields is None:
            desc = self.store._call(self.store.client.describe_collection, self.store.name)
            self._fields = [
                f
                for f in desc["fields"]
                if not f.get("is_function_output") and not f.get("auto_id") and f["name"] != "$meta"
            ]
        return self._fields

    def arrow_schema(self) -> pa.Schema:
        if self._schema is None:
            self._schema = pa.schema([pa.field(f["name"], _arrow_type(f)) for f in self.fields()])
        return self._schema

    def _parquet(self, rows: list[dict[str, Any]]) -> bytes:
        schema = self.arrow_schema()
        rows = [with_text(with_defaults(r)) for r in rows]  # `text` derived as every write derives it
        columns = []
        for f, af in zip(self.fields(), schema, strict=True):
            name = f["name"]
            try:
                values = [r[name] for r in rows]
            except KeyError as exc:
                raise BulkError(f"a row lacks the field {name!r} of library {self.store.name!r}") from exc
            _check(f, values)
            if f["type"] == DataType.JSON:
                values = [json.dumps(v, ensure_ascii=False) for v in values]
            if f["type"] == DataType.FLOAT_VECTOR and values:  # one numpy copy, not 512 Python floats a row
                flat = np.asarray(values, dtype=np.float32)
                offsets = np.arange(0, flat.size + 1, flat.shape[1], dtype=np.int32)
                columns.append(pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat.reshape(-1))))
                continue
            columns.append(pa.array(values, type=af.type))
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_arrays(columns, schema=schema), sink, row_group_size=8192)
        return sink.getvalue().to_pybytes()


def wait_for_imports(store: Store, timeout: float = 3600.0) -> int:
    """Wait for import tasks still running on `store`'s collection (one a killed run started): their rows
    would appear after this run decided they are missing. Returns how many were waited for."""
    if not store.is_server or not store.exists():
        return 0
    try:
        conn = store.client._get_connection()
        tasks = conn.list_bulk_insert_tasks(0, store.name)
    except Exception:  # a server without the call: nothing can be running
        return 0
    running = [t.task_id for t in tasks if t.state in _RUNNING]
    deadline = time.monotonic() + timeout
    for task_id in running:
        while conn.get_bulk_insert_state(task_id).state in _RUNNING:
            if time.monotonic() > deadline:
                raise BulkError(
                    f"an import into library {store.name!r} (task {task_id}) is still running after "
                    f"{timeout:.0f} s; wait for it, then run the ingest again"
                )
            time.sleep(1.0)
    return len(running)


_ARROW = {
    DataType.BOOL: pa.bool_(),
    DataType.INT8: pa.int8(),
    DataType.INT16: pa.int16(),
    DataType.INT32: pa.int32(),
    DataType.INT64: pa.int64(),
    DataType.FLOAT: pa.float32(),
    DataType.DOUBLE: pa.float64(),
    DataType.VARCHAR: pa.string(),
    DataType.JSON: pa.string(),  # Milvus reads JSON fields from Parquet as JSON text
    DataType.FLOAT_VECTOR: pa.list_(pa.float32()),
}


def _arrow_type(f: dict[str, Any]) -> pa.DataType:
    if f["type"] == DataType.ARRAY:
        inner = _ARROW.get(f.get("element_type"))  # type: ignore[arg-type]
        if inner is not None and f.get("element_type") != DataType.JSON:
            return pa.list_(inner)
    elif f["type"] in _ARROW:
        return _ARROW[f["type"]]
    raise BulkError(
        f"field {f['name']!r} has a type bulk insert is not written for here ({f['type']!r}); use --bulk off"
    )


def _check(f: dict[str, Any], values: list[Any]) -> None:
    """What an upsert would refuse and the 2.3 importer lets through: over-long strings and arrays."""
    params = f.get("params") or {}
    limit, capacity = params.get("max_length"), params.get("max_capacity")
    is_text = f["type"] == DataType.VARCHAR
    text_items = f["type"] == DataType.ARRAY and f.get("element_type") == DataType.VARCHAR
    for v in values:
        if capacity is not None and len(v) > int(capacity):
            raise BulkError(f"a value of field {f['name']!r} has {len(v)} items, over its capacity {capacity}")
        items = [v] if is_text else v if text_items else ()
        for s in items:
            if limit is not None and len(s.encode()) > int(limit):
                raise BulkError(f"a value of field {f['name']!r} is over its maximum length {limit}: {s[:80]!r}…")


def _reason(state: Any) -> str:
    return str(getattr(state, "failed_reason", "") or dict(state.infos).get("failed_reason", "") or "no reason given")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)
