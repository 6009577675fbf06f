"""assetrag: find images in an asset library by meaning, and ground image generation on them."""

from assetrag.config import Settings, __version__
from assetrag.errors import (
    AssetragError,
    BadImageError,
    ConfigError,
    ModelMismatchError,
    ModelUnavailableError,
    QueryError,
    StoreError,
    StoreLockedError,
)
from assetrag.library import Library
from assetrag.search import Query, SearchHit, SearchResult

__all__ = [
    "AssetragError",
    "BadImageError",
    "ConfigError",
    "IngestReport",
    "Library",
    "ModelMismatchError",
    "ModelUnavailableError",
    "Query",
    "QueryError",
    "SearchHit",
    "SearchResult",
    "Settings",
    "StoreError",
    "StoreLockedError",
    "__version__",
]


def __getattr__(name: str) -> object:
    if name == "IngestReport":  # the ingest package loads on first use, not for every `import assetrag`
        from assetrag.ingest import IngestReport

        return IngestReport
    raise AttributeError(f"module 'assetrag' has no attribute {name!r}")
