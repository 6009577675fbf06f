"""Keyframe sampling and frame decoding (assetrag.video) on videos PyAV encodes here: scene changes, the
interval, the cap, and the frame at a time."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

import assetrag.video as video
from assetrag.errors import BadVideoError, ConfigError
from assetrag.video import SamplingOptions, frame_at, moment_label, probe, sample_keyframes
from fakes.videos import key_frame_times, make_cut_video, make_long_video, make_video


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


def _cuts(photo_arrays, *names_at):
    return [(start, photo_arrays[name]) for start, name in names_at]


def _times_both_ways(path, monkeypatch, **kw):
    """(keyframe times, stats) with the key-frame scan, and the keyframe times decoding every candidate."""
    stats = video.SamplingStats()
    scanned = [k.time for k in sample_keyframes(path, stats=stats, **kw)]
    monkeypatch.setattr(video, "KEY_FRAME_SCAN", False)
    every = [k.time for k in sample_keyframes(path, **kw)]
    monkeypatch.setattr(video, "KEY_FRAME_SCAN", True)
    return scanned, stats, every


def test_cuts_between_key_frames_are_found_without_decoding_every_frame(tmp_path, photo_arrays, monkeypatch):
    """Key frames every 4 s and none at the cuts (5.3 s, 9.7 s, 26.1 s): the cuts are still found within a
    candidate step, the keyframes are those that decoding every candidate finds, and most GOPs are not decoded."""
    scenes = _cuts(photo_arrays, (0, "cat"), (5.3, "coffee"), (9.7, "rocket"), (26.1, "astronaut"))
    path = make_cut_video(tmp_path / "cuts.mp4", scenes, seconds=40, fps=10, gop=40)
    keys = key_frame_times(path)
    assert keys == pytest.approx([0, 4, 8, 12, 16, 20, 24, 28, 32, 36])  # no key frame at a cut
    times, stats, every = _times_both_ways(path, monkeypatch)
    assert times == every
    for cut in (5.3, 9.7, 26.1):
        assert any(cut <= t <= cut + video.MIN_STEP + 0.1 for t in times), (cut, times)
    assert [t for t in times if t not in (5.5, 10.0, 26.5)] == pytest.approx([0.0, 20.0, 36.5])  # the interval
    assert stats.method == "key frames" and stats.key_frames == len(keys)
    assert stats.decoded <= 0.4 * 400, stats  # a fraction of the 400 frames
    assert stats.gops_skipped >= 4, stats


def test_a_scene_that_comes_and_goes_between_two_key_frames_is_found(tmp_path, photo_arrays, monkeypatch):
    """The key frames on both sides of 13.1–14.2 s show the same picture; what lies between is found from the
    packet sizes (the cut's packet is far larger than the others of its GOP), so the GOP is decoded."""
    scenes = _cuts(photo_arrays, (0, "cat"), (9.7, "rocket"), (13.1, "astronaut"), (14.2, "rocket"))
    path = make_cut_video(tmp_path / "flash.mp4", scenes, seconds=24, fps=10, gop=40)
    assert key_frame_times(path) == pytest.approx([0, 4, 8, 12, 16, 20])
    times, stats, every = _times_both_ways(path, monkeypatch)
    assert times == every
    assert any(13.1 <= t <= 13.7 for t in times) and any(14.2 <= t <= 14.8 for t in times), times
    assert stats.gops_skipped >= 2, stats


def test_an_intra_only_video_decodes_nothing_twice(tmp_path, photo_arrays, monkeypatch):
    """Every frame a key frame (MJPEG): the scan reads one key frame per candidate step and serves the
    candidates itself — the same keyframes as decoding every candidate, no frame decoded a second time."""
    if "mjpeg" not in av.codecs_available:
        pytest.skip("no MJPEG encoder in this PyAV wheel")
    path = tmp_path / "intra.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuvj420p"
        for i in range(120):
            arr = photo_arrays["cat" if i < 53 else "rocket"]
            pic = np.asarray(av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(160, 120).to_ndarray())
            for packet in stream.encode(av.VideoFrame.from_ndarray(pic, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    times, stats, every = _times_both_ways(path, monkeypatch)
    assert times == every == pytest.approx([0.0, 5.5])
    assert stats.method == "key frames" and stats.decoded == 0 and stats.key_frames <= 24, stats


def test_a_three_hour_video_with_one_key_frame_is_decoded_once_to_its_end(tmp_path):
    """One key frame in 3 hours (x264, keyint infinite; 0.1 fps, a new grey level a minute): the GOP is decoded
    forward once — every frame, well within MAX_DECODED_FRAMES — and the keyframes reach the end (seeking to each
    candidate would decode from the start every time, and run out of the budget an hour in)."""
    if "libx264" not in av.codecs_available:
        pytest.skip("no libx264 in this PyAV wheel")
    path = tmp_path / "onekey.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(1, 10))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"x264-params": "keyint=infinite:scenecut=0"}
        for i in range(1080):
            level = (i * 10 // 60) * 37 % 256
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), level, np.uint8), "rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    assert len(key_frame_times(path)) == 1
    stats = video.SamplingStats()
    times = [k.time for k in sample_keyframes(path, stats=stats)]
    assert stats.method == "key frames" and stats.decoded <= 1080, stats
    assert 0 < len(times) <= 200 and times[-1] >= 3 * 3600 - 54 - 10
