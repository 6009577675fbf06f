"""Numbered schema migrations, applied by `Store` when it opens a library written with an older schema.

The version lives in the collection's properties (`assetrag.schema`); `MIGRATIONS[n]` takes a library from
schema n to n+1, and `upgrade` runs the steps in order (modelled on rclip's db.py).

Milvus Lite and the 2.3.5 server cannot add a field to an existing collection (no `add_collection_field`
before Milvus 2.6), so a step that adds fields copies: it creates `<name>__v<n+1>` with the new schema and
the old index, copies every row (vectors included, no re-embedding, defaults for the new fields) with
`query_iterator`, checks the count, marks the copy complete, drops the old collection and renames the copy.

Crash safety — what the next open finds after a kill at each point:

- while creating or filling the copy: the old collection intact, a copy without `complete` → the copy is
  dropped and the step starts over;
- after the copy is marked complete, old not yet dropped: old + complete copy → the old one is dropped
  (the copy holds every row) and the copy renamed;
- after the drop, before the rename: no library, a complete copy → renamed;
- after the rename: the library at the new schema (its leftover `assetrag.migration` property is cleared).

Schema 4's `text_sparse` field and BM25 function exist only where the backend has full-text search
(`schema.supports_fulltext`): the 3 → 4 step asks the backend and builds the copy with or without them; a
copy never carries the function's output field (Milvus fills it from `text`).

A server library may be opened by two processes at once: the copy carries a heartbeat, and another process
that finds a copy in progress with a recent heartbeat waits for it instead of starting over.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from pymilvus import CollectionSchema, DataType, MilvusClient

from assetrag.errors import StoreError
from assetrag.store import schema as S
from assetrag.store.index import IndexSpec, index_params

log = logging.getLogger("assetrag.store")
#: waits until a flushed collection is on disk for good (`upgrade`)
Settle = Callable[[str], None]

PROP_STATE = "assetrag.migration"  # on a copy: "copying" | "complete"
PROP_HEARTBEAT = "assetrag.migration.heartbeat"  # on a copy: time.time() of the last progress
COPYING, COMPLETE, DONE = "copying", "complete", "done"
#: a copy whose heartbeat is older than this was abandoned (its process died): start over
STALE_AFTER_S = 60.0
HEARTBEAT_EVERY_S = 5.0
BATCH = 1000
MAX_NAME = 255  # a Milvus server's limit on collection names

#: tests only: SIGKILL this process when it reaches the named point (e.g. "migrate.complete")
KILL_ENV = "ASSETRAG_TEST_KILL_AT"


def crash_point(label: str) -> None:
    """Die here, as a kill -9 would, when `ASSETRAG_TEST_KILL_AT` names this point (crash tests)."""
    if os.environ.get(KILL_ENV) == label:
        os.kill(os.getpid(), signal.SIGKILL)


# -- frozen schema builders: a step builds the schema of *its* target version, not whatever is current ----


def schema_v1(dim: int) -> CollectionSchema:
    """The schema 1 collection (assetrag ≤ 0.1), frozen: for migrating from it and for testing that."""
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("path", DataType.VARCHAR, max_length=4096)
    schema.add_field("paths", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=64, max_length=4096)
    schema.add_field("mtimes", DataType.ARRAY, element_type=DataType.INT64, max_capacity=64)
    schema.add_field("filename", DataType.VARCHAR, max_length=1024)
    for name in ("size", "mtime", "width", "height"):
        schema.add_field(name, DataType.INT64)
    schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=64, max_length=256)
    schema.add_field("collection", DataType.VARCHAR, max_length=256)
    schema.add_field("source", DataType.VARCHAR, max_length=32)
    schema.add_field("lineage", DataType.JSON)
    schema.add_field("metadata", DataType.JSON)
    return schema


def schema_v2(dim: int) -> CollectionSchema:
    """The schema 2 collection (schema 1 + `phash`, `media`, `time`), frozen."""
    schema = schema_v1(dim)
    schema.add_field("phash", DataType.VARCHAR, max_length=16)
    schema.add_field("media", DataType.VARCHAR, max_length=16)
    schema.add_field("time", DataType.FLOAT)
    return schema


def schema_v3(dim: int) -> CollectionSchema:
    """The schema 3 collection (schema 2 + `video_id`, `frames`), frozen."""
    schema = schema_v2(dim)
    schema.add_field("video_id", DataType.VARCHAR, max_length=64)
    schema.add_field("frames", DataType.INT64)
    return schema


#: when schema n + 1 comes: freeze a copy of `schema.build_schema` as `schema_v<n>` here and point n at it
SCHEMAS: dict[int, Callable[..., CollectionSchema]] = {1: schema_v1, 2: schema_v2, 3: schema_v3, 4: S.build_schema}
#: from this version on a schema builder takes `fulltext` (whether the backend has full-text search)
FULLTEXT_FROM = 4


def schema_at(version: int, dim: int, fulltext: bool) -> CollectionSchema:
    """The frozen schema of `version`, with the full-text fields where it has them and `fulltext` says so."""
    return SCHEMAS[version](dim, fulltext) if version >= FULLTEXT_FROM else SCHEMAS[version](dim)


def _with(row: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """`row` with the defaults of `fields` (the ones a step adds: never a later step's, which its target
    collection does not have)."""
    return {**row, **{k: S.DEFAULTS[k] for k in fields if k not in row}}


def _v1_to_v2_row(row: dict[str, Any]) -> dict[str, Any]:
    return _with(row, ("phash", "media", "time"))  # "", "image", -1.0: every schema 1 row is a still


def _migrate_1_to_2(client: MilvusClient, name: str, settle: Settle) -> None:
    """Schema 2 adds `phash`, `media` and `time` (see `schema`): a copy into the new schema."""
    _copy_step(client, name, 2, _v1_to_v2_row, settle)


def _v2_to_v3_row(row: dict[str, Any]) -> dict[str, Any]:
    return _with(row, ("video_id", "frames"))  # "", 0: no schema 2 assetrag wrote video keyframes


def _migrate_2_to_3(client: MilvusClient, name: str, settle: Settle) -> None:
    """Schema 3 adds `video_id` and `frames` (a video's keyframes, see `schema`): a copy into the new schema."""
    _copy_step(client, name, 3, _v2_to_v3_row, settle)


def _v3_to_v4_row(row: dict[str, Any]) -> dict[str, Any]:
    return S.with_text(row)  # the words of the row's names, tags, collection, captions (`assetrag.words`)


def _migrate_3_to_4(client: MilvusClient, name: str, settle: Settle) -> None:
    """Schema 4 adds `text` and, on a full-text backend, its BM25 `text_sparse` (see `schema`): a copy."""
    _copy_step(client, name, 4, _v3_to_v4_row, settle)


#: step n takes a library from schema n to n + 1
MIGRATIONS: dict[int, Callable[[MilvusClient, str, Settle], None]] = {
    1: _migrate_1_to_2,
    2: _migrate_2_to_3,
    3: _migrate_3_to_4,
}


# -- running them -------------------------------------------------------------------------------------------


def upgrade(client: MilvusClient, name: str, *, where: str = "", settle: Settle | None = None) -> int | None:
    """Bring library `name` to `schema.SCHEMA_VERSION`, finishing an interrupted step first.

    Returns the version it was at when a migration ran (None when there was nothing to do). A library
    written by a newer assetrag is left alone (`Store` refuses it). `where` names the store in log lines.
    `settle(collection)` waits until a flushed copy is on disk for good (Milvus Lite builds its segment
    indexes in a background thread: a copy marked complete before that could be half-written after a kill).
    """
    settle = settle or (lambda _collection: None)
    _finish_interrupted(client, name)
    if not client.has_collection(name):
        return None
    props = _props(client, name)
    if S.PROP_MODEL not in props:
        return None  # not an assetrag library (Store says so)
    version = S.schema_version(props)
    if props.get(PROP_STATE, DONE) != DONE:  # a finished migration's leftover marker
        _clear_state(client, name)
    if version >= S.SCHEMA_VERSION:
        return None
    start, t0 = version, time.perf_counter()
    log.warning(
        "library %r%s: upgrading schema %d → %d (copies every row into the new schema; no re-embedding) …",
        name, where, start, S.SCHEMA_VERSION,
    )  # fmt: skip
    while version < S.SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise StoreError(f"library {name!r}{where} has schema {version}, which this assetrag cannot migrate")
        step(client, name, settle)
        version = S.schema_version(_props(client, name))
    log.warning("library %r%s: now schema %d (%.1f s)", name, where, version, time.perf_counter() - t0)
    return start


def temp_name(name: str, version: int) -> str:
    """The collection a step to `version` copies into (shortened with a hash past the server's limit)."""
    suffix = f"__v{version}"
    if len(name) + len(suffix) <= MAX_NAME:
        return name + suffix
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - len(suffix) - 9]}_{digest}{suffix}"


def leftovers(client: MilvusClient, name: str) -> list[str]:
    """Copies of `name` a migration left (dropped along with the library)."""
    return [temp_name(name, v) for v in range(2, S.SCHEMA_VERSION + 1) if client.has_collection(temp_name(name, v))]


def _finish_interrupted(client: MilvusClient, name: str) -> None:
    """A kill between dropping the old collection and renaming the complete copy leaves no `name`: rename."""
    if client.has_collection(name):
        return
    for version in range(S.SCHEMA_VERSION, 1, -1):
        temp = temp_name(name, version)
        if client.has_collection(temp) and _props(client, temp).get(PROP_STATE) == COMPLETE:
            log.warning("library %r: finishing an interrupted upgrade to schema %d", name, version)
            client.rename_collection(temp, name)
            _clear_state(client, name)
            return


def _copy_step(
    client: MilvusClient,
    name: str,
    version: int,
    convert: Callable[[dict[str, Any]], dict[str, Any]],
    settle: Settle,
) -> None:
    """Copy library `name` into a new collection with schema `version` and swap it in (see the module doc)."""
    temp = temp_name(name, version)
    old = _props(client, name)
    if client.has_collection(temp):
        state = _props(client, temp)
        if state.get(PROP_STATE) == COMPLETE:
            _swap(client, name, temp)
            return
        if _fresh(state):  # another process is copying right now: wait for it
            _wait_for_other(client, name, temp, version)
            return
        client.drop_collection(temp)  # an abandoned copy: start over
    model, dim = old[S.PROP_MODEL], int(old[S.PROP_DIM])
    spec = IndexSpec.of(_index_info(client, name))
    props = {**old, **S.properties(model, dim, version), PROP_STATE: COPYING, PROP_HEARTBEAT: _now()}
    fulltext = version >= FULLTEXT_FROM and S.supports_fulltext(client)
    client.create_collection(
        temp,
        schema=schema_at(version, dim, fulltext),
        index_params=index_params(client, spec, fulltext=fulltext),
        properties=props,
    )
    crash_point("migrate.created")
    client.load_collection(name)
    # a function's output (schema 4's `text_sparse`) is neither read nor written: Milvus derives it
    fields = [f["name"] for f in client.describe_collection(name)["fields"] if not f.get("is_function_output")]
    expected = _count(client, name)  # also a Strong read: the iterator sees every write made before it
    copied, batches, beat = 0, 0, time.monotonic()
    it = client.query_iterator(name, batch_size=BATCH, filter="", output_fields=fields, consistency_level="Strong")
    try:
        while batch := it.next():
            client.upsert(temp, [convert(dict(r)) for r in batch])
            copied, batches = copied + len(batch), batches + 1
            crash_point(f"migrate.batch.{batches}")
            if time.monotonic() - beat > HEARTBEAT_EVERY_S:
                client.alter_collection_properties(temp, properties={PROP_HEARTBEAT: _now()})
                beat = time.monotonic()
    finally:
        it.close()
    client.flush(temp)
    settle(temp)  # Lite: its background index build done before the copy is marked complete
    got = _count(client, temp)
    if got != expected or copied != expected:
        raise StoreError(
            f"upgrading library {name!r} copied {got} of {expected} rows; the library is unchanged. Open it "
            "again to retry (another process writing to it meanwhile would cause this: stop it first)"
        )
    crash_point("migrate.copied")
    client.alter_collection_properties(temp, properties={PROP_STATE: COMPLETE})
    crash_point("migrate.complete")
    _swap(client, name, temp)


def _swap(client: MilvusClient, name: str, temp: str) -> None:
    """The complete copy `temp` replaces `name`."""
    if client.has_collection(name):
        client.release_collection(name)
        client.drop_collection(name)
    crash_point("migrate.dropped")
    client.rename_collection(temp, name)
    crash_point("migrate.renamed")
    _clear_state(client, name)


def _wait_for_other(client: MilvusClient, name: str, temp: str, version: int) -> None:
    """Wait while another process copies `name` into `temp`; take over (drop the copy) once it goes quiet."""
    log.warning("library %r: another process is upgrading it; waiting", name)
    while True:
        time.sleep(1.0)
        if not client.has_collection(temp):
            _finish_interrupted(client, name)
            return  # it finished (upgrade re-reads the version)
        state = _props(client, temp)
        if state.get(PROP_STATE) == COMPLETE:
            continue  # it is swapping
        if not _fresh(state):
            client.drop_collection(temp)
            return  # upgrade runs the step again


def _fresh(props: dict[str, str]) -> bool:
    try:
        return time.time() - float(props.get(PROP_HEARTBEAT, "0")) < STALE_AFTER_S
    except ValueError:
        return False


def _clear_state(client: MilvusClient, name: str) -> None:
    try:
        client.drop_collection_properties(name, property_keys=[PROP_STATE, PROP_HEARTBEAT])
    except Exception:  # Milvus 2.3.5 cannot drop properties: leave an inert marker
        if _props(client, name).get(PROP_STATE) != DONE:
            client.alter_collection_properties(name, properties={PROP_STATE: DONE, PROP_HEARTBEAT: "0"})


def _props(client: MilvusClient, name: str) -> dict[str, str]:
    desc = client.describe_collection(name)
    return {k: str(v) for k, v in (desc.get("properties") or {}).items()}


def _index_info(client: MilvusClient, name: str) -> dict[str, Any]:
    names = client.list_indexes(name, field_name="vector") or []
    return dict(client.describe_index(name, names[0])) if names else {}


def _count(client: MilvusClient, name: str) -> int:
    res = client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")
    return int(res[0]["count(*)"])


def _now() -> str:
    return f"{time.time():.3f}"


def create_at_version(
    client: MilvusClient, name: str, version: int, model: str, dim: int, spec: IndexSpec | None = None
) -> list[str]:
    """Create an empty library `name` with the frozen schema of `version` (for tests of the steps);
    returns its field names."""
    fulltext = version >= FULLTEXT_FROM and S.supports_fulltext(client)
    schema = schema_at(version, dim, fulltext)
    client.create_collection(
        name,
        schema=schema,
        index_params=index_params(client, spec or IndexSpec(), fulltext=fulltext),
        properties=S.properties(model, dim, version),
    )
    return [f.name for f in schema.fields]
