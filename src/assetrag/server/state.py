"""Everything one app instance holds: the Library, its locks, the job registry, the thumbnail cache."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from fastapi import Request

from assetrag.library import Library
from assetrag.search import SearchHit
from assetrag.server.config import ServerConfig
from assetrag.server.jobs import JobRegistry
from assetrag.server.security import ASSET_ID_RE, Redactor, safe_asset_file, signed_url
from assetrag.server.thumbs import Thumbnails


class AppState:
    """One Library per app, shared by every request and job."""

    def __init__(self, library: Library, config: ServerConfig, *, owns_library: bool) -> None:
        self.library = library
        self.config = config
        self.owns_library = owns_library
        self.redact = Redactor(config.secrets)
        self.store_lock = threading.RLock()
        self.model_lock = threading.RLock()
        self.jobs = JobRegistry(keep=config.max_jobs_kept, redact=self.redact)
        self.thumbs = Thumbnails((config.cache_dir or library.settings.cache_dir) / "thumbs")
        self._model_ready = False
        self._facets: dict[str, Any] | None = None
        library.serialise(self.store_lock, self.model_lock)  # opens nothing; no model is loaded

    # -- the model ---------------------------------------------------------------------------------

    def ensure_model(self) -> None:
        """Load the embedder once (other threads wait) and serialise its calls."""
        if self._model_ready:
            return
        with self.model_lock:
            if self._model_ready:
                return
            _ = self.library.embedder  # loads it, wrapped so its calls take turns (`Library.serialise`)
            self._model_ready = True

    @property
    def model_ready(self) -> bool:
        return self._model_ready

    def exists(self) -> bool:
        return self.library.exists()

    # -- files ------------------------------------------------------------------------------------

    @property
    def read_roots(self) -> list[Path]:
        """Folders the API may ingest from: the configured roots, else the working directory."""
        assert self.config.upload_dir is not None
        roots = list(self.config.roots) or [Path(os.path.realpath(os.getcwd()))]
        return [*roots, self.config.upload_dir]

    @property
    def own_dirs(self) -> list[Path]:
        """Folders the server writes itself (uploads, generated images): always servable."""
        assert self.config.upload_dir is not None and self.config.generated_dir is not None
        return [self.config.upload_dir, self.config.generated_dir]

    def asset_file(self, hit: SearchHit) -> Path | None:
        return safe_asset_file([hit.path, *hit.paths], self.config.roots, self.own_dirs)

    # -- serialising hits -------------------------------------------------------------------------

    def signed(self, path: str) -> str:
        """A URL for a GET image route that works without the token header (signed when a token is set)."""
        return signed_url(self.config.api_token, path, self.config.url_ttl_s)

    def urls(self, asset_id: str) -> dict[str, str]:
        return {
            "image_url": self.signed(f"/api/assets/{asset_id}/image"),
            "thumb_url": self.signed(f"/api/assets/{asset_id}/thumb"),
        }

    def hit_dict(self, hit: SearchHit) -> dict[str, Any]:
        """A hit as the API sends it: its fields, its image URLs, and for a video frame `play_url` — the
        original video at the frame's time (a media fragment, `#t=12.5`) — and its `label`."""
        urls = self.urls(hit.id)
        extra = {"label": hit.label}
        if hit.is_video and hit.time is not None:
            extra["play_url"] = f"{urls['image_url']}#t={hit.time:g}"
        return {**hit.to_dict(), **urls, **extra}

    def with_urls(self, value: Any) -> Any:
        """`value` (JSON-like) with image URLs added to every object whose `id` is an asset id."""
        if isinstance(value, dict):
            out = {k: self.with_urls(v) for k, v in value.items()}
            rid = value.get("id")
            if isinstance(rid, str) and ASSET_ID_RE.match(rid) and "thumb_url" not in value:
                out.update(self.urls(rid))
            return out
        if isinstance(value, list):
            return [self.with_urls(v) for v in value]
        return value

    # -- facets (cached until the next write) -----------------------------------------------------

    def facets(self) -> dict[str, Any]:
        if self._facets is None:
            self._facets = self._compute_facets()
        return self._facets

    def invalidate(self) -> None:
        self._facets = None

    def _compute_facets(self) -> dict[str, Any]:
        counts = self.library.facets()

        def ranked(d: dict[str, int], limit: int) -> list[dict[str, Any]]:
            return [{"name": k, "count": v} for k, v in sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))][:limit]

        return {
            "collections": ranked(counts["collections"], 1000),
            "tags": ranked(counts["tags"], 500),
            "sources": ranked(counts["sources"], 10),
        }

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        self.jobs.shutdown()
        if self.owns_library:
            self.library.close()


def get_state(request: Request) -> AppState:
    return request.app.state.assetrag
