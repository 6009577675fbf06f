"""The Milvus layer: schema, open/create, upsert, delete, search, query, stats.

Nothing else in assetrag imports pymilvus. A file path ending in `.db` opens Milvus Lite (embedded, one
process at a time); `http(s)://host:port` talks to a Milvus standalone or distributed server.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assetrag.errors import ModelMismatchError, StoreError, StoreLockedError

logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # it logs a traceback on every failed call

from pymilvus import DataType, MilvusClient, MilvusException  # noqa: E402
from pymilvus.exceptions import ConnectionConfigException  # noqa: E402

SCHEMA_VERSION = "1"
MAX_PATH = 4096
MAX_PATHS = 64  # byte-identical copies one asset remembers
MAX_TAGS = 64
MAX_TAG = 256
PROP_MODEL = "assetrag.model"
PROP_DIM = "assetrag.dim"
PROP_SCHEMA = "assetrag.schema"

#: every scalar field, in schema order (the vector is fetched only on request)
SCALAR_FIELDS = (
    "id",
    "path",
    "paths",
    "mtimes",
    "filename",
    "size",
    "mtime",
    "width",
    "height",
    "tags",
    "collection",
    "source",
    "lineage",
    "metadata",
)


@dataclass(frozen=True)
class Hit:
    """One search result straight from Milvus: primary key, cosine similarity and the requested fields."""

    id: str
    score: float
    fields: dict[str, Any]


@dataclass(frozen=True)
class IndexSpec:
    """Vector index type and parameters (build and search)."""

    index_type: str = "HNSW"
    build: tuple[tuple[str, int], ...] = (("M", 16), ("efConstruction", 200))
    search: tuple[tuple[str, int], ...] = (("ef", 64),)


def quote(value: str) -> str:
    """A Milvus filter string literal for `value` (JSON escaping is what Milvus' parser accepts)."""
    return json.dumps(value, ensure_ascii=False)


def is_server_uri(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "unix:"))


class Store:
    """One assetrag library = one Milvus collection."""

    def __init__(
        self,
        uri: str,
        collection: str,
        *,
        token: str | None = None,
        db_name: str | None = None,
        index: IndexSpec | None = None,
    ) -> None:
        self.uri = uri
        self.name = collection
        self.index = index or IndexSpec()
        self.is_server = is_server_uri(uri)
        self._loaded = False
        if not self.is_server:
            if not uri.endswith(".db"):
                raise StoreError(
                    f"store URI {uri!r} is neither a Milvus Lite path ending in '.db' nor an http(s):// "
                    "Milvus server address; use e.g. --uri ./assets.db or --uri http://127.0.0.1:19530"
                )
            parent = os.path.dirname(os.path.abspath(uri))
            os.makedirs(parent, exist_ok=True)
        kwargs: dict[str, Any] = {}
        if token:
            kwargs["token"] = token
        if db_name:
            kwargs["db_name"] = db_name
        try:
            self.client = MilvusClient(uri, **kwargs)
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
            raise StoreError(
                f"cannot reach the Milvus server at {uri}: {exc.message or exc}. "
                "Is it running, and are the address, token and database right?"
            ) from exc

    # -- collection lifecycle -------------------------------------------------------------------------

    def exists(self) -> bool:
        return bool(self._call(self.client.has_collection, self.name))

    def properties(self) -> dict[str, str]:
        """The assetrag properties stored with the collection ({} when it does not exist)."""
        if not self.exists():
            return {}
        desc = self._call(self.client.describe_collection, self.name)
        return {k: str(v) for k, v in (desc.get("properties") or {}).items()}

    def model_info(self) -> tuple[str, int] | None:
        """(model name, dim) the library was built with, or None for a library not created yet."""
        props = self.properties()
        if PROP_MODEL not in props:
            return None
        return props[PROP_MODEL], int(props.get(PROP_DIM, "0"))

    def ensure(self, model: str, dim: int) -> None:
        """Create the collection for `model`/`dim`, or check an existing one was built with the same."""
        info = self.model_info()
        if info is None:
            if self.exists():
                raise StoreError(
                    f"collection {self.name!r} at {self.uri} exists but was not created by assetrag; "
                    "pick another --library name"
                )
            self._create(model, dim)
        else:
            built_model, built_dim = info
            if built_model != model or built_dim != dim:
                raise ModelMismatchError(
                    f"library {self.name!r} at {self.uri} was built with model {built_model!r} "
                    f"(dim {built_dim}); the model now in use is {model!r} (dim {dim}). Use "
                    f"--model {built_model.split(':', 1)[-1] if built_model.startswith('clip:') else 'offline'} "
                    "or the model it was built with, or another --library name (a new library) and re-ingest"
                )
        self.load()

    def _create(self, model: str, dim: int) -> None:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("path", DataType.VARCHAR, max_length=MAX_PATH)
        schema.add_field(
            "paths", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_PATHS, max_length=MAX_PATH
        )
        schema.add_field("mtimes", DataType.ARRAY, element_type=DataType.INT64, max_capacity=MAX_PATHS)
        schema.add_field("filename", DataType.VARCHAR, max_length=1024)
        for name in ("size", "mtime", "width", "height"):
            schema.add_field(name, DataType.INT64)
        schema.add_field(
            "tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_TAGS, max_length=MAX_TAG
        )
        schema.add_field("collection", DataType.VARCHAR, max_length=256)
        schema.add_field("source", DataType.VARCHAR, max_length=32)
        schema.add_field("lineage", DataType.JSON)
        schema.add_field("metadata", DataType.JSON)
        index_params = self.client.prepare_index_params()
        index_params.add_index(
            field_name="vector",
            index_type=self.index.index_type,
            metric_type="COSINE",
            # nested "params" is the form both Lite and the server honour (see MILVUS_NOTES.md)
            params={"params": dict(self.index.build)},
        )
        self._call(
            self.client.create_collection,
            self.name,
            schema=schema,
            index_params=index_params,
            properties={PROP_MODEL: model, PROP_DIM: str(dim), PROP_SCHEMA: SCHEMA_VERSION},
        )

    def load(self) -> None:
        """Load the collection into memory (collections are released after a restart)."""
        if not self._loaded:
            self._call(self.client.load_collection, self.name)
            self._loaded = True

    def drop(self) -> None:
        if self.exists():
            self._call(self.client.drop_collection, self.name)
        self._loaded = False

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing twice or after a server went away is harmless
            pass

    # -- writes -----------------------------------------------------------------------------------

    def upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or replace whole rows (every field, vector included)."""
        if rows:
            self._call(self.client.upsert, self.name, list(rows))

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
        return [dict(r) for r in self._call(self.client.get, self.name, ids=list(ids), output_fields=list(fields))]

    def query(
        self, filter: str = "", fields: Sequence[str] = SCALAR_FIELDS, limit: int | None = None, offset: int = 0
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
        if not self.exists():
            return
        self.load()
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
                for row in batch:
                    yield dict(row)
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
        params = dict(self.index.search)
        if "ef" in params:
            params["ef"] = max(params["ef"], k + offset)
        res = self._call(
            self.client.search,
            self.name,
            data=vectors.tolist(),
            limit=k,
            offset=offset,
            filter=filter,
            output_fields=list(fields),  # without it Lite returns every field, vector included
            search_params={"metric_type": "COSINE", "params": params},
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
            "index": self.index.index_type,
        }

    # -- helpers ----------------------------------------------------------------------------------

    def _strong(self) -> dict[str, Any]:
        # read-your-writes on a server (its default is Bounded); Lite is always strong
        return {"consistency_level": "Strong"} if self.is_server else {}

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MilvusException as exc:
            msg = exc.message or str(exc)
            raise StoreError(f"Milvus ({self.uri}, library {self.name!r}) failed: {msg}") from exc
