"""Keyframe sampling and frame decoding (assetrag.video) on videos PyAV encodes here: scene changes, the
interval, the cap, and the frame at a time."""

from __future__ import annotations

import av
import numpy as np
import pytest

import assetrag.video as video
from assetrag.errors import BadVideoError, ConfigError
from assetrag.video import SamplingOptions, frame_at, moment_label, probe, sample_keyframes
from fakes.videos import make_long_video, make_video


def _grey(level: int) -> np.ndarray:
    return np.full((120, 160, 3), level, np.uint8)


def test_scene_changes_become_keyframes(tmp_path, photo_arrays):
    path = make_video(tmp_path / "v.mp4", [photo_arrays[n] for n in ("cat", "coffee", "rocket")])
    info = probe(path)
    assert (info.width, info.height, info.codec) == (320, 240, "mpeg4") and info.duration == pytest.approx(6.0)
    frames = list(sample_keyframes(path))
    assert [k.time for k in frames] == pytest.approx([0.0, 2.0, 4.0])
    assert all(k.image.mode == "RGB" and max(k.image.size) <= 512 for k in frames)


def test_a_static_video_gets_one_keyframe_per_interval_and_the_cap_holds(tmp_path):
    path = make_video(tmp_path / "still.mp4", [_grey(90)], seconds=31, fps=2)
    times = [k.time for k in sample_keyframes(path, SamplingOptions(interval=10.0))]
    assert times == pytest.approx([0.0, 10.0, 20.0, 30.0])
    capped = [k.time for k in sample_keyframes(path, SamplingOptions(interval=10.0, max_keyframes=2))]
    # the interval widens to length / cap so the keyframes still cover the whole video
    assert len(capped) == 2 and capped[0] == 0.0 and capped[1] >= 15.0


def test_the_cap_keeps_room_to_cover_the_end(tmp_path):
    # ten scene changes in the first 10 s of a 60 s video: with a cap of 4 the end is still sampled
    levels = [_grey(20 * i) for i in range(10)]
    path = make_video(tmp_path / "busy.mp4", [*levels, _grey(250)], seconds=1, fps=4)
    path2 = make_video(tmp_path / "long.mp4", [*levels, *[_grey(250)] * 50], seconds=1, fps=2)
    assert len(list(sample_keyframes(path, SamplingOptions(max_keyframes=4, interval=10)))) <= 4
    times = [k.time for k in sample_keyframes(path2, SamplingOptions(max_keyframes=4, interval=10))]
    assert len(times) == 4 and times[-1] >= 30


def test_a_three_hour_video_is_sampled_within_the_caps(tmp_path, monkeypatch):
    """Bounded keyframes and work without a real 3-hour file: 3 h of tiny frames at 0.1 fps, a scene a minute
    (180 scene changes). The keyframes stay under the cap yet reach the end; the candidates looked at stay
    under MAX_CANDIDATES; the keyframes come one at a time (a generator), not all decoded first."""
    path = make_long_video(tmp_path / "3h.mp4", hours=3)
    assert probe(path).duration == pytest.approx(3 * 3600)
    looked = []
    signature = video._signature
    monkeypatch.setattr(video, "_signature", lambda frame: looked.append(1) or signature(frame))
    frames = sample_keyframes(path, SamplingOptions(max_keyframes=20, interval=10.0))
    first = next(frames)
    assert first.time == 0.0 and len(looked) == 1  # lazy: one candidate decoded for the first keyframe
    times = [first.time, *(k.time for k in frames)]
    # the interval widens to 3 h / 20 = 540 s: 20 keyframes spread over the whole video, not the first 20 scenes
    assert len(times) == 20 and times == sorted(times) and times[-1] >= 3 * 3600 - 540
    assert len(looked) <= video.MAX_CANDIDATES
    looked.clear()
    default = [k.time for k in sample_keyframes(path)]  # the default cap (200)
    # within one interval (3 h / 200 = 54 s) and one candidate step (10 s at 0.1 fps) of the end
    assert 0 < len(default) <= 200 and default[-1] >= 3 * 3600 - 54 - 10
    assert len(looked) <= video.MAX_CANDIDATES


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ASSETRAG_MAX_KEYFRAMES", "7")
    monkeypatch.setenv("ASSETRAG_KEYFRAME_INTERVAL", "2.5")
    opts = SamplingOptions.from_env()
    assert (opts.max_keyframes, opts.interval) == (7, 2.5)
    monkeypatch.setenv("ASSETRAG_MAX_KEYFRAMES", "many")
    with pytest.raises(ConfigError, match="ASSETRAG_MAX_KEYFRAMES"):
        SamplingOptions.from_env()


def test_frame_at_decodes_the_frame_shown_then(tmp_path):
    path = make_video(tmp_path / "v.mp4", [_grey(30), _grey(220)], seconds=2, fps=5)
    assert np.asarray(frame_at(path, 0.0)).mean() < 60
    assert np.asarray(frame_at(path, 2.0)).mean() > 190
    with pytest.raises(BadVideoError, match="shorter"):
        frame_at(path, 99.0)


def test_other_codecs_in_the_wheel(tmp_path, photo_arrays):
    for codec, name in (("libx264", "v.mkv"), ("libvpx-vp9", "v.webm")):
        if codec not in av.codecs_available:
            continue
        path = make_video(tmp_path / name, [photo_arrays["cat"], photo_arrays["rocket"]], codec=codec)
        assert [k.time for k in sample_keyframes(path)] == pytest.approx([0.0, 2.0])


def test_moment_label():
    assert moment_label("video.mp4", 12.5) == "video.mp4 @ 12.5s"
    assert moment_label("cat.jpg", None) == moment_label("cat.jpg", -1.0) == "cat.jpg"
