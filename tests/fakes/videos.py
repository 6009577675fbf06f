"""Small real videos encoded by PyAV (FFmpeg in its wheel) for the video tests: scenes of known pictures."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

SIZE = (320, 240)


def make_video(
    path: Path,
    scenes: Sequence[np.ndarray],
    *,
    seconds: float = 2.0,
    fps: int = 5,
    codec: str = "mpeg4",
    size: tuple[int, int] = SIZE,
) -> Path:
    """A video of `scenes` (RGB arrays), each shown for `seconds` (scene i starts at i * seconds)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for arr in scenes:
            pic = np.asarray(Image.fromarray(arr).convert("RGB").resize(size, Image.Resampling.BILINEAR))
            for _ in range(round(seconds * fps)):
                for packet in stream.encode(av.VideoFrame.from_ndarray(pic, format="rgb24")):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_cut_video(
    path: Path,
    scenes: Sequence[tuple[float, np.ndarray]],
    *,
    seconds: float,
    fps: int = 10,
    gop: int = 40,
    size: tuple[int, int] = (160, 120),
) -> Path:
    """An MPEG-4 video `seconds` long of `scenes` (start time, RGB array; the first starts at 0) with a key frame
    every `gop` frames and none at the cuts (the encoder's scene-change detection off), so cuts fall between
    key frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pics = [(start, np.asarray(Image.fromarray(arr).convert("RGB").resize(size))) for start, arr in scenes]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(gop), "sc_threshold": "1000000000"}
        for i in range(round(seconds * fps)):
            pic = [p for start, p in pics if start <= i / fps + 1e-9][-1]
            frame = av.VideoFrame.from_ndarray(pic, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def key_frame_times(path: Path) -> list[float]:
    """The times of a video's key frames (from its packets; nothing decoded)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(float(p.pts * stream.time_base) for p in container.demux(stream) if p.is_keyframe and p.size)


def make_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """An .mp4 holding only an AAC audio stream (a sine tone)."""
    rate = 44100
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=rate)
        t = np.arange(int(seconds * rate)) / rate
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        for i in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, i : i + 1024]), format="fltp", layout="mono"
            )
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_long_video(path: Path, hours: float, *, scene_s: float = 60.0, fps: Fraction = Fraction(1, 10)) -> Path:
    """A long video that is quick to make: tiny (64×48), few frames a second (`fps`), a new grey level every
    `scene_s` seconds — a 3-hour one is 1,080 frames at the default 0.1 fps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuv420p"
        for i in range(int(hours * 3600 * fps)):
            level = int((i / fps) // scene_s) * 37 % 256
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), level, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_unknown_codec(path: Path) -> Path:
    """A Matroska file whose video track names a codec no FFmpeg has (the MPEG-4 track's codec id rewritten)."""
    ok = make_video(path.with_name("ok-" + path.stem + ".mkv"), [np.zeros((16, 16, 3), np.uint8)], seconds=1)
    data = ok.read_bytes()
    ok.unlink()
    assert data.count(b"V_MPEG4/ISO/ASP") == 1
    path.write_bytes(data.replace(b"V_MPEG4/ISO/ASP", b"V_ZZZZZ/ISO/ASP"))
    return path
