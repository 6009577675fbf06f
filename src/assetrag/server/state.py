"""Everything one app instance holds: the Library, its locks, the job registry, the thumbnail cache."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from fastapi import Request

from assetrag import objects
from assetrag.errors import FileChangedError
from assetrag.library import Library
from assetrag.search import SearchHit
from assetrag.server.config import ServerConfig
from assetrag.server.jobs import JobRegistry
from assetrag.server.security import (
    ASSET_ID_RE,
    IngestedCheck,
    Redactor,
    safe_asset_file,
    safe_asset_object,
    signed_url,
)
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
        self.thumbs = Thumbnails(
            (config.cache_dir or library.settings.cache_dir) / "thumbs", max_bytes=config.thumb_cache_bytes
        )
        self.ingested = IngestedCheck()
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

    def client_text(self, text: str) -> str:
        """`text` with the server's folders taken out of the paths in it: a path is named relative to the root
        (or the upload folder) it lies in, as a client names it — no absolute server path reaches a client."""
        folders = sorted({str(p) for p in [*self.read_roots, *self.own_dirs]}, key=len, reverse=True)
        for folder in folders:
            text = text.replace(folder.rstrip(os.sep) + os.sep, "").replace(folder, ".")
        return text

    def asset_file(self, hit: SearchHit) -> Path | str | None:
        """The first of the asset's files the server may serve and that is still the ingested file; None when
        none exists (or may be served); `FileChangedError` when one exists but holds other bytes now (never
        serve bytes that were not ingested: a file replaced, a hard link swapped in)."""
        record = self.library.ingested_file(hit.id) or {}
        mtimes = dict(zip(record.get("paths") or [], record.get("mtimes") or [], strict=False))
        size = int(record.get("size", hit.size))
        changed = False
        for stored in dict.fromkeys([hit.path, *hit.paths]):
            if objects.is_url(stored):
                url = safe_asset_object(stored, self.config.buckets)
                info = objects.stat(url) if url else None
                if info is None:
                    continue
                # stored mtime: the newest of the object and its sidecars; a PUT since then renews LastModified
                if info.size == size and info.mtime <= int(mtimes.get(stored, -1)):
                    return url
                changed = True
                continue
            real = safe_asset_file([stored], self.config.roots, self.own_dirs)
            if real is None:
                continue
            # a keyframe's id is not its file's sha256: its video's is (`video_id`)
            if self.ingested.same(real, hit.video_id or hit.id, size, mtimes.get(stored)):
                return real
            changed = True
        if changed:
            raise FileChangedError(
                f"the file of asset {hit.id[:12]}… changed since ingest (other bytes at its path): re-ingest it"
            )
        return None

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
