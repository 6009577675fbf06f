"""Video files as assets: open a video safely, sample its keyframes, decode the frame at a time (PyAV).

A video in an ingested folder becomes one asset row per keyframe (see `ingest.video` for ids and rows). This
module only reads videos, with bounded memory and time:

* `probe` / `open_video` refuse, with a reason (`BadVideoError`), a file FFmpeg cannot open (truncated,
  garbage), one without a video stream, a codec this FFmpeg build cannot decode, an absurd length
  (> `MAX_VIDEO_SECONDS`) or picture size (> `MAX_VIDEO_SIDE` a side or `MAX_PIXELS`).
* `sample_keyframes` looks at candidate frames every `step` seconds and keeps a candidate when the picture
  changed (a scene change: a 32×32 grey thumbnail differs from the last keyframe's by more than
  `scene_threshold`, at least `min_gap` seconds after it) or `interval` seconds passed; at most
  `max_keyframes` a video, spread so the end of a long video is never starved by scene changes at its start.
  It works on two levels: first the stream's key (I) frames alone (only their packets are decoded, at most one
  per `step`); a GOP — the stretch between two of them — is decoded, forward from its key frame, only where a
  keyframe may be kept in it: a key frame at its ends differs from the last keyframe by more than
  `SKIP_MARGIN` × the threshold, its packet sizes show a spike (a cut or a jump between key frames), an
  interval keyframe falls due, or it is the last. So an ordinary video decodes a fraction of its frames, with
  the keyframes of decoding every candidate. A stream whose first frame is not a key frame, or whose key-frame
  scan fails, is sampled candidate by candidate (seeking past what it skips); `SamplingStats` counts the work.
  Only kept frames become RGB images (long side ≤ `max_side`); decoding runs with FFmpeg's own threads
  (`thread_type="AUTO"`).
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
#: look at the key (I) frames first and decode only the GOPs where a keyframe may be kept (off: every candidate)
KEY_FRAME_SCAN = True
#: a GOP is decoded when a key frame at its ends differs from the last keyframe by more than this × the threshold
SKIP_MARGIN = 0.5
#: a GOP is decoded when one of its packets is over SPIKE × the mean size of the others and over SPIKE_OF_KEY × the
#: size of its key packet (a cut or a jump between key frames)
SPIKE = 4.0
SPIKE_OF_KEY = 0.1


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
class SamplingStats:
    """What `sample_keyframes` did for one video (tests and benchmarks read it)."""

    method: str = ""  # "key frames" (two levels) or "candidates" (every candidate decoded)
    decoded: int = 0  # frames decoded in full (every frame of the stretches decoded, not only candidates)
    key_frames: int = 0  # key frames decoded by the key-frame scan
    candidates: int = 0  # frames compared against the last keyframe
    gops: int = 0  # GOPs between two key frames
    gops_skipped: int = 0  # of those, GOPs not decoded at all


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


class _Decoder:
    """Full decoding of one stream: the first frame at or after a time, decoding forward from the last frame
    when that is near and seeking otherwise; counts the frames it decodes (at most `MAX_DECODED_FRAMES`)."""

    def __init__(self, container: Any, stream: Any, name: str, stats: SamplingStats) -> None:
        self.container, self.stream, self.name, self.stats = container, stream, name, stats
        self.tb, self.start = stream.time_base, _start(stream)
        self.half = 0.5 / float(stream.average_rate) if stream.average_rate else 0.001
        self.frames: Iterator[Any] | None = None
        self.last = -math.inf  # the time of the last frame decoded

    def first_at(self, target: float, gop: tuple[float, int] | None = None) -> tuple[float, Any] | None:
        """(time, frame) of the first frame at or after `target`; None at the end of the stream (or of the
        budget). `gop`: (time, pts) of the key frame that starts the target's GOP, when known: reached by seeking
        when the last frame decoded is before it, else by decoding forward (a seek would land on it again)."""
        av = _av()
        try:
            far = target - self.last > SEEK_AFTER if gop is None else gop[0] > self.last
            if self.frames is None or far:
                if gop is not None:
                    self.container.seek(gop[1], stream=self.stream, backward=True, any_frame=False)
                elif target > 0:
                    self.container.seek(
                        int((self.start + target) / self.tb), stream=self.stream, backward=True, any_frame=False
                    )
                self.frames = self.container.decode(self.stream)
            for frame in self.frames:
                self.stats.decoded += 1
                if self.stats.decoded > MAX_DECODED_FRAMES:
                    self.frames = iter(())
                    return None
                if frame.pts is None:
                    continue
                t = float(frame.pts * self.tb) - self.start
                self.last = t
                if t + self.half >= target:
                    return max(t, 0.0), frame
            self.frames = iter(())
            return None  # the end of the stream
        except av.FFmpegError as exc:
            raise BadVideoError(self.name, f"FFmpeg could not decode it ({_why(exc)})") from exc


def _frames_at(container: Any, stream: Any, targets: Iterator[float], name: str) -> Iterator[tuple[float, Any]]:
    """(time, frame) of the first frame at or after each target time (seconds from the start), in order;
    seeks when the next target is more than `SEEK_AFTER` seconds ahead. Stops at the end of the stream."""
    decoder = _Decoder(container, stream, name, SamplingStats())
    for target in targets:
        got = decoder.first_at(target)
        if got is None:
            return
        yield got


def _key_frames(path: str, step: float, stats: SamplingStats) -> Iterator[tuple[float, int, Any, bool]]:
    """(time, pts, frame, busy) of key frames of the video, at least `step` seconds apart, in order, decoding no
    other frame: only their packets reach the decoder. busy: the stretch before the key frame had a spike — a
    packet over `SPIKE` × the mean size of the others and over `SPIKE_OF_KEY` × the previous key packet's (a cut,
    a scroll or a jump that the key frames around it may not show); True when not known. Stops — the caller
    then decodes candidates; `stats.method` says why — at a frame that is not a key frame, one without a time, or
    a decoding error."""
    av = _av()
    with open_video(path) as (container, stream, _):
        stream.codec_context.skip_frame = "NONKEY"  # should another packet reach it
        tb, start = stream.time_base, _start(stream)
        busy: dict[int, bool] = {}  # key packet pts → whether the stretch before it had a spike
        last = -math.inf  # the time of the last key packet decoded
        key_size, total, count, top = 0, 0, 0, 0  # of the stretch being read
        try:
            for packet in container.demux(stream):
                if packet.size and not packet.is_keyframe:
                    total, count, top = total + packet.size, count + 1, max(top, packet.size)
                    continue
                if packet.size and packet.pts is not None:
                    t = float(packet.pts * tb) - start
                    if t < last + step - 1e-6:
                        continue  # a key frame within `step` of the last one: not needed
                    last = t
                    if key_size:
                        rest = (total - top) / (count - 1) if count > 1 else 0.0
                        busy[packet.pts] = top > SPIKE * rest and top > SPIKE_OF_KEY * key_size
                    key_size, total, count, top = packet.size, 0, 0, 0
                for frame in packet.decode():  # a key packet, or the empty one that drains the decoder
                    if not frame.key_frame or frame.pts is None:
                        stats.method = "key frames, then candidates (a frame not marked key, or without a time)"
                        return
                    yield max(float(frame.pts * tb) - start, 0.0), frame.pts, frame, busy.pop(frame.pts, True)
        except av.FFmpegError as exc:
            stats.method = f"key frames, then candidates (FFmpeg: {_why(exc)})"


def _signature(frame: Any) -> np.ndarray:
    return frame.reformat(width=32, height=32, format="gray").to_ndarray().astype(np.float32)


def _image(frame: Any, max_side: int) -> Image.Image:
    w, h = frame.width, frame.height
    scale = min(1.0, max_side / max(w, h))
    size = {"width": max(1, round(w * scale)), "height": max(1, round(h * scale))} if scale < 1 else {}
    return frame.to_image(**size).convert("RGB")


def _differ(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


class _Picker:
    """The keep-or-skip rule over candidates in time order: the first; one `interval` after the last keyframe;
    a scene change (the signature differs from the last keyframe's by more than the threshold, at least `min_gap`
    after it) while enough keyframes are left to cover the rest at `interval`."""

    def __init__(self, opts: SamplingOptions, interval: float, duration: float, max_side: int) -> None:
        self.opts, self.interval, self.duration, self.max_side = opts, interval, duration, max_side
        self.kept = 0
        self.last_t, self.last_sig = -math.inf, None

    @property
    def full(self) -> bool:
        return self.kept >= self.opts.max_keyframes

    def consider(self, t: float, frame: Any, sig: np.ndarray) -> Keyframe | None:
        opts = self.opts
        since = t - self.last_t
        take = self.last_sig is None or since >= self.interval - 1e-6
        if not take and since >= opts.min_gap and _differ(sig, self.last_sig) > opts.scene_threshold:
            # a scene change, unless the keyframes left are needed to cover the rest at `interval`
            needed = math.floor(max(self.duration - t, 0.0) / self.interval) if self.duration else 0
            take = opts.max_keyframes - self.kept - 1 >= needed
        if not take:
            return None
        self.kept += 1
        self.last_t, self.last_sig = t, sig
        return Keyframe(time=round(t, 3), image=_image(frame, self.max_side))

    def may_keep_before(self, end: float, sigs: tuple[np.ndarray | None, ...]) -> bool:
        """Whether a candidate before `end` might be kept, judging by the signatures of the key frames around it
        (None: unknown): an interval keyframe falls due, or a key frame differs from the last keyframe by more
        than `SKIP_MARGIN` × the threshold (a GOP that changes in between, and back, is not seen)."""
        if self.last_sig is None or self.last_t + self.interval - 1e-6 < end:
            return True
        if end - self.last_t < self.opts.min_gap:
            return False  # too soon for a scene change
        limit = SKIP_MARGIN * self.opts.scene_threshold
        return any(s is None or _differ(s, self.last_sig) > limit for s in sigs)


def sample_keyframes(
    path: str | Path,
    options: SamplingOptions | None = None,
    *,
    max_side: int = DEFAULT_MAX_SIDE,
    stats: SamplingStats | None = None,
) -> Iterator[Keyframe]:
    """The keyframes of a video, in time order (see the module doc); `stats` (when given) counts the work.
    Raises `BadVideoError` — also when not a single frame decodes."""
    opts = options or SamplingOptions()
    stats = stats if stats is not None else SamplingStats()
    name = os.fspath(path)
    with open_video(name) as (container, stream, info):
        duration = info.duration
        interval = max(opts.interval, duration / opts.max_keyframes) if duration else opts.interval
        step = max(MIN_STEP, duration / MAX_CANDIDATES) if duration else MIN_STEP
        if info.fps:
            step = max(step, 1.0 / info.fps)
        picker = _Picker(opts, interval, duration, max_side)
        decoder = _Decoder(container, stream, name, stats)
        k = 0  # the next candidate is at k × step; those before it were looked at or skipped

        def candidates(
            end: float, gop: tuple[float, int, Any] | None, sigs: tuple[Any, ...] | None
        ) -> Iterator[Keyframe]:
            """Candidates from k up to `end` seconds (in a GOP: half a frame before the next key frame) while the
            key frames' signatures `sigs` (None: not known) say a keyframe may be kept there."""
            nonlocal k
            while k < MAX_CANDIDATES and not picker.full:
                target = k * step
                if target >= end or (duration and target >= duration):
                    return
                if sigs is not None and not picker.may_keep_before(end, sigs):
                    return
                k += 1
                if gop is not None and target <= gop[0] + decoder.half:
                    got = gop[0], gop[2]  # the key frame itself: decoded already
                else:
                    got = decoder.first_at(target, gop and (gop[0], gop[1]))
                if got is None:
                    k = MAX_CANDIDATES  # the end of the stream
                    return
                t, frame = got
                stats.candidates += 1
                kept = picker.consider(t, frame, _signature(frame))
                if kept is not None:
                    if sigs is not None:
                        sigs = sigs[1:]  # the GOP's start is behind the new keyframe: only its end counts
                    yield kept

        keys = _key_frames(name, step, stats) if KEY_FRAME_SCAN else (key for key in ())
        stats.method = "key frames"  # unless the scan stops early (it says why) or finds no key frame at the start
        first = next(keys, None)
        if first is not None and first[0] <= decoder.half:
            # two levels: the key frames first; a GOP is decoded (at the candidate step) only where a key frame at
            # its ends differs from the last keyframe or an interval keyframe falls due in it
            ta, pa, fa, _ = first
            sa = _signature(fa)
            stats.key_frames += 1
            stats.candidates += 1
            k = 1
            kept = picker.consider(ta, fa, sa)  # the first frame is the first keyframe
            if kept is not None:
                yield kept
            for tb, pb, fb, busy in keys:
                if picker.full or k >= MAX_CANDIDATES:
                    break
                sb = _signature(fb)
                stats.key_frames += 1
                stats.gops += 1
                before = stats.candidates
                end = tb - decoder.half
                yield from candidates(end, (ta, pa, fa), (sa, None if busy else sb))
                if stats.candidates == before:
                    stats.gops_skipped += 1
                k = max(k, math.ceil(end / step - 1e-9))
                ta, pa, fa, sa = tb, pb, fb, sb
            keys.close()
            # the last GOP (where it ends is not known), or the rest when the scan stopped early
            yield from candidates(math.inf, (ta, pa, fa) if stats.method == "key frames" else None, None)
        else:
            keys.close()
            stats.method = "candidates"
            yield from candidates(math.inf, None, None)
        if picker.kept == 0:
            raise BadVideoError(name, f"not one frame could be decoded (codec {info.codec}); the file may be damaged")


def frame_at(path: str | Path, time: float, *, max_side: int | None = DEFAULT_MAX_SIDE) -> Image.Image:
    """The frame a video shows at `time` seconds (the first frame at or after it), RGB, long side ≤ max_side
    (None: full size). `BadVideoError` when the file cannot be read or has no frame there."""
    name = os.fspath(path)
    with open_video(name) as (container, stream, _):
        for _, frame in _frames_at(container, stream, iter([max(float(time), 0.0)]), name):
            return _image(frame, max_side or max(frame.width, frame.height))
    raise BadVideoError(name, f"no frame at {time:.3f}s (the video is shorter)")
