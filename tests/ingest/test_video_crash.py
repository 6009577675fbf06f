"""A video's keyframes are stored all or none: the real `assetrag ingest` process SIGKILLed (as kill -9) at the
moments around a video's write (`ASSETRAG_TEST_KILL_AT`: after its keyframes are embedded, after its one
upsert), the library left behind checked (every video stored has all its `frames` rows), then run again to the
library a clean run builds. (A store left with part of a video — not reachable by a kill, the write being one
upsert — is test_video.py's test_a_half_written_video_is_sampled_again.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from PIL import Image

from assetrag import Library
from assetrag.store.migrations import KILL_ENV
from fakes.videos import make_video


@pytest.fixture(scope="module")
def two_videos(tmp_path_factory, photo_arrays):
    root = tmp_path_factory.mktemp("videos") / "lib"
    make_video(root / "a" / "lunar.mp4", [photo_arrays[n] for n in ("cat", "coffee", "rocket")])
    make_video(root / "b" / "space.mp4", [photo_arrays["astronaut"], photo_arrays["camera"]])
    root.joinpath("cat.jpg").parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo_arrays["cat"]).save(root / "cat.jpg", quality=90)
    return root


def _state(lib: Library) -> dict[str, tuple]:
    return {
        r["id"]: (tuple(r["paths"]), round(float(r["time"]), 3), r["video_id"], r["frames"])
        for r in lib.store.iterate(("id", "paths", "time", "video_id", "frames"))
    }


def _videos(state: dict[str, tuple]) -> dict[str, tuple[int, set[int]]]:
    """video id → (keyframe rows stored, the `frames` counts they carry)."""
    out: dict[str, tuple[int, set[int]]] = {}
    for _, _, vid, frames in state.values():
        if vid:
            n, counts = out.get(vid, (0, set()))
            out[vid] = (n + 1, counts | {frames})
    return out


@pytest.fixture(scope="module")
def clean(two_videos, tmp_path_factory, offline_embedder):
    with Library(tmp_path_factory.mktemp("clean") / "lib.db", embedder=offline_embedder) as lib:
        report = lib.ingest(two_videos)
        assert (report.videos, report.keyframes, report.errors) == (2, 5, [])
        return _state(lib)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["video.embedded", "video.written"])
def test_ingest_killed_around_a_video_write_leaves_all_or_none_of_it(
    point, two_videos, clean, tmp_path, offline_embedder
):
    uri = tmp_path / "victim.db"
    env = {**os.environ, "ASSETRAG_MODEL": "offline:v1", "ASSETRAG_TORCH_THREADS": "1", KILL_ENV: point}
    cmd = [sys.executable, "-m", "assetrag.cli", "--uri", str(uri), "ingest", str(two_videos), "--json"]
    victim = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert victim.returncode == -signal.SIGKILL, victim.stdout + victim.stderr  # it died at the point
    with Library(uri, embedder=offline_embedder) as lib:
        left = _state(lib)
        videos = _videos(left)
        # the image was written before the videos; of the videos, each stored one is whole
        assert any(not v[2] for v in left.values()), "the image's record"
        assert all(counts == {n} for n, counts in videos.values()), videos
        if point == "video.embedded":
            assert videos == {}  # killed before the first video's write: nothing of it
        else:
            assert len(videos) <= 1  # the first video (whole, if the store kept it), never the second
        report = lib.ingest(two_videos)
        assert report.errors == [] and report.videos == 2 - len(videos)
        assert _state(lib) == clean
