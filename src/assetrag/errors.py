"""Errors a user can cause, each with a message that says what to do."""

from __future__ import annotations


class AssetragError(Exception):
    """Base class: every user-facing failure of assetrag derives from it."""


class ConfigError(AssetragError):
    """A setting (CLI flag, environment variable) has a value assetrag cannot use."""


class ModelUnavailableError(AssetragError):
    """The requested embedding model cannot be loaded (weights missing, package missing)."""


class ModelMismatchError(AssetragError):
    """A library was built with another embedding model or dimension than the one now in use.

    `built_model`/`built_dim`: what the library was built with; `model`/`dim`: what was offered (None where
    unknown), so that a caller can add its own hint (e.g. the `--model` spec that loads `built_model`).
    """

    def __init__(
        self,
        message: str,
        *,
        library: str | None = None,
        built_model: str | None = None,
        built_dim: int | None = None,
        model: str | None = None,
        dim: int | None = None,
    ) -> None:
        super().__init__(message)
        self.library = library
        self.built_model = built_model
        self.built_dim = built_dim
        self.model = model
        self.dim = dim


class StoreError(AssetragError):
    """The Milvus store cannot be opened or answered with an error."""


class StoreLockedError(StoreError):
    """Another process holds the Milvus Lite data directory."""


class BadVideoError(AssetragError):
    """A file cannot be used as a video (truncated, no video stream, unknown codec, absurd size): the message
    names the file and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


class BadImageError(AssetragError):
    """A file cannot be decoded as an image (the message names the file and the reason)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class QueryError(AssetragError):
    """A search query is malformed (no text and no image, bad filter, bad image)."""


class PruneRefused(AssetragError):
    """A prune was held back (a missing, unreadable or empty root; more deletions than allowed). The rest of
    the ingest was done: `result` holds its report."""

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)
        self.result = result


class FileChangedError(AssetragError):
    """An asset's file on disk is no longer the file that was ingested (other bytes at its path)."""
