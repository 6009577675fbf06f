"""Small real videos encoded by PyAV (FFmpeg in its wheel) for the video tests: scenes of known pictures."""

from __future__ import annotations

from collections.abc import Sequence
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
