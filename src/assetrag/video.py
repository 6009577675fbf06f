"""Video files as assets: open a video safely, sample its keyframes, decode the frame at a time (PyAV).

A video in an ingested folder becomes one asset row per keyframe (see `ingest.video` for ids and rows). This
module only reads videos, with bounded memory and time:

* `probe` / `open_video` refuse, with a reason (`BadVideoError`), a file FFmpeg cannot open (truncated,
  garbage), one without a video stream, a codec this FFmpeg build cannot decode, an absurd length
  (> `MAX_VIDEO_SECONDS`) or picture size (> `MAX_VIDEO_SIDE` a side or `MAX_PIXELS`).
* `sample_keyframes` looks at candidate frames every `step` seconds (seeking past what it skips, so a 3-hour
  file costs about as many decoded GOPs as candidates) and keeps a candidate when the picture changed (a
  scene change: a 32×32 grey thumbnail differs from the last keyframe's by more than `scene_threshold`, at
  least `min_gap` seconds after it) or `interval` seconds passed; at most `max_keyframes` a video, spread so
  the end of a long video is never starved by scene changes at its start. Only kept frames become RGB
  images (long side ≤ `max_side`); decoding runs with FFmpeg's own threads (`thread_type="AUTO"`).
* `frame_at` decodes the frame shown at a time (thumbnails, contact sheets, generation references).

Settings (environment): `ASSETRAG_MAX_KEYFRAMES` (200), `ASSETRAG_KEYFRAME_INTERVAL` (10 s),
`ASSETRAG_KEYFRAME_MIN_GAP` (1 s); see `SamplingOptions`.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from assetrag.decode import DEFAULT_MAX_SIDE, MAX_PIXELS
from assetrag.errors import BadVideoError, ConfigError

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv"})
#: the browser's type for each extension (the server streams the original with it)
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
}
#: longer is refused as absurd (a stream with a broken duration, or a surveillance dump)
MAX_VIDEO_SECONDS = 24 * 3600.0
MAX_VIDEO_SIDE = 16384
#: candidates looked at per video at most: the candidate step grows with the length (3 h → every 5.4 s)
MAX_CANDIDATES = 2000
#: the finest candidate step, seconds (the scene-change resolution of short videos)
MIN_STEP = 0.5
#: a candidate further ahead than this is reached by seeking, nearer ones by decoding forward
SEEK_AFTER = 2.0
#: frames decoded per video at most (a file with one keyframe in hours cannot make a run decode forever)
MAX_DECODED_FRAMES = 100_000
#: mean absolute difference (0..255) of two 32×32 grey thumbnails that counts as a new scene
SCENE_THRESHOLD = 24.0


def is_video(path: str | Path) -> bool:
    """True when the file name says video (`VIDEO_EXTENSIONS`)."""
    return os.path.splitext(os.fspath(path))[1].lower() in VIDEO_EXTENSIONS


def media_type(path: str | Path) -> str:
    return MEDIA_TYPES.get(os.path.splitext(os.fspath(path))[1].lower(), "application/octet-stream")


def moment_label(name: str, time: float | None) -> str:
    """How a moment of a video is named everywhere (CLI table, contact sheet): `video.mp4 @ 12.5s`."""
    return name if time is None or time < 0 else f"{name} @ {time:.1f}s"


def _env_number(name: str, default: float, low: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < low:
        raise ConfigError(f"{name} must be at least {low:g}, got {raw!r}")
    return value


@dataclass(frozen=True)
class SamplingOptions:
    """How keyframes are picked: at most `max_keyframes` a video; one at least every `interval` seconds
    (raised to length / `max_keyframes` for long videos); scene changes at least `min_gap` seconds apart."""

    max_keyframes: int = 200
    interval: float = 10.0
    min_gap: float = 1.0
    scene_threshold: float = SCENE_THRESHOLD

    @classmethod
    def from_env(cls) -> SamplingOptions:
        return cls(
            max_keyframes=int(_env_number("ASSETRAG_MAX_KEYFRAMES", 200, 1)),
            interval=_env_number("ASSETRAG_KEYFRAME_INTERVAL", 10.0, 0.1),
            min_gap=_env_number("ASSETRAG_KEYFRAME_MIN_GAP", 1.0, 0.0),
        )


@dataclass(frozen=True)
class VideoInfo:
    """What `probe` learns: length (seconds; 0 when the container does not say), picture size, codec."""

    duration: float
    width: int
    height: int
    codec: str
    fps: float


@dataclass
class Keyframe:
    time: float  # seconds from the start of the video
    image: Image.Image  # RGB, long side ≤ max_side


def _av() -> Any:
    try:
        import av
    except ImportError as exc:  # a declared dependency; say what to do if it is missing anyway
        raise BadVideoError("", "PyAV is not installed (pip install av); videos cannot be read") from exc
    return av


@contextlib.contextmanager
def open_video(path: str | Path) -> Iterator[tuple[Any, Any, VideoInfo]]:
    """(container, video stream, info) of a readable video, closed afterwards; `BadVideoError` says why not."""
    av = _av()
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except OSError as exc:
        raise BadVideoError(name, f"cannot read the file ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(st.st_mode):
        raise BadVideoError(name, "not a regular file (a FIFO, socket or device named like a video); remove it")
    if st.st_size == 0:
        raise BadVideoError(name, "empty file (0 bytes); re-export or remove it")
    try:
        container = av.open(name, metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise BadVideoError(name, f"not a video FFmpeg can open ({_why(exc)}); the file may be truncated") from exc
    try:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["no streams"]
            raise BadVideoError(name, f"no video stream (only {', '.join(kinds)}); nothing to show")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None:
            raise BadVideoError(name, "this FFmpeg build has no decoder for its video codec")
        stream.thread_type = "AUTO"
        info = _info(container, stream)
        if info.width <= 0 or info.height <= 0:
            raise BadVideoError(name, "the video stream has no picture size; the file is damaged")
        if max(info.width, info.height) > MAX_VIDEO_SIDE or info.width * info.height > MAX_PIXELS:
            raise BadVideoError(name, f"{info.width}×{info.height} pixels is beyond the limit for a video")
        if info.duration > MAX_VIDEO_SECONDS:
            raise BadVideoError(
                name, f"{info.duration / 3600:.1f} hours is longer than the {MAX_VIDEO_SECONDS / 3600:.0f}-hour limit"
            )
        yield container, stream, info
    finally:
        container.close()


def _why(exc: BaseException) -> str:
    text = str(getattr(exc, "strerror", None) or exc)
    return text.split(": '")[0].strip() or type(exc).__name__


def _info(container: Any, stream: Any) -> VideoInfo:
    duration = 0.0
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
    ctx = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate
    return VideoInfo(
        duration=max(duration, 0.0),
        width=int(ctx.width or 0),
        height=int(ctx.height or 0),
        codec=str(ctx.name),
        fps=float(rate) if rate else 0.0,
    )


def probe(path: str | Path) -> VideoInfo:
    """A video's length, size and codec (`BadVideoError` when it cannot be used)."""
    with open_video(path) as (_, _, info):
        return info


def _start(stream: Any) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _frames_at(container: Any, stream: Any, targets: Iterator[float], name: str) -> Iterator[tuple[float, Any]]:
    """(time, frame) of the first frame at or after each target time (seconds from the start), in order;
    seeks when the next target is more than `SEEK_AFTER` seconds ahead. Stops at the end of the stream."""
    av = _av()
    tb, start = stream.time_base, _start(stream)
    half = 0.5 / float(stream.average_rate) if stream.average_rate else 0.001
    frames: Iterator[Any] | None = None
    last = -math.inf
    decoded = 0
    for target in targets:
        try:
            if frames is None or target - last > SEEK_AFTER:
                if target > 0:
                    container.seek(int((start + target) / tb), stream=stream, backward=True, any_frame=False)
                frames = container.decode(stream)
            for frame in frames:
                decoded += 1
                if decoded > MAX_DECODED_FRAMES:
                    return
                if frame.pts is None:
                    continue
                t = float(frame.pts * tb) - start
                last = t
                if t + half >= target:
                    yield max(t, 0.0), frame
                    break
            else:
                return  # the end of the stream
        except av.FFmpegError as exc:
            raise BadVideoError(name, f"FFmpeg could not decode it ({_why(exc)})") from exc


def _signature(frame: Any) -> np.ndarray:
    return frame.reformat(width=32, height=32, format="gray").to_ndarray().astype(np.float32)


def _image(frame: Any, max_side: int) -> Image.Image:
    w, h = frame.width, frame.height
    scale = min(1.0, max_side / max(w, h))
    size = {"width": max(1, round(w * scale)), "height": max(1, round(h * scale))} if scale < 1 else {}
    return frame.to_image(**size).convert("RGB")


def sample_keyframes(
    path: str | Path, options: SamplingOptions | None = None, *, max_side: int = DEFAULT_MAX_SIDE
) -> Iterator[Keyframe]:
    """The keyframes of a video, in time order (see the module doc). Raises `BadVideoError` — also when not a
    single frame decodes."""
    opts = options or SamplingOptions()
    name = os.fspath(path)
    with open_video(name) as (container, stream, info):
        duration = info.duration
        interval = max(opts.interval, duration / opts.max_keyframes) if duration else opts.interval
        step = max(MIN_STEP, duration / MAX_CANDIDATES) if duration else MIN_STEP
        if info.fps:
            step = max(step, 1.0 / info.fps)

        def targets() -> Iterator[float]:
            for k in range(MAX_CANDIDATES):
                t = k * step
                if duration and t >= duration:
                    return
                yield t

        kept = 0
        last_t, last_sig = -math.inf, None
        for t, frame in _frames_at(container, stream, targets(), name):
            sig = _signature(frame)
            since = t - last_t
            take = last_sig is None or since >= interval - 1e-6
            if not take and since >= opts.min_gap and float(np.abs(sig - last_sig).mean()) > opts.scene_threshold:
                # a scene change, unless the keyframes left are needed to cover the rest at `interval`
                needed = math.floor(max(duration - t, 0.0) / interval) if duration else 0
                take = opts.max_keyframes - kept - 1 >= needed
            if not take:
                continue
            yield Keyframe(time=round(t, 3), image=_image(frame, max_side))
            kept += 1
            last_t, last_sig = t, sig
            if kept >= opts.max_keyframes:
                break
        if kept == 0:
            raise BadVideoError(name, f"not one frame could be decoded (codec {info.codec}); the file may be damaged")


def frame_at(path: str | Path, time: float, *, max_side: int | None = DEFAULT_MAX_SIDE) -> Image.Image:
    """The frame a video shows at `time` seconds (the first frame at or after it), RGB, long side ≤ max_side
    (None: full size). `BadVideoError` when the file cannot be read or has no frame there."""
    name = os.fspath(path)
    with open_video(name) as (container, stream, _):
        for _, frame in _frames_at(container, stream, iter([max(float(time), 0.0)]), name):
            return _image(frame, max_side or max(frame.width, frame.height))
    raise BadVideoError(name, f"no frame at {time:.3f}s (the video is shorter)")
