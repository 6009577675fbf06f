"""The vector index: which type a library is built with, its build and search parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymilvus import MilvusClient

from assetrag.config import INDEX_CHOICES
from assetrag.errors import ConfigError
from assetrag.store.schema import BM25_PARAMS, SPARSE_FIELD


@dataclass(frozen=True)
class IndexSpec:
    """Vector index type and parameters (build and search).

    HNSW is the default on both backends: on a server it is the fast one (a few ms at 1M); on Milvus Lite
    every search also pays a Python pass over all rows (~0.5 µs/row) whatever the index, and HNSW is still
    the fastest there (FLAT is ~8x slower at 100k). IVF_PQ / DISKANN / SCANN are not offered: Lite accepts
    them but their build fails in the background and search silently falls back to brute force.
    """

    index_type: str = "HNSW"
    build: tuple[tuple[str, int], ...] = (("M", 16), ("efConstruction", 200))
    search: tuple[tuple[str, int], ...] = (("ef", 64),)

    @classmethod
    def named(cls, name: str) -> IndexSpec:
        """The spec for an `--index` choice (see `INDEX_CHOICES`)."""
        key = name.strip().lower().replace("-", "_")
        if key == "auto":
            return default_index()
        if key == "hnsw":
            return cls()
        if key == "flat":
            return cls("FLAT", (), ())
        if key == "ivf_flat":
            return cls("IVF_FLAT", (("nlist", 128),), (("nprobe", 16),))
        if key == "autoindex":
            return cls("AUTOINDEX", (), ())
        raise ConfigError(f"unknown index {name!r}; choose one of {', '.join(INDEX_CHOICES)}")

    @classmethod
    def of(cls, info: dict[str, Any]) -> IndexSpec:
        """The spec of an index an existing collection has (`Store.index_info()`); the default for {}."""
        if not info.get("index_type"):
            return default_index()
        try:
            spec = cls.named(str(info["index_type"]))
        except ConfigError:  # a type made outside assetrag: keep it, with no search parameters
            spec = cls(str(info["index_type"]).upper(), (), ())
        params = int_params(info.get("params") or {})
        return cls(spec.index_type, tuple(params), spec.search) if params else spec

    def scaled(self, rows: int) -> IndexSpec:
        """IVF's cluster count grown with the data (≈4·√rows), the probes with it; other types unchanged."""
        if not self.index_type.startswith("IVF"):
            return self
        nlist = int(min(65536, max(128, 4 * rows**0.5)))
        nprobe = max(dict(self.search).get("nprobe", 16), nlist // 64)
        return IndexSpec(self.index_type, (("nlist", nlist),), (("nprobe", nprobe),))


def default_index() -> IndexSpec:
    """HNSW (M 16, efConstruction 200, ef ≥ 64): the default on Milvus Lite and on a server alike
    (see `IndexSpec`)."""
    return IndexSpec()


def as_index_spec(index: IndexSpec | str | None) -> IndexSpec:
    """`index` as a spec: a spec, an `--index` choice, or None for the default."""
    if index is None:
        return default_index()
    return index if isinstance(index, IndexSpec) else IndexSpec.named(index)


def index_params(client: MilvusClient, spec: IndexSpec, *, fulltext: bool = False) -> Any:
    """pymilvus index parameters building `spec` on the `vector` field (cosine) and, with `fulltext`, the BM25
    index of the `text_sparse` field (schema 4 on a full-text backend)."""
    params = client.prepare_index_params()
    params.add_index(
        field_name="vector",
        index_type=spec.index_type,
        metric_type="COSINE",
        # nested "params" is the form both Lite and the server honour (see MILVUS_NOTES.md)
        params={"params": dict(spec.build)},
    )
    if fulltext:
        params.add_index(
            field_name=SPARSE_FIELD,
            index_type="SPARSE_INVERTED_INDEX",
            metric_type="BM25",
            params={"params": dict(BM25_PARAMS)},  # the nested form, as above: Lite ignores flat keys
        )
    return params


def int_params(params: dict[str, Any]) -> list[tuple[str, int]]:
    """The integer-valued entries of a describe_index `params` (build parameters)."""
    out = []
    for key, value in params.items():
        try:
            out.append((str(key), int(value)))
        except (TypeError, ValueError):
            continue
    return out
