"""Videos as assets, on the real offline model, Milvus Lite and a Milvus server: keyframes found by text and by
image with their time, bad videos reported with a reason, incremental re-runs, moves, half-written videos."""

from __future__ import annotations

import hashlib
import shutil
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from assetrag.ingest.video import hash_video
from fakes.videos import make_audio_only, make_long_video, make_unknown_codec, make_video

pytestmark = pytest.mark.usefixtures("store_uri")  # every test on Milvus Lite and on a server

SCENES = ("cat", "coffee", "rocket")  # each 2 s: cat [0, 2), coffee [2, 4), rocket [4, 6)


@pytest.fixture
def video_dir(tmp_path, photo_arrays):
    make_video(tmp_path / "lib" / "campaign" / "lunar.mp4", [photo_arrays[n] for n in SCENES])
    return tmp_path / "lib"


def _rows(lib):
    return sorted(
        lib.store.iterate(("id", "path", "paths", "time", "media", "video_id", "frames")), key=lambda r: r["time"]
    )


def test_a_text_query_finds_the_scene_and_its_time(make_library, video_dir):
    lib = make_library()
    report = lib.ingest(video_dir)
    assert (report.videos, report.keyframes, report.added, report.errors) == (1, 3, 1, [])
    rows = _rows(lib)
    vid = hash_video(str(video_dir / "campaign" / "lunar.mp4"))[0]
    assert [r["time"] for r in rows] == pytest.approx([0.0, 2.0, 4.0])
    assert {r["media"] for r in rows} == {"video_frame"} and {r["video_id"] for r in rows} == {vid}
    assert {r["frames"] for r in rows} == {3}
    # the documented id scheme: sha256 of "<video sha>@<milliseconds>"
    assert [r["id"] for r in rows] == [hashlib.sha256(f"{vid}@{ms}".encode()).hexdigest() for ms in (0, 2000, 4000)]
    for text, (start, end) in (("a rocket", (4, 6)), ("a cat", (0, 2)), ("a cup of coffee", (2, 4))):
        hit = lib.search(text, k=1, mode="vector")[0]
        assert hit.filename == "lunar.mp4" and hit.media == "video_frame", text
        assert start <= hit.time < end, (text, hit.time)
    hit = lib.search("a rocket", k=1, mode="vector")[0]
    assert hit.label == "lunar.mp4 @ 4.0s" and hit.to_dict()["time"] == pytest.approx(4.0)


def test_an_image_finds_the_video_moment(make_library, video_dir, tmp_path, photo_arrays):
    lib = make_library()
    lib.ingest(video_dir)
    query = tmp_path / "query" / "coffee.jpg"
    query.parent.mkdir()
    Image.fromarray(photo_arrays["coffee"]).save(query, quality=90)
    hit = lib.search(image=query, k=1)[0]
    assert hit.is_video and 2 <= hit.time < 4


def test_grouped_a_video_appears_once_with_its_other_moments(make_library, video_dir, tmp_path, photo_arrays):
    Image.fromarray(photo_arrays["astronaut"]).save(video_dir / "astronaut.jpg")
    lib = make_library()
    lib.ingest(video_dir)
    per_moment = lib.search("a rocket", k=4, mode="vector")
    assert sum(h.is_video for h in per_moment) == 3
    grouped = lib.search("a rocket", k=4, mode="vector", group_videos=True)
    assert [h.filename for h in grouped] == ["lunar.mp4", "astronaut.jpg"] and [h.rank for h in grouped] == [1, 2]
    assert 4 <= grouped[0].time < 6 and sorted(grouped[0].moments) == pytest.approx([0.0, 2.0])
    only = lib.search("a rocket", k=4, mode="vector", media="image")
    assert [h.filename for h in only] == ["astronaut.jpg"]


def test_bad_videos_are_reported_with_a_reason_and_the_run_goes_on(make_library, video_dir):
    good = video_dir / "campaign" / "lunar.mp4"
    data = good.read_bytes()
    (video_dir / "truncated.mp4").write_bytes(data[: len(data) // 2])
    make_audio_only(video_dir / "jingle.mp4")
    (video_dir / "garbage.mp4").write_bytes(b"this is not a video " * 100)
    (video_dir / "empty.webm").write_bytes(b"")
    make_long_video(video_dir / "day.mp4", hours=25, scene_s=3600, fps=Fraction(1, 600))  # absurd length
    tiny = np.zeros((16, 16, 3), np.uint8)
    make_video(video_dir / "wide.webm", [tiny], seconds=0.2, codec="libvpx-vp9", size=(16400, 16))  # absurd size
    make_unknown_codec(video_dir / "unknown.mkv")  # a codec this FFmpeg lacks
    lib = make_library()
    report = lib.ingest(video_dir)
    assert report.videos == 1 and report.keyframes == 3
    why = {e.path.rsplit("/", 1)[1]: e.reason for e in report.errors}
    assert set(why) == {
        "truncated.mp4",
        "jingle.mp4",
        "garbage.mp4",
        "empty.webm",
        "day.mp4",
        "wide.webm",
        "unknown.mkv",
    }
    assert "truncated" in why["truncated.mp4"]
    assert "no video stream" in why["jingle.mp4"] and "audio" in why["jingle.mp4"]
    assert "FFmpeg" in why["garbage.mp4"]
    assert "empty" in why["empty.webm"]
    assert "25.0 hours" in why["day.mp4"] and "24-hour limit" in why["day.mp4"]
    assert "16400×16" in why["wide.webm"] and "limit" in why["wide.webm"]
    assert "no decoder" in why["unknown.mkv"]
    assert lib.count() == 3


def test_an_unchanged_video_is_skipped_and_a_moved_one_is_a_path_update(make_library, video_dir):
    lib = make_library()
    lib.ingest(video_dir)
    before = _rows(lib)
    again = lib.ingest(video_dir)
    assert (again.unchanged, again.decoded, again.added, again.updated) == (1, 0, 0, 0)
    new = video_dir / "archive" / "lunar-2025.mp4"
    new.parent.mkdir()
    shutil.move(video_dir / "campaign" / "lunar.mp4", new)
    moved = lib.ingest(video_dir)
    assert (moved.decoded, moved.videos, moved.updated, moved.added) == (0, 0, 1, 0)
    after = _rows(lib)
    assert [r["id"] for r in after] == [r["id"] for r in before]
    assert all(r["path"] == str(new) and list(r["paths"]) == [str(new)] for r in after)
    assert lib.search("a rocket", k=1, mode="vector")[0].path == str(new)


def test_a_changed_video_is_sampled_again_and_its_old_keyframes_go(make_library, video_dir, photo_arrays):
    lib = make_library()
    lib.ingest(video_dir)
    old = {r["id"] for r in _rows(lib)}
    path = video_dir / "campaign" / "lunar.mp4"
    make_video(path, [photo_arrays["astronaut"], photo_arrays["rocket"]])
    report = lib.ingest(video_dir)
    assert report.videos == 1 and report.keyframes == 2 and report.pruned == 1
    rows = _rows(lib)
    assert len(rows) == 2 and not old & {r["id"] for r in rows}
    assert {r["video_id"] for r in rows} == {hash_video(str(path))[0]}


def test_a_half_written_video_is_sampled_again(make_library, video_dir):
    """A run killed inside a video's write leaves fewer rows than its `frames`: the next run redoes it."""
    lib = make_library()
    lib.ingest(video_dir)
    rows = _rows(lib)
    lib.store.delete([rows[1]["id"]])  # what a write cut short leaves: 2 of 3 keyframes
    report = lib.ingest(video_dir)
    assert (report.unchanged, report.videos, report.keyframes) == (0, 1, 3)
    assert [r["id"] for r in _rows(lib)] == [r["id"] for r in rows]


def test_a_byte_identical_copy_is_one_video_with_two_paths(make_library, video_dir):
    copy = video_dir / "copy.mp4"
    shutil.copy(video_dir / "campaign" / "lunar.mp4", copy)
    lib = make_library()
    report = lib.ingest(video_dir)
    assert report.videos == 1 and report.duplicates == 1
    assert all(len(r["paths"]) == 2 for r in _rows(lib)) and lib.count() == 3
    pruned = lib.ingest(video_dir, prune=True)
    assert pruned.pruned == 0
    copy.unlink()
    lib.ingest(video_dir, prune=True)
    assert all(list(r["paths"]) == [str(video_dir / "campaign" / "lunar.mp4")] for r in _rows(lib))


def test_a_long_video_is_ingested_within_the_keyframe_cap(make_library, tmp_path, monkeypatch):
    """ASSETRAG_MAX_KEYFRAMES (documented) bounds a 3-hour video's rows; they still cover its whole length."""
    make_long_video(tmp_path / "long" / "cctv.mp4", hours=3)
    monkeypatch.setenv("ASSETRAG_MAX_KEYFRAMES", "12")
    lib = make_library()
    report = lib.ingest(tmp_path / "long")
    assert (report.videos, report.keyframes, report.errors) == (1, 12, [])
    rows = _rows(lib)
    assert len(rows) == 12 and {r["frames"] for r in rows} == {12}
    assert rows[-1]["time"] >= 3 * 3600 - 3 * 3600 / 12


def test_remove_takes_a_video_whole_and_counts_it_once(make_library, tmp_path, photo_arrays):
    """A video is one asset to `remove` as to prune: named by its path, its folder, its video_id or any one of its
    keyframes' ids, all its keyframes go (a keyframe left alone would make it look half-written)."""
    root = tmp_path / "library"
    make_video(root / "films" / "promo.mp4", [photo_arrays["cat"], photo_arrays["rocket"], photo_arrays["astronaut"]])
    Image.fromarray(photo_arrays["camera"]).save(root / "camera.jpg")
    lib = make_library()
    report = lib.ingest(root)
    assert report.keyframes == 3 and lib.count() == 4
    frames = [r for r in lib.iterate(("id", "video_id")) if r["video_id"]]
    for target in (str(root / "films"), str(root / "films" / "promo.mp4"), frames[0]["video_id"], frames[1]["id"]):
        found = lib.to_remove([target])
        assert [(r["id"], sorted(r["rows"])) for r in found] == [
            (frames[0]["video_id"], sorted(f["id"] for f in frames))
        ], target
        assert lib.remove([target], dry_run=True) == 1 and lib.count() == 4
    assert lib.remove([str(root)], dry_run=True) == 2  # the video and the still
    assert lib.remove([frames[2]["id"]]) == 1 and lib.count() == 1
    assert lib.ingest(root).keyframes == 3  # sampled again as a whole video, nothing half-left
