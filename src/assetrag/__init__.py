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
from assetrag.ingest import IngestReport
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
