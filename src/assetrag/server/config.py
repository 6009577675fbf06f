"""`ServerConfig`: the knobs of `assetrag serve` that the library itself does not need."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from assetrag.config import Settings
from assetrag.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MiB = 1024 * 1024


def _env_mb(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default * MiB
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number of megabytes; set e.g. {name}={default}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be > 0 MB, got {raw!r}")
    return int(value * MiB)


@dataclass(frozen=True)
class ServerConfig:
    """What the web server may do.

    `api_token`: when set, every `/api/*` request must carry it (`Authorization: Bearer …` or
    `X-API-Token: …`); image URLs in responses carry a signature derived from it instead.
    `roots`: folders the server may ingest from and serve files from. Empty means: ingest only below the
    working directory, and serve each stored asset only from inside its own folder (no symlink escapes).
    `upload_dir` / `generated_dir`: where uploads and generated images are saved (both always servable);
    `None` → `<library dir>/<name>-files/{uploads,generated}/<library>`.
    """

    api_token: str | None = None
    roots: tuple[Path, ...] = ()
    #: bucket prefixes (s3://bucket/prefix) whose objects the server may stream (originals, thumbnails);
    #: empty: no object is served (env ASSETRAG_BUCKETS, space-separated)
    buckets: tuple[str, ...] = ()
    upload_dir: Path | None = None
    generated_dir: Path | None = None  # where generated images are written; None → beside the uploads
    cache_dir: Path | None = None  # thumbnails go under <cache_dir>/thumbs; None → Settings.cache_dir
    max_upload_bytes: int = 50 * MiB
    max_request_bytes: int = 256 * MiB
    thumb_cache_bytes: int = 256 * MiB  # the thumbnail cache's bound (least recently used go first)
    max_upload_files: int = 200
    thumb_sizes: tuple[int, ...] = (256, 512, 1024)
    max_jobs_kept: int = 200
    url_ttl_s: int = 12 * 3600
    allowed_hosts: tuple[str, ...] = ()  # Host headers accepted (empty: any); `serve` sets loopback names
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __repr__(self) -> str:  # never print the token
        token = "set" if self.api_token else "unset"
        return f"ServerConfig(api_token={token}, roots={list(map(str, self.roots))}, upload_dir={self.upload_dir})"

    @classmethod
    def from_env(cls, **overrides: object) -> ServerConfig:
        """From `ASSETRAG_API_TOKEN`, `ASSETRAG_ROOTS` (os.pathsep-separated), `ASSETRAG_UPLOAD_DIR`,
        `ASSETRAG_MAX_UPLOAD_MB` (per file), `ASSETRAG_MAX_REQUEST_MB`, `ASSETRAG_THUMB_CACHE_MB`; then non-None
        overrides."""
        roots_env = os.environ.get("ASSETRAG_ROOTS", "")
        upload = os.environ.get("ASSETRAG_UPLOAD_DIR")
        base = cls(
            api_token=os.environ.get("ASSETRAG_API_TOKEN") or None,
            roots=tuple(Path(p) for p in roots_env.split(os.pathsep) if p.strip()),
            upload_dir=Path(upload) if upload else None,
            buckets=tuple(os.environ.get("ASSETRAG_BUCKETS", "").split()),
            max_upload_bytes=_env_mb("ASSETRAG_MAX_UPLOAD_MB", 50),
            max_request_bytes=_env_mb("ASSETRAG_MAX_REQUEST_MB", 256),
            thumb_cache_bytes=_env_mb("ASSETRAG_THUMB_CACHE_MB", 256),
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        if "roots" in clean:
            clean["roots"] = tuple(Path(os.fspath(p)) for p in clean["roots"])  # type: ignore[attr-defined]
        return replace(base, **clean)

    def resolved(self, settings: Settings) -> ServerConfig:
        """Absolute real roots and upload folder, and the secrets to keep out of responses and logs."""
        roots = tuple(Path(os.path.realpath(p)) for p in self.roots)
        for r in roots:
            if not r.is_dir():
                raise ConfigError(f"allowed root {r} is not a folder; create it or drop it from ASSETRAG_ROOTS")
        upload = self.upload_dir or files_dir(settings) / "uploads" / settings.library
        generated = self.generated_dir or files_dir(settings) / "generated" / settings.library
        for folder in (upload, generated):
            folder.mkdir(parents=True, exist_ok=True)
        from assetrag import objects

        return replace(
            self,
            roots=roots,
            buckets=tuple(objects.normalise(b) for b in self.buckets),
            upload_dir=Path(os.path.realpath(upload)),
            generated_dir=Path(os.path.realpath(generated)),
            secrets=tuple(collect_secrets(settings, self.api_token)),
        )


def files_dir(settings: Settings) -> Path:
    """Where the server keeps the files it writes: `<dir>/<name>-files` beside a Milvus Lite `<name>.db`,
    under the cache folder for a Milvus server."""
    if settings.is_server:
        return settings.cache_dir / "server-files"
    db = Path(os.path.abspath(settings.uri))
    return db.parent / f"{db.stem}-files"


#: environment variables whose values must never reach a response or a log line
_SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_PASSWORD")


def collect_secrets(settings: Settings, api_token: str | None) -> list[str]:
    found = [api_token, settings.token]
    found += [v for k, v in os.environ.items() if k.upper().endswith(_SECRET_SUFFIXES)]
    # short values would redact ordinary words; real keys and tokens are long
    return sorted({s for s in found if s and len(s) >= 6}, key=len, reverse=True)
