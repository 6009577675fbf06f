"""Access control for the server: the API token, signed image URLs, safe file paths, secret redaction."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from assetrag import objects
from assetrag.decode import IMAGE_EXTENSIONS
from assetrag.errors import AssetragError
from assetrag.video import VIDEO_EXTENSIONS

#: what the server may send from a stored path: images and videos (the same root rules for both)
SERVABLE_EXTENSIONS = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS

ASSET_ID_RE = re.compile(r"^[0-9a-f]{64}$")

_bearer = HTTPBearer(auto_error=False, description="the server's ASSETRAG_API_TOKEN")
_header = APIKeyHeader(name="X-API-Token", auto_error=False, description="the server's ASSETRAG_API_TOKEN")


def _expected_token(request: Request) -> str | None:
    return request.app.state.assetrag.config.api_token


def _token_matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _unauthorized() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "this server requires its API token: send 'Authorization: Bearer <token>' or 'X-API-Token: <token>'",
        headers={"WWW-Authenticate": "Bearer"},
    )


def require_token(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    header: str | None = Depends(_header),
) -> None:
    """Every API route depends on this; it passes when no token is configured."""
    expected = _expected_token(request)
    if expected is None:
        return
    if _token_matches(bearer.credentials if bearer else None, expected) or _token_matches(header, expected):
        return
    raise _unauthorized()


def require_token_or_signature(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    header: str | None = Depends(_header),
) -> None:
    """Image routes (GET only) also accept the `exp`/`sig` query pair the API put in their URLs, so an
    `<img src>` works without the token ever appearing in a URL, a browser history or an access log.
    A signature is valid for one path (one image) until `exp`."""
    expected = _expected_token(request)
    if expected is None:
        return
    if _token_matches(bearer.credentials if bearer else None, expected) or _token_matches(header, expected):
        return
    sig, exp = request.query_params.get("sig"), request.query_params.get("exp")
    if request.method in ("GET", "HEAD") and sig and exp and verify_signature(expected, request.url.path, exp, sig):
        return
    raise _unauthorized()


def sign(token: str, path: str, exp: int) -> str:
    msg = f"GET {path} {exp}".encode()
    return hmac.new(token.encode(), msg, hashlib.sha256).hexdigest()[:40]


def verify_signature(token: str, path: str, exp: str, sig: str) -> bool:
    if not exp.isdigit() or int(exp) < time.time():
        return False
    return hmac.compare_digest(sign(token, path, int(exp)).encode(), sig.encode())


def signed_url(token: str | None, path: str, ttl_s: int) -> str:
    """`path` itself without a token; else `path?exp=…&sig=…`, `exp` rounded so a URL stays the same (and
    cacheable) for a while: valid for at least ttl_s / 2 and at most ttl_s."""
    if token is None:
        return path
    step = max(ttl_s // 2, 1)  # (a floor of 60 s kept a short ttl_s's URLs valid for up to 2 minutes)
    exp = (int(time.time()) // step + 2) * step
    return f"{path}?exp={exp}&sig={sign(token, path, exp)}"


# -- paths ----------------------------------------------------------------------------------------


class PathRefused(Exception):
    """A path the server will not read from; the message says why. `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def is_within(path: Path, root: Path) -> bool:
    """True when `path` is `root` or below it (both already resolved)."""
    return path == root or root in path.parents


def check_asset_id(asset_id: str) -> str:
    if not ASSET_ID_RE.match(asset_id):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "an asset id is the 64 lowercase hex characters of a sha256")
    return asset_id


def resolve_request_path(raw: str, roots: Sequence[Path]) -> Path:
    """The real folder or file a client named for ingest, which must lie inside one of `roots`.

    Refused: empty names, NUL bytes, backslashes, `..` segments (also percent-encoded), '~', and any path
    whose real location (symlinks resolved) is outside every root. A relative path is taken relative to
    the first root.
    """
    if not raw or not raw.strip():
        raise PathRefused("give a folder path", 400)
    if "\x00" in raw or "\\" in raw or raw.startswith("~"):
        raise PathRefused("the path holds characters that are not allowed (NUL, backslash or '~')", 400)
    decoded = raw
    for _ in range(3):  # '%2e%2e', '%252e%252e' … are refused like '..'
        decoded = unquote(decoded)
    if any(part == ".." for part in re.split(r"[/\\]", decoded)):
        raise PathRefused("'..' is not allowed in a path; give the folder itself", 400)
    if not roots:
        raise PathRefused("this server has no folders it may read from")
    candidate = Path(raw) if os.path.isabs(raw) else roots[0] / raw
    real = Path(os.path.realpath(candidate))
    if not any(is_within(real, r) for r in roots):
        raise PathRefused(
            "the path is outside the folders this server may read from (give a path relative to its root; "
            "start the server with --root to allow another folder)"
        )
    if not real.exists():
        raise PathRefused(f"no such file or folder: {raw}", 404)
    return real


def safe_asset_file(stored_paths: Iterable[str], roots: Sequence[Path], always: Sequence[Path]) -> Path | None:
    """The first of an asset's stored paths that may be served, or None.

    A path qualifies when it is absolute, has an image extension, is a regular file, and its real location
    lies inside an allowed root: `roots` when the server was given roots, else the stored path's own folder
    (so a symlink pointing out of its folder is never followed); `always` (the upload folder) counts too.
    """
    for stored in stored_paths:
        if not stored or "\x00" in stored or not os.path.isabs(stored):
            continue
        if os.path.splitext(stored)[1].lower() not in SERVABLE_EXTENSIONS:
            continue
        real = Path(os.path.realpath(stored))
        allowed = [*roots, *always] if roots else [Path(os.path.realpath(os.path.dirname(stored))), *always]
        if any(is_within(real, r) for r in allowed) and real.is_file():
            return real
    return None


def safe_asset_object(stored: str, buckets: Sequence[str]) -> str | None:
    """`stored` (an object URL) when it may be served: an image name under one of the configured bucket
    prefixes (`ServerConfig.buckets`), no `..` segment; else None. Nothing is served from a bucket by default."""
    if not stored or "\x00" in stored or not objects.is_url(stored):
        return None
    if os.path.splitext(stored)[1].lower() not in IMAGE_EXTENSIONS:
        return None
    try:
        url = objects.normalise(stored)
    except (ValueError, AssetragError):
        return None
    return url if any(objects.under(url, b) for b in buckets) else None


class IngestedCheck:
    """Is a file still the one that was ingested? Same size and mtime as stored: yes; same size, other mtime
    (touched, copied with a new time, a sidecar edited): its sha256 must be the asset id — remembered by
    (path, size, mtime_ns), so a file is hashed once per change, not per request; another size: no."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._hashes: OrderedDict[tuple[str, int, int], str] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def same(self, path: Path, asset_id: str, size: int, mtime_ns: int | None) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            return False
        if mtime_ns is not None and st.st_mtime_ns == mtime_ns:
            return True
        key = (str(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            digest = self._hashes.get(key)
            if digest is not None:
                self._hashes.move_to_end(key)
        if digest is None:
            digest = _sha256_file(path)
            with self._lock:
                self._hashes[key] = digest
                while len(self._hashes) > self._max:
                    self._hashes.popitem(last=False)
        return hmac.compare_digest(digest, asset_id)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return ""
    return h.hexdigest()


# -- secrets --------------------------------------------------------------------------------------

MASK = "***"


class Redactor:
    """Replaces every known secret value in text by '***'."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = [s for s in secrets if s]

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            if s in text:
                text = text.replace(s, MASK)
        return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the message and its string arguments."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__("assetrag-redact")
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self.redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self.redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


#: loggers whose records are made by the server (a logger's filters only see records made on it)
LOGGERS = ("assetrag", "assetrag.server", "uvicorn", "uvicorn.error", "uvicorn.access", "fastapi", "")


def install_log_redaction(redact: Redactor) -> RedactingFilter:
    """Attach the filter to the server's loggers, and to the handlers of those and of the root logger
    (which also see what other libraries log)."""
    flt = RedactingFilter(redact)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if flt not in logger.filters:
            logger.addFilter(flt)
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(flt)
    return flt


def remove_log_redaction(flt: RedactingFilter) -> None:
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.removeFilter(flt)
        for handler in logger.handlers:
            handler.removeFilter(flt)
