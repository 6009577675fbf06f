"""The `Store`: one library's Milvus collection — connection, create/open, writes, reads, search.

Nothing else in assetrag imports pymilvus. A file path ending in `.db` opens Milvus Lite (embedded, one
process at a time); `http(s)://host:port` talks to a Milvus standalone or distributed server.

Reads on a server: counts, queries, `get` and ingest's scan of what is stored are Strong (read-your-writes
across processes, ~200-400 ms each on 2.3.5); searches are Session (this process sees its own writes, and
once they are visible a search costs ~2 ms instead of Strong's ~280 ms). Milvus Lite is always strong.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymilvus import MilvusClient, MilvusException
from pymilvus.exceptions import ConnectionConfigException

from assetrag.config import is_server_uri
from assetrag.errors import ModelMismatchError, StoreError, StoreLockedError
from assetrag.store import migrations
from assetrag.store.index import IndexSpec, as_index_spec, index_params
from assetrag.store.schema import (
    PROP_DIM,
    PROP_MODEL,
    PROP_SCHEMA,
    SCALAR_FIELDS,
    SCHEMA_VERSION,
    SPARSE_FIELD,
    build_schema,
    has_fulltext,
    properties,
    schema_version,
    supports_fulltext,
    with_defaults,
    with_text,
)

#: which lexical search a library gets (`Store.lexical`): Milvus' own BM25, or the in-process index above
LEXICAL_MILVUS = "milvus-bm25"
LEXICAL_IN_PROCESS = "in-process bm25"


def _quiet_pymilvus() -> None:
    """pymilvus logs a traceback on every failed call and a warning per Lite query iterator; we report
    errors ourselves. Its import configures its loggers, so this runs after the import."""
    for name in list(logging.root.manager.loggerDict):
        if name == "pymilvus" or name.startswith("pymilvus."):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    # Milvus Lite logs a traceback when its lock is taken; StoreLockedError says it in one line
    logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)


_quiet_pymilvus()


def skip_scipy_probe() -> None:
    """pymilvus asks, on a process's first search or write, whether the data is a scipy sparse matrix, and imports
    scipy.sparse to ask (~0.3-0.5 s of CPU: scipy pulls in numpy.f2py) — a fifth of a warm `assetrag search`.
    assetrag never hands it scipy data, so unless scipy.sparse is loaded already pymilvus is given the answer it
    has when scipy is not installed (no sparse classes). Nothing changes when its helper is not there.

    Process-wide, so only for processes assetrag owns (the CLI calls it through `library.lean_process`); a
    program that imports assetrag as a library keeps pymilvus as it is."""
    import sys

    try:
        from pymilvus.client.utils import SciPyHelper
    except ImportError:
        return
    attrs = ("_checked", "_matrix_available", "_array_available")
    if "scipy.sparse" in sys.modules or not all(hasattr(SciPyHelper, a) for a in attrs) or SciPyHelper._checked:
        return
    SciPyHelper._matrix_available = SciPyHelper._array_available = False
    SciPyHelper._checked = True


@dataclass(frozen=True)
class Hit:
    """One search result straight from Milvus: primary key, cosine similarity and the requested fields."""

    id: str
    score: float
    fields: dict[str, Any]


_lite_users: dict[str, int] = {}  # open Stores per Milvus Lite path in this process
# Milvus Lite starts one in-process server per .db and only checks for a second one after starting it: two
# threads opening the same file at once (the server's start-up load beside a request) make the loser fail on
# the file lock. Opening and releasing Lite libraries one at a time per process closes that race.
_lite_open = threading.Lock()


def _release_lite(uri: str) -> None:
    """Stop the in-process Milvus Lite server of `uri` once no Store uses it (frees the file lock)."""
    path = os.path.abspath(uri)
    with _lite_open:
        _lite_users[path] = _lite_users.get(path, 1) - 1
        if _lite_users[path] > 0:
            return
        del _lite_users[path]
        with contextlib.suppress(ImportError):
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(path)


class Store:
    """One assetrag library = one Milvus collection."""

    def __init__(
        self,
        uri: str,
        collection: str,
        *,
        token: str | None = None,
        db_name: str | None = None,
        index: IndexSpec | str | None = None,
    ) -> None:
        self.uri = uri
        self.name = collection
        self.is_server = is_server_uri(uri)
        #: the index a new collection gets (and `rebuild_index` builds); an existing one keeps its own
        self.index = as_index_spec(index)
        self._loaded = False
        self._closed = False
        self._built: dict[str, Any] | None = None  # describe_index of the existing collection
        self._model_info: tuple[str, int] | None = None
        self._upgraded = False  # schema migrations checked (once per Store)
        self._fulltext: bool | None = None  # the collection has the BM25 function (schema 4, full-text backend)
        if not self.is_server:
            if not uri.endswith(".db"):
                raise StoreError(
                    f"store URI {uri!r} is neither a Milvus Lite path ending in '.db' nor an http(s):// "
                    "Milvus server address; use e.g. --uri ./assets.db or --uri http://127.0.0.1:19530"
                )
            parent = os.path.dirname(os.path.abspath(uri))
            os.makedirs(parent, exist_ok=True)
        self.db_name = db_name
        kwargs: dict[str, Any] = {}
        if token:
            kwargs["token"] = token
        if db_name:
            kwargs["db_name"] = db_name
        try:
            if self.is_server:
                self.client = MilvusClient(uri, **kwargs)
            else:
                path = os.path.abspath(uri)
                with _lite_open:
                    self.client = MilvusClient(uri, **kwargs)
                    _lite_users[path] = _lite_users.get(path, 0) + 1
        except ConnectionConfigException as exc:
            if not self.is_server and "Open local milvus failed" in str(exc):
                raise StoreLockedError(
                    f"cannot open the Milvus Lite library {uri}: another process is using it (Milvus Lite "
                    "allows one process per .db). Stop the other assetrag command, or share the data through "
                    "a server: `milvus-lite server --data-dir DIR --host 127.0.0.1 --port 19540` and "
                    "--uri http://127.0.0.1:19540"
                ) from exc
            raise StoreError(f"cannot open Milvus at {uri}: {exc}") from exc
        except MilvusException as exc:
            tls = (
                " For TLS with a private CA, point GRPC_DEFAULT_SSL_ROOTS_FILE_PATH at the CA's PEM file."
                if uri.startswith("https://")
                else ""
            )
            raise StoreError(
                f"cannot reach the Milvus server at {uri}: {exc.message or exc}. "
                f"Is it running, and are the address, token and database right?{tls}"
            ) from exc

    # -- collection lifecycle -------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the library exists (the first call also upgrades an older schema: `migrations`)."""
        if not self._upgraded:
            self._call(
                migrations.upgrade, self.client, self.name, where=f" at {self.uri}", settle=self._wait_for_lite_indexing
            )
            self._upgraded = True
        return bool(self._call(self.client.has_collection, self.name))

    def properties(self) -> dict[str, str]:
        """The assetrag properties stored with the collection ({} when it does not exist)."""
        if not self.exists():
            return {}
        desc = self._call(self.client.describe_collection, self.name)
        return {k: str(v) for k, v in (desc.get("properties") or {}).items()}

    def model_info(self) -> tuple[str, int] | None:
        """(model name, dim) the library was built with, or None for a library not created yet.

        Remembered once found (every search asks; it costs two round trips)."""
        if self._model_info is None:
            props = self.properties()
            if PROP_MODEL not in props:
                return None
            _check_schema(props, self.name, self.uri)
            self._model_info = props[PROP_MODEL], int(props.get(PROP_DIM, "0"))
        return self._model_info

    def ensure(self, model: str, dim: int) -> None:
        """Create the collection for `model`/`dim`, or check an existing one was built with the same."""
        info = self.model_info()
        if info is None:
            if not self.exists():
                try:
                    self._create(model, dim)
                except StoreError as exc:
                    if "already exist" not in str(exc).lower():
                        raise
            # read back what is there now: ours, or one another process created between our two looks
            info = self._wait_for_model_info(3.0)
            if info is None:
                raise StoreError(
                    f"collection {self.name!r} at {self.uri} exists but was not created by assetrag; "
                    "pick another --library name"
                )
        built_model, built_dim = info
        if built_model != model or built_dim != dim:
            raise ModelMismatchError(
                f"library {self.name!r} at {self.uri} was built with model {built_model!r} "
                f"(dim {built_dim}); the model now in use is {model!r} (dim {dim}). Use the model it was "
                "built with (--model auto reopens a library with the model it was built with), or another "
                "--library name (a new library) and re-ingest",
                library=self.name,
                built_model=built_model,
                built_dim=built_dim,
                model=model,
                dim=dim,
            )
        self.load()

    def _create(self, model: str, dim: int) -> None:
        fulltext = bool(self._call(supports_fulltext, self.client))
        self._call(
            self.client.create_collection,
            self.name,
            schema=build_schema(dim, fulltext),
            index_params=index_params(self.client, self.index, fulltext=fulltext),  # built as the data arrives
            properties=properties(model, dim),
        )
        self._upgraded = True
        self._fulltext = None

    @property
    def fulltext(self) -> bool:
        """Whether the library has Milvus' full-text search: schema 4's BM25 function into `text_sparse` (a
        library created or upgraded on Milvus Lite 3.x or a server ≥ 2.5; False before it exists)."""
        if self._fulltext is None:
            if not self.exists():
                return False
            self._fulltext = has_fulltext(self._call(self.client.describe_collection, self.name))
        return self._fulltext

    def load(self) -> None:
        """Load the collection into memory (collections are released after a restart)."""
        if not self._loaded:
            try:
                self._call(self.client.load_collection, self.name)
            except StoreError as exc:
                # another process is creating this library: pymilvus creates the collection, then its index,
                # then loads it — three calls, and we came in between. Its index follows in a moment.
                if "index not found" not in str(exc) or not self._wait_for_any_index(60.0):
                    raise
                self._call(self.client.load_collection, self.name)
            self._loaded = True

    def _wait_for_model_info(self, timeout: float) -> tuple[str, int] | None:
        deadline = time.monotonic() + timeout
        while True:
            self._model_info = None
            info = self.model_info()
            if info is not None or time.monotonic() >= deadline:
                return info
            time.sleep(0.2)

    def _wait_for_any_index(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._call(self.client.list_indexes, self.name):
                return True
            time.sleep(0.2)
        return False

    def drop(self) -> None:
        """Drop the library (and any copy an interrupted schema migration left)."""
        for name in [self.name, *self._call(migrations.leftovers, self.client, self.name)]:
            if self._call(self.client.has_collection, name):
                self._call(self.client.drop_collection, name)
        self._loaded = False
        self._built = None
        self._model_info = None
        self._fulltext = None

    def flush(self) -> None:
        """Milvus Lite: write the rows still in its in-memory table out as a segment, to be indexed.

        Lite searches unflushed rows by converting each one in Python (~50 µs/row per search) and only
        flushes by itself every 128 MB (~50k rows here), so after an ingest, searches could take seconds.
        It then builds the new segments' indexes in a background thread, and searches are brute force until
        that is done; this waits for it (closing the last client waits for it anyway), so that a search right
        after an ingest in the same process — the web app's, a script's — is indexed: 50k rows, 0.7 s → 30 ms.
        A server seals and indexes segments by itself (and rate-limits flush): nothing to do there.
        """
        if not self.is_server and self.exists():
            self._call(self.client.flush, self.name)
            self._wait_for_lite_indexing(self.name)

    def _wait_for_lite_indexing(self, collection: str) -> None:
        if self.is_server:
            return
        # milvus-lite 3.x has no public call for this; without these internals, `close()` still waits
        with contextlib.suppress(ImportError, KeyError, AttributeError, TypeError, ValueError):
            from milvus_lite.server_manager import server_manager_instance

            _, lite, _ = server_manager_instance._servers[os.path.abspath(self.uri)]
            kw = {"database_name": self.db_name} if self.db_name else {}
            lite.get_collection(collection, **kw)._wait_for_bg()

    # -- the vector index -------------------------------------------------------------------------

    def index_info(self) -> dict[str, Any]:
        """The vector index the collection has: index_type, params, state ({} when there is none)."""
        if self._built is None:
            if not self.exists():
                return {}
            names = self._call(self.client.list_indexes, self.name, field_name="vector") or []
            self._built = dict(self._call(self.client.describe_index, self.name, names[0])) if names else {}
        return self._built

    def rebuild_index(self, index: IndexSpec | str | None = None, *, timeout: float = 7200.0) -> dict[str, Any]:
        """Drop the vector index and build `index` (default: the type it has now) over the stored rows.

        Blocks until the index is built. Milvus Lite builds inside the call; over a million rows that takes
        many minutes, and when the gRPC connection drops meanwhile a retry answers "index already exists"
        although the build went on and finished: a failed call counts as success once the index shows up.
        """
        if not self.exists():
            raise StoreError(f"library {self.name!r} at {self.uri} does not exist yet; ingest something first")
        rows = self.count()
        if index is None:  # the same type again, with the parameters it was built with
            current = self.index_info()
            spec = IndexSpec.of(current) if current else self.index
        else:
            spec = as_index_spec(index).scaled(rows)
        t0 = time.perf_counter()
        self._call(self.client.release_collection, self.name)
        self._loaded = False
        for name in self._call(self.client.list_indexes, self.name, field_name="vector") or []:
            self._call(self.client.drop_index, self.name, name)
        self._built = None
        try:
            self._call(self.client.create_index, self.name, index_params(self.client, spec), timeout=timeout)
        except Exception as exc:  # a StoreError, or the gRPC channel giving up on a long build
            if not self._wait_for_index(spec.index_type, timeout):
                raise StoreError(
                    f"building the {spec.index_type} index of library {self.name!r} failed: {exc}"
                ) from exc
        self.index = spec
        self._built = None
        self.load()
        return {
            "index_type": spec.index_type,
            "params": dict(spec.build),
            "rows": rows,
            "seconds": round(time.perf_counter() - t0, 2),
        }

    def _wait_for_index(self, index_type: str, timeout: float) -> bool:
        """True once the collection has a finished `index_type` index (after a failed or dropped call)."""
        deadline = time.monotonic() + min(timeout, 600.0)
        while True:
            self._built = None
            try:
                info = self.index_info()
            except StoreError:
                info = {}
            if info.get("index_type") == index_type and str(info.get("state", "Finished")) == "Finished":
                return True
            if not info or time.monotonic() > deadline:
                return False
            time.sleep(1.0)

    def _index_params(self, spec: IndexSpec) -> Any:
        return index_params(self.client, spec)

    def _search_params(self, limit: int) -> dict[str, Any]:
        """Search parameters that fit the index the collection *has* (not the one this Store would build)."""
        info = self.index_info()
        built = str(info.get("index_type") or self.index.index_type).upper()
        mine = dict(self.index.search) if built == self.index.index_type else {}
        if built == "HNSW":
            return {"ef": max(mine.get("ef", 64), limit)}
        if built.startswith("IVF"):
            nlist = int((info.get("params") or {}).get("nlist", 128))
            return {"nprobe": min(nlist, max(mine.get("nprobe", 16), nlist // 64))}
        return {}

    def close(self) -> None:
        """Close the client; the last Store on a Milvus Lite file also releases the file's lock."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # closing after a server went away is harmless
            self.client.close()
        if not self.is_server:
            _release_lite(self.uri)

    # -- writes -----------------------------------------------------------------------------------

    def upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or replace whole rows (every field, vector included; fields added by a later schema
        than the row builder knows get their defaults, `schema.DEFAULTS`; `text` is derived, `schema.with_text`)."""
        if rows:
            self._call(self.client.upsert, self.name, [with_text(with_defaults(r)) for r in rows])

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._call(self.client.delete, self.name, ids=list(ids))

    # -- reads ------------------------------------------------------------------------------------

    def count(self) -> int:
        if not self.exists():
            return 0
        self.load()
        res = self._call(self.client.query, self.name, filter="", output_fields=["count(*)"], **self._strong())
        return int(res[0]["count(*)"])

    def get(self, ids: Sequence[str], fields: Sequence[str] = SCALAR_FIELDS) -> list[dict[str, Any]]:
        if not ids:
            return []
        self.load()
        rows = self._call(self.client.get, self.name, ids=list(ids), output_fields=list(fields), **self._strong())
        return [dict(r) for r in rows]

    def query(
        self,
        filter: str = "",
        fields: Sequence[str] = SCALAR_FIELDS,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        self.load()
        kwargs: dict[str, Any] = {"filter": filter, "output_fields": list(fields), **self._strong()}
        if limit is not None:
            kwargs["limit"] = limit
            kwargs["offset"] = offset
        return [dict(r) for r in self._call(self.client.query, self.name, **kwargs)]

    def iterate(
        self, fields: Sequence[str] = SCALAR_FIELDS, filter: str = "", batch_size: int = 1000
    ) -> Iterator[dict[str, Any]]:
        """Every row matching `filter`, in batches (works past Milvus' 16,384-row query window)."""
        for batch in self.batches(fields, filter, batch_size):
            yield from batch

    def facets(self) -> dict[str, dict[str, int]]:
        """How many assets each collection, tag and source has (one pass over those fields; {} each when the
        library does not exist)."""
        colls: dict[str, int] = {}
        tags: dict[str, int] = {}
        sources: dict[str, int] = {}
        if self.exists():
            for row in self.iterate(("collection", "tags", "source")):
                colls[row["collection"]] = colls.get(row["collection"], 0) + 1
                sources[row["source"]] = sources.get(row["source"], 0) + 1
                for t in row.get("tags") or []:
                    tags[t] = tags.get(t, 0) + 1
        return {"collections": colls, "tags": tags, "sources": sources}

    def batches(
        self, fields: Sequence[str] = SCALAR_FIELDS, filter: str = "", batch_size: int = 1000
    ) -> Iterator[list[dict[str, Any]]]:
        """Every row matching `filter`, a batch at a time (pymilvus' `query_iterator`, not offset paging)."""
        if not self.exists():
            return
        self.load()
        if self.is_server:
            # pymilvus' query_iterator drops the consistency level (the server then reads Bounded, and a
            # row written a moment ago — by this process or another — is missing); a Strong read first
            # makes the server catch up with every write made before this call
            self._call(self.client.query, self.name, filter="", output_fields=["count(*)"], **self._strong())
        it = self._call(
            self.client.query_iterator,
            self.name,
            batch_size=batch_size,
            filter=filter,
            output_fields=list(fields),
            **self._strong(),
        )
        try:
            while True:
                batch = self._call(it.next)
                if not batch:
                    break
                rows = [dict(row) for row in batch]
                if "id" in rows[0]:
                    # Milvus Lite can hand out an upserted row's old and new version side by side (seen after a
                    # run was killed mid-upsert); the iterator walks ids in order, so a batch holds both: keep the
                    # last one it returned (the newer write)
                    rows = list({row["id"]: row for row in rows}.values())
                yield rows
        finally:
            it.close()

    def search(
        self,
        vectors: np.ndarray,
        k: int,
        *,
        filter: str = "",
        fields: Sequence[str] = SCALAR_FIELDS,
        offset: int = 0,
    ) -> list[list[Hit]]:
        """Top-k by cosine similarity for each query row."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors[None, :]
        info = self.model_info()
        if info is None:
            return [[] for _ in range(len(vectors))]
        if vectors.shape[1] != info[1]:  # Milvus answers a wrong dim with an empty error message
            raise ModelMismatchError(
                f"query vectors have dim {vectors.shape[1]} but library {self.name!r} holds dim {info[1]}"
            )
        self.load()
        res = self._call(
            self.client.search,
            self.name,
            data=vectors.tolist(),
            limit=k,
            offset=offset,
            filter=filter,
            output_fields=list(fields),  # without it Lite returns every field, vector included
            search_params={"metric_type": "COSINE", "params": self._search_params(k + offset)},
            **self._session(),
        )
        out: list[list[Hit]] = []
        for row in res:
            hits = []
            for h in row:
                entity = dict(h.get("entity", {}))
                pk = h.get("id", entity.get("id"))
                hits.append(Hit(id=str(pk), score=float(h["distance"]), fields=entity))
            out.append(hits)
        return out

    def text_search(self, text: str, k: int, *, filter: str = "", fields: Sequence[str] = ("id",)) -> list[Hit]:
        """Milvus' BM25 over the library's `text` (a `fulltext` library only): the top-k rows for `text` (terms
        separated by spaces, `words.query_text`) under `filter`, best first, `score` the BM25 score (> 0: only
        rows sharing a term)."""
        if not text.strip() or not self.fulltext:
            return []
        self.load()
        res = self._call(
            self.client.search,
            self.name,
            data=[text],
            anns_field=SPARSE_FIELD,
            limit=k,
            filter=filter,
            output_fields=list(fields),
            search_params={"metric_type": "BM25"},
            **self._session(),
        )
        hits = []
        for h in res[0]:
            entity = dict(h.get("entity", {}))
            pk = h.get("id", entity.get("id"))
            # Milvus Lite returns -score as the distance (smaller is better), a server the score itself
            hits.append(Hit(id=str(pk), score=abs(float(h["distance"])), fields=entity))
        return hits

    def stats(self) -> dict[str, Any]:
        info = self.model_info()
        return {
            "uri": self.uri,
            "library": self.name,
            "backend": "milvus-server" if self.is_server else "milvus-lite",
            "exists": info is not None,
            "model": info[0] if info else None,
            "dim": info[1] if info else None,
            "count": self.count() if info else 0,
            "index": (self.index_info().get("index_type") if info else None) or self.index.index_type,
            # which BM25 a hybrid search uses is search's choice (`search.lexical.lexical_path`); the store says
            # what the library has: Milvus' full-text BM25 field or not
            "fulltext": self.fulltext if info else None,
        }

    # -- helpers ----------------------------------------------------------------------------------

    def _strong(self) -> dict[str, Any]:
        # read-your-writes across processes on a server (its default is Bounded); Lite is always strong
        return {"consistency_level": "Strong"} if self.is_server else {}

    def _session(self) -> dict[str, Any]:
        # read-your-own-writes in this process: waits only until this client's last write is visible
        return {"consistency_level": "Session"} if self.is_server else {}

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MilvusException as exc:
            msg = exc.message or str(exc)
            if self.is_server and exc.code == 2:  # "Fail connecting to server": it went away
                raise StoreError(
                    f"lost the Milvus server at {self.uri} ({msg}). When it is back, run the command again: "
                    "an interrupted ingest picks up where it stopped"
                ) from exc
            raise StoreError(f"Milvus ({self.uri}, library {self.name!r}) failed: {msg}") from exc


def _check_schema(props: dict[str, str], name: str, uri: str) -> None:
    """Refuse a collection written with a newer schema than this version knows (older ones were migrated)."""
    if schema_version(props) > SCHEMA_VERSION:
        raise StoreError(
            f"library {name!r} at {uri} was written by a newer assetrag (schema {props.get(PROP_SCHEMA)}; this "
            f"version knows schema {SCHEMA_VERSION}); upgrade assetrag to open it"
        )
