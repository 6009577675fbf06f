"""Uploaded files: size-limited, decoded to prove they are images, saved under the upload folder with a
safe name."""

from __future__ import annotations

import hashlib
import io
import os
import re
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fastapi import UploadFile
from PIL import Image, UnidentifiedImageError

from assetrag.decode import MAX_PIXELS, decode_bytes
from assetrag.errors import BadImageError
from assetrag.server.security import is_within

#: Pillow format → the extension a saved upload gets (whatever the client called it)
FORMAT_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}
_UNSAFE = re.compile(r"[^\w.-]+")


@dataclass(frozen=True)
class Saved:
    name: str  # as the client sent it
    path: str  # where it now lives
    id: str  # sha256 of its bytes: the asset id it will have
    size: int
    new: bool = True  # written by this request (False: the same bytes were already saved under that name)


@dataclass(frozen=True)
class Rejected:
    name: str
    reason: str
    too_large: bool = False


def safe_name(name: str, fallback: str = "upload") -> str:
    """A file or folder name with no path in it: letters, digits, '.', '_', '-' only; no leading dot."""
    base = PurePosixPath((name or "").replace("\\", "/")).name
    base = _UNSAFE.sub("-", base).strip(".-_ ")[:80]
    return base or fallback


def check_image(data: bytes, name: str) -> str:
    """The extension for `data` when it decodes as an image of an accepted format; else `BadImageError` —
    whatever Pillow thinks of it (a decompression bomb, by its warning or its error; truncated data; an
    unsupported format), never another exception."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt = im.format or ""
                width, height = im.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImageError(name, f"too many pixels (possible decompression bomb): {exc}") from exc
    except UnidentifiedImageError as exc:
        raise BadImageError(name, "not an image (jpg, png, webp, gif, bmp or tiff)") from exc
    except Exception as exc:  # Pillow raises many types on hostile headers
        raise BadImageError(name, f"not a readable image ({type(exc).__name__}: {exc})") from exc
    if width * height > MAX_PIXELS:
        raise BadImageError(
            name, f"{width}×{height} pixels exceeds the {MAX_PIXELS:,}-pixel limit (possible decompression bomb)"
        )
    if fmt not in FORMAT_EXT:
        raise BadImageError(name, f"{fmt or 'this'} images are not accepted; use jpg, png, webp, gif, bmp or tiff")
    try:
        decode_bytes(data, name, max_side=256)  # the whole stream decodes: not truncated, not a bomb
    except BadImageError:
        raise
    except Exception as exc:  # a decoder bug is still a bad upload, not a server error
        raise BadImageError(name, f"could not decode it ({type(exc).__name__}: {exc})") from exc
    return FORMAT_EXT[fmt]


async def save_uploads(files: list[UploadFile], dest: Path, *, max_bytes: int) -> tuple[list[Saved], list[Rejected]]:
    """Check and save each file under `dest`; bad ones are listed with the reason, never saved."""
    saved: list[Saved] = []
    rejected: list[Rejected] = []
    dest.mkdir(parents=True, exist_ok=True)
    real_dest = Path(os.path.realpath(dest))
    for f in files:
        name = f.filename or "upload"
        data = await f.read(max_bytes + 1)
        if len(data) > max_bytes:
            rejected.append(Rejected(name, f"larger than the {format_mb(max_bytes)} upload limit", too_large=True))
            continue
        try:
            ext = check_image(data, safe_name(name))
        except BadImageError as exc:
            rejected.append(Rejected(name, exc.reason))
            continue
        digest = hashlib.sha256(data).hexdigest()
        stem = safe_name(os.path.splitext(PurePosixPath(name.replace("\\", "/")).name)[0])
        target = real_dest / f"{stem}{ext}"
        if target.is_symlink() or (target.exists() and _digest(target) != digest):
            target = real_dest / f"{stem}-{digest[:10]}{ext}"  # another file already has the name
        if target.is_symlink() or not is_within(Path(os.path.realpath(target)), real_dest):
            rejected.append(Rejected(name, "cannot be saved under the upload folder"))
            continue
        new = not target.exists()
        if new:
            tmp = real_dest / f".{uuid.uuid4().hex}.part"
            try:
                tmp.write_bytes(data)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        saved.append(Saved(name=name, path=str(target), id=digest, size=len(data), new=new))
    return saved, rejected


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def format_mb(n: int) -> str:
    """A byte limit in MB for messages (a limit under 1 MB is not "0 MB")."""
    return f"{n / (1024 * 1024):.3g} MB"


def discard_unused(saved: list[Saved], ingested: set[str] | None) -> list[str]:
    """Delete the files this request wrote that were not ingested (`ingested`: the paths that were; None: the
    ingest failed, so none was), so no upload stays saved but unknown to the library. Returns the client names."""
    dropped = []
    for s in saved:
        if s.new and (ingested is None or s.path not in ingested):
            Path(s.path).unlink(missing_ok=True)
            dropped.append(s.name)
    return dropped
