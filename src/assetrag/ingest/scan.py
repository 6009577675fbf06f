"""Walk library folders: image files with size, mtime, folder tags, collection and sidecar metadata."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assetrag import objects
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

    path: str  # absolute, normalised; or an object URL (s3://bucket/key)
    root: str  # the ingested root it was found under
    size: int
    mtime: (
        int  # ns (an object's LastModified); the newest of the image and its sidecars, so editing a sidecar re-reads it
    )
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


@dataclass
class RootListing:
    """How one root fared in a scan: `state` listed | missing | unreadable; `images` found under it; `unlisted`
    the folders below it that could not be listed (what was stored under them is not known to be gone)."""

    path: str  # absolute
    state: str = "listed"
    images: int = 0
    unlisted: list[str] = field(default_factory=list)

    @property
    def listed(self) -> bool:
        return self.state == "listed"


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
    roots: Sequence[str | Path],
    *,
    collection: str | None = None,
    tags: Sequence[str] = (),
    follow_symlinks: bool = False,
) -> tuple[list[FileEntry], list[ScanError], list[RootListing]]:
    """Every image and video under `roots` (recursively; symlinked folders are not followed, symlinked files
    only when they point inside one of `roots` — or anywhere with `follow_symlinks`), the files skipped with
    why, and how each root fared (a prune may only trust a root that was listed)."""
    entries: list[FileEntry] = []
    errors: list[ScanError] = []
    listings: list[RootListing] = []
    seen: set[str] = set()
    real_roots = [os.path.realpath(os.fspath(r)) for r in roots]
    for root in roots:
        if objects.is_url(os.fspath(root)):
            found, errs, listing = scan_bucket(os.fspath(root), collection=collection, tags=tags)
            entries += [e for e in found if e.path not in seen]
            seen.update(e.path for e in found)
            errors.extend(errs)
            listings.append(listing)
            continue
        root_abs = os.path.abspath(os.fspath(root))
        listing = RootListing(root_abs)
        listings.append(listing)
        if os.path.isfile(root_abs):
            walk: Iterator[tuple[str, list[str], list[str]]] = iter(
                [(os.path.dirname(root_abs), [], [os.path.basename(root_abs)])]
            )
            base = os.path.dirname(root_abs)
        elif os.path.isdir(root_abs):

            def unlisted(e: OSError, listing: RootListing = listing) -> None:
                reason = e.strerror or str(e)
                if os.path.abspath(e.filename or "") == listing.path:
                    listing.state = "unreadable"
                    reason = f"cannot list the folder ({reason})"
                else:
                    listing.unlisted.append(os.path.abspath(e.filename or ""))
                errors.append(ScanError(e.filename, reason))

            walk = os.walk(root_abs, onerror=unlisted)
            base = root_abs
        else:
            listing.state = "missing"
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
                listing.images += 1  # image files listed (readable or not): the root is not empty
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
                if not follow_symlinks:
                    real = os.path.realpath(path)
                    if not any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in real_roots):
                        errors.append(
                            ScanError(
                                path,
                                "symbolic link to a file outside the ingested folders; not read "
                                "(ingest with --follow-symlinks to include it)",
                            )
                        )
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
    return entries, errors, listings


#: sidecars in a bucket are small JSON objects; anything bigger is not read
MAX_SIDECAR_BYTES = 1 << 20


def scan_bucket(
    root: str, *, collection: str | None = None, tags: Sequence[str] = ()
) -> tuple[list[FileEntry], list[ScanError], RootListing]:
    """`scan` for an object-storage prefix (`s3://bucket/prefix`) or one object: one listing (no object is
    read but sidecars), "folders" are the key's `/`-separated parts. A listing that fails is `unreadable`; a
    bucket or prefix with no objects at all is `missing` (object stores have no empty folders)."""
    errors: list[ScanError] = []
    url = objects.normalise(root)
    listing = RootListing(url)
    try:
        found = objects.list_objects(url)
    except FileNotFoundError:
        found = []
    except Exception as exc:  # credentials, network, permissions: nothing under it is known to be gone
        listing.state = "unreadable"
        errors.append(ScanError(url, f"cannot list the bucket prefix ({type(exc).__name__}: {exc})"))
        return [], errors, listing
    if not found:
        listing.state = "missing"
        errors.append(ScanError(url, "no objects under this bucket prefix"))
        return [], errors, listing
    single = len(found) == 1 and found[0].url == url
    base = objects.parent(url) if single else url
    by_url = {o.url: o for o in found}
    sidecars: dict[str, tuple[dict[str, Any], int]] = {}

    def sidecar(key: str) -> tuple[dict[str, Any], int]:
        if key not in sidecars:
            info = by_url.get(key)
            data: dict[str, Any] = {}
            if info is not None:
                try:
                    loaded = json.loads(objects.read_bytes(key, MAX_SIDECAR_BYTES))
                    if not isinstance(loaded, dict):
                        raise ValueError("top level must be a JSON object")
                    data = loaded
                except (OSError, ValueError) as exc:
                    errors.append(ScanError(key, f"sidecar metadata ignored: {exc}; fix the JSON"))
            sidecars[key] = (data, info.mtime if info is not None and data else 0)
        return sidecars[key]

    entries: list[FileEntry] = []
    for obj in found:
        if os.path.splitext(obj.url)[1].lower() not in IMAGE_EXTENSIONS:
            continue
        listing.images += 1
        rel_dirs = obj.url[len(base) + 1 :].split("/")[:-1]
        meta: dict[str, Any] = {}
        newest = obj.mtime
        folder = base
        for part in ["", *rel_dirs]:
            folder = f"{folder}/{part}" if part else folder
            own, own_mtime = sidecar(f"{folder}/{FOLDER_SIDECAR}")
            meta, newest = _merge(meta, own), max(newest, own_mtime)
        side, side_mtime = sidecar(obj.url + ".json")
        meta, newest = _merge(meta, side), max(newest, side_mtime)
        all_tags = _unique([*rel_dirs, *tags, *[str(t) for t in meta.pop("tags", [])]])
        coll = collection or meta.pop("collection", None) or (rel_dirs[0] if rel_dirs else base.rsplit("/", 1)[-1])
        meta.pop("collection", None)
        if obj.etag:
            meta["etag"] = obj.etag
        entries.append(FileEntry(obj.url, base, obj.size, newest, tuple(all_tags), str(coll), meta))
    return entries, errors, listing


def _unique(items: Sequence[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        item = item.strip()
        if item and item not in out:
            out.append(item[:MAX_TAG])
    return out[:MAX_TAGS]
