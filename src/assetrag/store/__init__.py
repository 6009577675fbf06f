"""The Milvus layer: the only package that imports pymilvus or writes Milvus filter syntax.

`client` (the `Store`: open/create, upsert, delete, search, query, iterate, stats), `filters` (expression
builders; quoting lives there), and the schema/index facts the rest of assetrag reads.
"""

from assetrag.store import filters
from assetrag.store.client import (
    MAX_PATH,
    MAX_PATHS,
    MAX_TAG,
    MAX_TAGS,
    SCALAR_FIELDS,
    SCHEMA_VERSION,
    Hit,
    IndexSpec,
    Store,
    as_index_spec,
    default_index,
    is_server_uri,
)
from assetrag.store.filters import quote

#: Milvus' limit on k + offset of one search
MAX_K = 16384

__all__ = [
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
]
