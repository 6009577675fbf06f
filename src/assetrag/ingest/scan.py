"""Walk library folders: image files with size, mtime, folder tags, collection and sidecar metadata."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assetrag.decode import IMAGE_EXTENSIONS
from assetrag.store import MAX_TAG, MAX_TAGS
from assetrag.video import VIDEO_EXTENSIONS, is_video

#: what a scan picks up: stills and videos
ASSET_EXTENSIONS = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS

#: a folder-level sidecar applied to every image below it; `<image>.json` beside an image applies to it alone
FOLDER_SIDECAR = "_assetrag.json"


@dataclass(frozen=True)
class FileEntry:
    """An image or video file found on disk."""

    path: str  # absolute, normalised
    root: str  # the ingested root it was found under
    size: int
    mtime: int  # ns; the newest of the image and its sidecars, so editing a sidecar re-reads it
    tags: tuple[str, ...]
    collection: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_video(self) -> bool:
        return is_video(self.path)


@dataclass(frozen=True)
class ScanError:
    path: str
    reason: str


def _load_sidecar(path: str, errors: list[ScanError]) -> tuple[dict[str, Any], int]:
    try:
        st = os.stat(path)
    except OSError:
        return {}, 0
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict):
            raise ValueError("top level must be a JSON object")
        return data, st.st_mtime_ns
    except (OSError, ValueError) as exc:
        errors.append(ScanError(path, f"sidecar metadata ignored: {exc}; fix the JSON"))
        return {}, 0


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if key == "tags":
            out["tags"] = [*out.get("tags", []), *(value if isinstance(value, list) else [value])]
        else:
            out[key] = value
    return out


def scan(
    roots: Sequence[str | Path], *, collection: str | None = None, tags: Sequence[str] = ()
) -> tuple[list[FileEntry], list[ScanError]]:
    """Every image and video under `roots` (recursively, symlinked files followed, symlinked folders not)."""
    entries: list[FileEntry] = []
    errors: list[ScanError] = []
    seen: set[str] = set()
    for root in roots:
        root_abs = os.path.abspath(os.fspath(root))
        if os.path.isfile(root_abs):
            walk: Iterator[tuple[str, list[str], list[str]]] = iter(
                [(os.path.dirname(root_abs), [], [os.path.basename(root_abs)])]
            )
            base = os.path.dirname(root_abs)
        elif os.path.isdir(root_abs):
            walk = os.walk(root_abs, onerror=lambda e: errors.append(ScanError(e.filename, str(e.strerror))))
            base = root_abs
        else:
            errors.append(ScanError(root_abs, "no such file or folder"))
            continue
        folder_meta: dict[str, tuple[dict[str, Any], int]] = {}
        for dirpath, dirnames, filenames in walk:
            dirnames.sort()
            parent = os.path.dirname(dirpath)
            inherited = folder_meta.get(parent, ({}, 0)) if dirpath != base else ({}, 0)
            own, own_mtime = _load_sidecar(os.path.join(dirpath, FOLDER_SIDECAR), errors)
            folder_meta[dirpath] = (_merge(inherited[0], own), max(inherited[1], own_mtime))
            for name in sorted(filenames):
                if os.path.splitext(name)[1].lower() not in ASSET_EXTENSIONS:
                    continue
                path = os.path.join(dirpath, name)
                if path in seen:
                    continue
                seen.add(path)
                try:
                    path.encode("utf-8")
                except UnicodeEncodeError:
                    errors.append(
                        ScanError(
                            os.fsencode(path).decode("utf-8", "replace"),
                            "file name is not valid UTF-8; rename the file",
                        )
                    )
                    continue
                try:
                    st = os.stat(path)
                except OSError as exc:
                    reason = "broken symbolic link" if os.path.islink(path) else (exc.strerror or str(exc))
                    errors.append(ScanError(path, reason))
                    continue
                if not os.access(path, os.R_OK):
                    errors.append(ScanError(path, "permission denied; make the file readable"))
                    continue
                side, side_mtime = _load_sidecar(path + ".json", errors)
                meta = _merge(folder_meta[dirpath][0], side)
                rel_dirs = Path(os.path.relpath(dirpath, base)).parts if dirpath != base else ()
                folder_tags = [p for p in rel_dirs if p not in (".", "")]
                all_tags = _unique([*folder_tags, *tags, *[str(t) for t in meta.pop("tags", [])]])
                coll = (
                    collection
                    or meta.pop("collection", None)
                    or (folder_tags[0] if folder_tags else os.path.basename(base) or "default")
                )
                meta.pop("collection", None)
                entries.append(
                    FileEntry(
                        path=path,
                        root=base,
                        size=st.st_size,
                        mtime=max(st.st_mtime_ns, side_mtime, folder_meta[dirpath][1]),
                        tags=tuple(all_tags),
                        collection=str(coll),
                        metadata=meta,
                    )
                )
    return entries, errors


def _unique(items: Sequence[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        item = item.strip()
        if item and item not in out:
            out.append(item[:MAX_TAG])
    return out[:MAX_TAGS]
