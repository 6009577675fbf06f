"""What the store holds versus what is on disk: the incremental check, the run's claims on new bytes, and the
path updates (moves, copies, touches, prunes) applied to stored records.

A *record* is what one file's bytes became: an image is one row (keyed by its `id`), a video is all the rows
of its keyframes (keyed by their common `video_id`, see `ingest.video`). Everything here works on record
keys, so a video moves, is copied or is pruned as a whole; a video counts as stored only when all its
keyframes are (`frames` rows carry its `video_id`), else it is `partial` and the runner deletes and redoes it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assetrag import objects
from assetrag.config import DEFAULT_MAX_DELETE
from assetrag.errors import ConfigError
from assetrag.ingest.rows import FileError, IngestReport, merge_tags
from assetrag.ingest.scan import FileEntry, RootListing
from assetrag.store import MAX_PATHS, SCALAR_FIELDS, Store
from assetrag.store import filters as F


@dataclass
class Known:
    """What the store already holds, indexed for the incremental check."""

    by_path: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # path → (record key, size, mtime)
    ids: set[str] = field(default_factory=set)  # keys of complete records (image ids, complete video ids)
    #: path → every record listing it; more than one only after a run was killed between writing a changed
    #: file's new record and taking the path off its old one — such a path is re-read and set right
    claims: dict[str, list[str]] = field(default_factory=dict)
    #: video id → ids of its keyframes, for videos with fewer keyframes stored than their `frames`
    partial: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, store: Store) -> Known:
        known = cls()
        if store.model_info() is None:
            return known
        videos: dict[str, tuple[int, list[str]]] = {}  # video id → (frames it should have, keyframe ids)
        for row in store.iterate(fields=("id", "paths", "mtimes", "size", "video_id", "frames")):
            key = row.get("video_id") or row["id"]
            if row.get("video_id"):
                videos.setdefault(key, (int(row.get("frames") or 0), []))[1].append(row["id"])
            else:
                known.ids.add(key)
            mtimes = list(row.get("mtimes") or [])
            for i, p in enumerate(row.get("paths") or []):
                known.by_path[p] = (key, int(row["size"]), int(mtimes[i]) if i < len(mtimes) else -1)
                keys = known.claims.setdefault(p, [])
                if key not in keys:
                    keys.append(key)
        for vid, (frames, ids) in videos.items():
            if len(ids) == frames:
                known.ids.add(vid)
            else:
                known.partial[vid] = ids
        return known

    def drop_partial(self, store: Store) -> int:
        """Delete the keyframes of videos a killed run left incomplete (they are sampled again); how many."""
        if not self.partial:
            return 0
        store.delete([i for ids in self.partial.values() for i in ids])
        for path in [p for p, (key, _, _) in self.by_path.items() if key in self.partial]:
            del self.by_path[path]
        for path, keys in list(self.claims.items()):
            keys[:] = [k for k in keys if k not in self.partial]
            if not keys:
                del self.claims[path]
        n = len(self.partial)
        self.partial.clear()
        return n

    def unchanged(self, e: FileEntry) -> bool:
        """Same path, size and mtime as stored, and only one record claims the path: skip without reading."""
        hit = self.by_path.get(e.path)
        return bool(
            hit and hit[1] == e.size and hit[2] == e.mtime and len(self.claims[e.path]) == 1 and hit[0] in self.ids
        )

    def gone(self, seen: set[str], roots: Sequence[str | Path]) -> list[tuple[str, str]]:
        """(path, id) of stored paths under `roots` that the scan did not see and that are not on disk."""
        return [
            (path, pid)
            for path, (pid, _, _) in self.by_path.items()
            if path not in seen and under(path, roots) and not exists(path, seen)
        ]

    def stored_under(self, root: str) -> list[tuple[str, str]]:
        """(path, id) of every stored path under `root`."""
        return [(path, pid) for path, (pid, _, _) in self.by_path.items() if under(path, [root])]


# -- prune: what may go, and what is refused -----------------------------------------------------------


@dataclass(frozen=True)
class DeleteLimit:
    """How many records one prune may delete: `count` records, or `percent` of the library (at least one)."""

    text: str
    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, value: int | str | None) -> DeleteLimit:
        """`N` (records) or `P%` (of the library); None → the default (10%)."""
        text = str(DEFAULT_MAX_DELETE if value is None else value).strip()
        try:
            if text.endswith("%"):
                pct = float(text[:-1])
                if not 0 <= pct <= 100:
                    raise ValueError
                return cls(text, percent=pct)
            n = int(text)
            if n < 0:
                raise ValueError
            return cls(text, count=n)
        except ValueError:
            raise ConfigError(
                f"max_delete must be a number of assets (e.g. 50) or a percentage of the library (e.g. 10%), "
                f"got {text!r}"
            ) from None

    def allowed(self, total: int) -> int:
        if self.count is not None:
            return self.count
        assert self.percent is not None
        return max(1, int(total * self.percent / 100)) if self.percent > 0 else 0


@dataclass
class PrunePlan:
    """The stored paths a prune takes off (`paths`: (path, id)), how many records that deletes (no path left),
    why anything was held back (`refused`; empty when the whole prune may go ahead) and the gone paths a refusal
    kept (`held_back`: what `--force` would also take off)."""

    paths: list[tuple[str, str]] = field(default_factory=list)
    deletes: int = 0
    refused: list[str] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)


#: why a root's stored records are not trusted to be gone
_ROOT_PROBLEM = {
    "missing": "does not exist (an unmounted share or a moved folder?)",
    "unreadable": "cannot be listed (permissions? an unreachable share?)",
    "empty": "holds no images or videos (an empty mount point?)",
}


def plan_prune(
    known: Known,
    seen: set[str],
    listings: Sequence[RootListing],
    *,
    limit: DeleteLimit,
    force: bool = False,
    keep_ids: set[str] | frozenset[str] = frozenset(),
) -> PrunePlan:
    """What `--prune` may take off: stored paths the scan did not see and that are not on disk, under roots
    that were listed in this run (a missing, unreadable or empty root with stored records under it is refused,
    as are folders below a root that could not be listed); then at most `limit` deleted records. `force` lifts
    both checks. `keep_ids`: records that got a new path in this run (moved, not deleted)."""
    plan = PrunePlan()
    taken: dict[str, str] = {}
    for listing in listings:
        stored = known.stored_under(listing.path)
        if not stored:
            continue
        gone = [
            (p, rid) for p, rid in stored if p not in seen and not under(p, listing.unlisted) and not exists(p, seen)
        ]
        problem = listing.state if not listing.listed else ("empty" if listing.images == 0 else None)
        if problem and gone and not force:
            plan.refused.append(
                f"{listing.path} {_ROOT_PROBLEM[problem]}, yet {len(stored)} stored file(s) are under it: nothing "
                "under it was pruned (check the folder; --force prunes them anyway)"
            )
            plan.held_back.extend(p for p, _ in gone)
            continue
        taken.update(gone)
    paths_of: dict[str, set[str]] = {}
    for p, (rid, _, _) in known.by_path.items():
        paths_of.setdefault(rid, set()).add(p)
    ids = {rid for rid in taken.values() if rid not in keep_ids}
    deletes = sum(1 for rid in ids if paths_of.get(rid, set()) <= taken.keys())
    total = len(known.ids)
    if not force and deletes > limit.allowed(total):
        share = f"{100 * deletes / total:.0f}%" if total else "all"
        plan.refused.append(
            f"the prune would delete {deletes} of {total} assets ({share}), over the limit of {limit.text} "
            f"(--max-delete): nothing was pruned (raise --max-delete, or --force, if that is right)"
        )
        plan.held_back.extend(taken)
        plan.held_back.sort()
        return plan
    plan.paths = sorted(taken.items())
    plan.deletes = deletes
    return plan


class Claims:
    """Which content ids this run takes: the first new copy of some bytes is embedded, later copies (and bytes
    already stored) become path updates. Thread-safe; `in` answers "stored or claimed"."""

    def __init__(self, known_ids: set[str]) -> None:
        self.known = known_ids
        self.claimed: set[str] = set()
        self.failed: dict[str, str] = {}  # content id → why it could not be ingested (this run)
        self._lock = threading.Lock()

    def __contains__(self, rid: object) -> bool:
        return rid in self.known or rid in self.claimed

    def take(self, rid: str) -> bool:
        """Claim `rid` for this caller; False when it is stored or claimed already."""
        with self._lock:
            if rid in self:
                return False
            self.claimed.add(rid)
            return True

    def fail(self, rid: str, reason: str, *, release: bool = False) -> None:
        """`rid` could not be ingested (its copies share its fate); `release` gives its claim back."""
        with self._lock:
            if release:
                self.claimed.discard(rid)
            self.failed.setdefault(rid, reason)


class PathUpdates:
    """Pending path additions and removals, grouped by record id."""

    def __init__(self) -> None:
        self.adds: dict[str, list[FileEntry]] = {}
        self.removes: dict[str, set[str]] = {}

    def add(self, rid: str, entry: FileEntry) -> None:
        self.adds.setdefault(rid, []).append(entry)

    def remove(self, rid: str, path: str) -> None:
        self.removes.setdefault(rid, set()).add(path)

    def ids(self) -> Iterable[str]:
        return dict.fromkeys([*self.adds, *self.removes])

    @property
    def size(self) -> int:
        return len(self.adds) + len(self.removes)

    def clear(self) -> None:
        self.adds.clear()
        self.removes.clear()


def apply_updates(
    store: Store, updates: PathUpdates, known: Known, claims: Claims, report: IngestReport, *, mid_run: bool
) -> None:
    """Apply path additions/removals to stored records (one read and one write per record).

    `mid_run`: copies of content claimed by this run whose record is not written yet (the copy that claimed
    the bytes can come after this one in scan order) stay queued instead of failing.
    """
    if not updates.size:
        return
    ids = list(updates.ids())
    records = _records(store, ids)
    upserts: list[dict[str, Any]] = []
    deletes: list[str] = []
    waiting: dict[str, list[FileEntry]] = {}
    for rid in ids:
        rows = records.get(rid)
        if rows is None and mid_run and rid in claims.claimed and rid not in claims.failed:
            waiting[rid] = updates.adds.get(rid, [])
            continue
        if rows is None:  # its byte-identical twin failed earlier in this run: same bytes, same fate
            reason = claims.failed.get(rid, "an identical copy of this file could not be ingested")
            report.errors.extend(FileError(a.path, reason) for a in updates.adds.get(rid, []))
            continue
        adds, removes = updates.adds.get(rid, []), updates.removes.get(rid, set())
        # a video's keyframes all take the same paths (the first one counts in the report)
        changed = [_with_paths(row, adds, removes, report if i == 0 else IngestReport()) for i, row in enumerate(rows)]
        if changed[0] is None:
            deletes.extend(r["id"] for r in rows)
            report.pruned += 1
            continue
        upserts.extend(r for r in changed if r is not None)
        report.updated += 1
        for p in removes:
            known.by_path.pop(p, None)
    store.upsert(upserts)
    store.delete(deletes)
    updates.clear()
    updates.adds.update(waiting)


def _records(store: Store, keys: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Record key → its rows with every field: an image's one row, or a video's keyframes (by `video_id`)."""
    if store.model_info() is None:
        return {}
    fields = (*SCALAR_FIELDS, "vector")
    out: dict[str, list[dict[str, Any]]] = {r["id"]: [r] for r in store.get(keys, fields)}
    rest = [k for k in keys if k not in out]
    if rest:
        for row in store.iterate(fields, filter=F.one_of("video_id", rest)):
            out.setdefault(row["video_id"], []).append(row)
        for rows in out.values():
            rows.sort(key=lambda r: float(r.get("time") or 0.0))
    return out


def _with_paths(
    row: dict[str, Any], adds: list[FileEntry], removes: set[str], report: IngestReport
) -> dict[str, Any] | None:
    """`row` with `adds` joined and `removes` taken off its paths; None when no path is left (delete it)."""
    added = {a.path for a in adds}
    pairs = [
        (p, m)
        for p, m in zip(row.get("paths") or [], row.get("mtimes") or [], strict=False)
        if p not in removes and p not in added
    ]
    # paths that vanished from disk (the file moved) are dropped when a new one arrives
    if adds:
        kept = [(p, m) for p, m in pairs if exists(p)]
        report.duplicates += len(adds) if kept else len(adds) - 1
        pairs = kept
    pairs.extend((a.path, a.mtime) for a in adds)
    if not pairs:
        return None
    pairs = pairs[:MAX_PATHS]
    moved = pairs[0][0] != row.get("path")
    row["paths"] = [p for p, _ in pairs]
    row["mtimes"] = [int(m) for _, m in pairs]
    row["path"] = pairs[0][0]
    row["mtime"] = int(pairs[0][1])
    row["filename"] = os.path.basename(pairs[0][0])
    if adds:
        # a moved record takes its new folder's tags; a copy adds its folder's tags
        base_tags = [] if moved else list(row.get("tags") or [])
        row["tags"] = merge_tags(base_tags, [t for a in adds for t in a.tags])
        primary = next((a for a in adds if a.path == row["path"]), None)
        if primary is not None:
            row["collection"] = primary.collection
            row["metadata"] = {**(row.get("metadata") or {}), **primary.metadata}
    return row


def exists(path: str, listed: set[str] | None = None) -> bool:
    """Is `path` still there? A file: on disk. An object URL: in this run's listing (`listed`, when the
    caller has one — a listed prefix is the truth, no request per object), else one HEAD request."""
    if objects.is_url(path):
        if listed is not None:
            return path in listed
        return objects.exists(path)
    return os.path.exists(path)


def under(path: str, roots: Sequence[str | Path]) -> bool:
    """True when `path` is one of `roots` or inside one (object URLs: by key prefix)."""
    for root in roots:
        if objects.is_url(os.fspath(root)) or objects.is_url(path):
            if objects.is_url(os.fspath(root)) and objects.is_url(path) and objects.under(path, os.fspath(root)):
                return True
            continue
        r = os.path.abspath(os.fspath(root))
        if path == r or path.startswith(r.rstrip(os.sep) + os.sep):
            return True
    return False
