"""Object storage: image assets in buckets (`s3://`, `gs://`, `az://`), read through fsspec.

The one place that knows URLs are not local paths. Everything that reads an asset's bytes (ingest, the
server's originals and thumbnails, contact sheets, generation references) asks `is_url` first and, for a URL,
reads it here: whole and bounded (`read_bytes`: one ranged GET) or streamed (`open_stream`).

* Drivers are optional extras: `s3fs` (`pip install 'assetrag[s3]'`), `gcsfs` (`[gcs]`), `adlfs` (`[azure]`);
  a missing one is a `ConfigError` that names the extra.
* Credentials come from each SDK's usual places (AWS: the environment, `~/.aws`, instance roles; GCS:
  application-default credentials; Azure: `AZURE_STORAGE_CONNECTION_STRING` / `AZURE_STORAGE_ACCOUNT_NAME` …).
* An S3-compatible endpoint (MinIO, Ceph, a test server): `ASSETRAG_S3_ENDPOINT` (wins) or boto's own
  `AWS_ENDPOINT_URL`.
* A listed object's `mtime` is its LastModified in ns (a PUT always renews it, so size + LastModified tell an
  overwrite as mtime + size do for a file); its ETag is kept beside it (`ObjectInfo.etag`).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image

from assetrag.errors import ConfigError

#: URL scheme → (fsspec protocol, the extra that installs its driver)
SCHEMES: dict[str, tuple[str, str]] = {
    "s3": ("s3", "s3"),
    "s3a": ("s3", "s3"),
    "gs": ("gcs", "gcs"),
    "gcs": ("gcs", "gcs"),
    "az": ("abfs", "azure"),
    "abfs": ("abfs", "azure"),
    "abfss": ("abfs", "azure"),
}
ENDPOINT_ENV = "ASSETRAG_S3_ENDPOINT"
CHUNK = 1 << 20  # streaming reads: 1 MiB at a time
#: images are read whole (to hash and decode them); anything bigger is refused rather than risk the memory
MAX_BYTES = 1 << 30

_lock = threading.Lock()
_filesystems: dict[tuple[str, str], Any] = {}


def scheme_of(path: str) -> str | None:
    head, sep, _ = str(path).partition("://")
    return head.lower() if sep and head.lower() in SCHEMES else None


def is_url(path: object) -> bool:
    """True for an object-storage URL (`s3://bucket/key`, `gs://…`, `az://…`)."""
    return isinstance(path, str) and scheme_of(path) is not None


def normalise(url: str) -> str:
    """`s3://bucket/prefix/` → `s3://bucket/prefix` (the scheme lower-cased, no trailing slash)."""
    scheme = scheme_of(url)
    if scheme is None:
        raise ValueError(f"not an object-storage URL: {url!r}")
    rest = url.split("://", 1)[1].strip("/")
    if not rest or "\x00" in rest or any(p == ".." for p in rest.split("/")):
        raise ConfigError(f"{url!r} is not a bucket URL (give s3://bucket/prefix)")
    return f"{scheme}://{rest}"


def under(url: str, root: str) -> bool:
    """True when `url` is `root` or inside it (prefix semantics on whole path segments)."""
    root = root.rstrip("/")
    return url == root or url.startswith(root + "/")


def parent(url: str) -> str:
    return url.rsplit("/", 1)[0]


def filesystem(url: str) -> Any:
    """The fsspec filesystem for `url`'s scheme (one per scheme and endpoint, shared by threads)."""
    scheme = scheme_of(url)
    if scheme is None:
        raise ValueError(f"not an object-storage URL: {url!r}")
    protocol, extra = SCHEMES[scheme]
    endpoint = os.environ.get(ENDPOINT_ENV, "") if protocol == "s3" else ""
    key = (protocol, endpoint)
    with _lock:
        if key not in _filesystems:
            _filesystems[key] = _open_filesystem(protocol, extra, endpoint)
        return _filesystems[key]


def _open_filesystem(protocol: str, extra: str, endpoint: str) -> Any:
    hint = f"pip install 'assetrag[{extra}]'"
    try:
        import fsspec

        kwargs: dict[str, Any] = {"skip_instance_cache": True}
        if endpoint:
            kwargs["endpoint_url"] = endpoint
        return fsspec.filesystem(protocol, **kwargs)
    except ImportError as exc:
        raise ConfigError(f"reading {protocol}:// URLs needs its driver: {hint} ({exc})") from exc
    except ValueError as exc:  # fsspec: "Protocol not known"
        raise ConfigError(f"cannot open {protocol}:// storage ({exc}); {hint}") from exc


def _bare(url: str) -> str:
    """What fsspec calls the object: `bucket/key` (fsspec strips its own scheme names, not ours)."""
    return url.split("://", 1)[1]


@dataclass(frozen=True)
class ObjectInfo:
    url: str
    size: int
    mtime: int  # LastModified, ns since the epoch
    etag: str = ""


def _mtime_ns(info: dict[str, Any]) -> int:
    for key in ("LastModified", "last_modified", "updated", "mtime", "timeCreated"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
            return int(value.timestamp() * 1_000_000) * 1000
        if isinstance(value, int | float):
            return int(value * 1e9)
    return 0


def _info(url: str, info: dict[str, Any]) -> ObjectInfo:
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    return ObjectInfo(url, int(info.get("size") or info.get("Size") or 0), _mtime_ns(info), etag)


def list_objects(root: str) -> list[ObjectInfo]:
    """Every object under `root` (a prefix or one object), fresh from the service (no cached listing), in key
    order. FileNotFoundError: no such bucket; other OSError / service errors: could not list."""
    fs = filesystem(root)
    scheme = scheme_of(root)
    bare = _bare(root)
    fs.invalidate_cache(bare)
    found = fs.find(bare, detail=True, withdirs=False)
    out = []
    for name, info in sorted(found.items()):
        if info.get("type") == "directory":
            continue
        out.append(_info(f"{scheme}://{name.strip('/')}", info))
    return out


def read_bytes(url: str, limit: int) -> bytes:
    """The object's bytes in one GET (at most `limit` + 1 bytes are fetched; more → ValueError)."""
    data = filesystem(url).cat_file(_bare(url), start=0, end=limit + 1)
    if len(data) > limit:
        raise ValueError(f"the object is over the {limit:,}-byte limit for one image file")
    return bytes(data)


def stat(url: str) -> ObjectInfo | None:
    """The object's size, LastModified and ETag now (one HEAD), or None when it does not exist."""
    fs = filesystem(url)
    try:
        fs.invalidate_cache(_bare(url))
        return _info(url, fs.info(_bare(url)))
    except FileNotFoundError:
        return None


def exists(url: str) -> bool:
    return stat(url) is not None


def open_stream(url: str, chunk: int = CHUNK) -> Iterator[bytes]:
    """The object's bytes, `chunk` at a time (bounded memory, for serving originals)."""
    with filesystem(url).open(_bare(url), "rb", block_size=chunk) as fh:
        while True:
            data = fh.read(chunk)
            if not data:
                return
            yield data


def read_any(path: str | os.PathLike[str], limit: int = MAX_BYTES) -> bytes:
    """The bytes of a local file or of an object (URL), at most `limit` (more → ValueError)."""
    if isinstance(path, str) and is_url(path):
        return read_bytes(path, limit)
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"the file is over the {limit:,}-byte limit for one image file")
    return data


def load_image(path: str | os.PathLike[str], max_side: int = 1024) -> Image.Image:
    """A file's or object's image, long side ≤ `max_side` (for contact sheets: JPEGs decode at a DCT scale)."""
    with Image.open(io.BytesIO(read_any(path))) as im:
        im.draft("RGB", (max_side, max_side))
        im.load()
        out = im.copy()
    out.thumbnail((max_side, max_side))
    return out
