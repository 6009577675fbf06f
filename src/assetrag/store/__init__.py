"""The Milvus layer: the only package that imports pymilvus or writes Milvus filter syntax.

`client` (the `Store`: connection, create/open, upsert, delete, search, query, iterate, stats), `schema`
(fields, limits, properties, `SCHEMA_VERSION`), `migrations` (numbered schema upgrades, run on open), `index`
(`IndexSpec`), `filters` (expression builders; quoting lives there), `transfer` (copy a library between
stores) and `archive` (Parquet export/import).
"""

from assetrag.config import is_server_uri
from assetrag.store import filters
from assetrag.store.client import LEXICAL_IN_PROCESS, LEXICAL_MILVUS, Hit, Store, skip_scipy_probe
from assetrag.store.filters import quote
from assetrag.store.index import IndexSpec, as_index_spec, default_index
from assetrag.store.schema import MAX_PATH, MAX_PATHS, MAX_TAG, MAX_TAGS, SCALAR_FIELDS, SCHEMA_VERSION

#: Milvus' limit on k + offset of one search
MAX_K = 16384

__all__ = [
    "LEXICAL_IN_PROCESS",
    "LEXICAL_MILVUS",
    "MAX_K",
    "MAX_PATH",
    "MAX_PATHS",
    "MAX_TAG",
    "MAX_TAGS",
    "SCALAR_FIELDS",
    "SCHEMA_VERSION",
    "Hit",
    "IndexSpec",
    "Store",
    "as_index_spec",
    "default_index",
    "filters",
    "is_server_uri",
    "quote",
    "skip_scipy_probe",
]
