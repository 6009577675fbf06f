"""Videos in an ingest run: hash, claim, sample keyframes (`assetrag.video`), embed them, write them at once.

Ids. The sha256 of the video file's bytes identifies the video (`video_id`, like an image's `id`: a copy or a
move of the same bytes is one video). Each keyframe is a row of its own with primary key
`keyframe_id(video_id, time)` = sha256 of `"<video_id>@<milliseconds>"` (64 hex digits, the `id` field), its
`time` in seconds, `media` = "video_frame", and `frames` = the number of keyframes the video has.

All or nothing. A video's keyframes are written in one upsert after all of them are embedded; the incremental
check (`known.Known`) counts a video as stored only when `frames` rows carry its `video_id`, and the next run
deletes the keyframes of a video left incomplete (a kill -9 inside the upsert) and samples it again.

Bounded. The file is hashed in 1 MiB chunks (never read whole), keyframes are embedded `batch_size` at a
time (only their vectors are kept), at most `SamplingOptions.max_keyframes` a video (`ASSETRAG_MAX_KEYFRAMES`).
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import Any

import numpy as np

from assetrag.errors import AssetragError, BadVideoError
from assetrag.ingest.known import PathUpdates
from assetrag.ingest.rows import FileError, Item, new_row
from assetrag.ingest.scan import FileEntry
from assetrag.ingest.stages import RunContext
from assetrag.store.migrations import crash_point
from assetrag.store.schema import MEDIA_VIDEO_FRAME
from assetrag.video import SamplingOptions, sample_keyframes

CHUNK = 1 << 20


def keyframe_id(video_id: str, time: float) -> str:
    """The primary key of the keyframe of video `video_id` at `time` seconds (millisecond resolution)."""
    return hashlib.sha256(f"{video_id}@{round(time * 1000)}".encode()).hexdigest()


def hash_video(path: str) -> tuple[str | None, str | None]:
    """(sha256 of the file, None), or (None, why not) — read in chunks, never whole; never raises."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return None, f"cannot read the file ({exc.strerror or exc})"
    try:
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None, "not a regular file (a FIFO, socket or device named like a video); remove it"
            h, n = hashlib.sha256(), 0
            while chunk := fh.read(CHUNK):
                h.update(chunk)
                n += len(chunk)
    except OSError as exc:
        return None, f"cannot read the file ({exc.strerror or exc})"
    if n == 0:
        return None, "empty file (0 bytes); re-export or remove it"
    return h.hexdigest(), None


class VideoStage:
    """Videos of one run, one at a time in the runner's thread (after the images' batches are written)."""

    def __init__(self, ctx: RunContext, options: SamplingOptions | None = None) -> None:
        self.ctx = ctx
        self.options = options or SamplingOptions.from_env()

    def ingest(self, entry: FileEntry, updates: PathUpdates) -> str | None:
        """Store `entry`'s keyframes, or queue a path update when its bytes are stored already (then its video
        id is returned: the stored record got a path, it was not deleted); a bad video becomes a `FileError`
        with the reason."""
        ctx, report = self.ctx, self.ctx.report
        with ctx.times.timed("read"):
            vid, error = hash_video(entry.path)
        if vid is None:
            report.errors.append(FileError(entry.path, error or "unreadable"))
            return None
        if not ctx.claims.take(vid):  # stored (a move, copy or touch) or a copy sampled earlier in this run
            if vid in ctx.claims.failed:
                report.errors.append(FileError(entry.path, ctx.claims.failed[vid]))
                return None
            updates.add(vid, entry)
            return vid
        try:
            rows = self._rows(vid, entry)
        except BadVideoError as exc:
            ctx.claims.fail(vid, exc.reason)
            report.errors.append(FileError(entry.path, exc.reason))
            return None
        except AssetragError:
            raise
        except Exception as exc:  # a decoder or model failure costs this video only
            reason = f"could not ingest the video ({type(exc).__name__}: {exc})"
            ctx.claims.fail(vid, reason)
            report.errors.append(FileError(entry.path, reason))
            return None
        crash_point("video.embedded")  # tests: a kill -9 after sampling and embedding, before the write
        with ctx.times.timed("write"):
            ctx.store.upsert(rows)  # every keyframe in one upsert: all of the video or none
        crash_point("video.written")  # tests: a kill -9 after the write, before the run goes on
        report.added += 1
        report.decoded += 1
        report.videos += 1
        report.keyframes += len(rows)
        report.video_seconds += float(rows[-1]["metadata"].get("duration", 0.0)) if rows else 0.0
        return None

    def _rows(self, vid: str, entry: FileEntry) -> list[dict[str, Any]]:
        from assetrag.video import probe

        ctx = self.ctx
        emb = ctx.embedder()
        with ctx.times.timed("video decode"):
            info = probe(entry.path)
        times: list[float] = []
        vectors: list[np.ndarray] = []
        pending: list[Any] = []

        def flush() -> None:
            if pending:
                with ctx.times.timed("embed"):
                    vectors.extend(emb.embed_images([k.image for k in pending]))
                pending.clear()

        frames = sample_keyframes(entry.path, self.options, max_side=ctx.max_side)
        while True:
            with ctx.times.timed("video decode"):
                kf = next(frames, None)
            if kf is None:
                break
            times.append(kf.time)
            pending.append(kf)
            if len(pending) >= ctx.batch_size:
                flush()
        flush()
        item = Item(entry, id=vid)
        rows = []
        for t, vec in zip(times, vectors, strict=True):
            row = new_row(item, vec, size=(info.width, info.height))
            row.update(
                id=keyframe_id(vid, t),
                media=MEDIA_VIDEO_FRAME,
                time=float(t),
                video_id=vid,
                frames=len(times),
            )
            row["metadata"] = {**row["metadata"], "duration": round(info.duration, 3), "codec": info.codec}
            rows.append(row)
        return rows
