"""A video keyframe as a generation reference: its frame's pixels are sent and the lineage names the video and
the time (real offline model, Milvus Lite, the board backend)."""

from __future__ import annotations

import numpy as np
import pytest

from assetrag import rag
from assetrag.generation import get_generator
from assetrag.rag.run import load_references
from assetrag.video import frame_at
from fakes.videos import make_video


def test_a_keyframe_is_a_reference_with_its_frame_and_time(make_library, tmp_path, photo_arrays):
    video = make_video(tmp_path / "lib" / "campaign.mp4", [photo_arrays["cat"], photo_arrays["rocket"]])
    lib = make_library()
    assert lib.ingest(tmp_path / "lib").keyframes == 2
    plan = rag.plan(lib, "a rocket", backend="board")
    ref = plan.chosen[0]
    assert ref.path == str(video) and ref.time == pytest.approx(2.0)
    loaded = load_references(plan)[0]
    expected = np.asarray(frame_at(video, 2.0, max_side=max(loaded.image.size)), np.float32)
    assert np.abs(np.asarray(loaded.image, np.float32) - expected).mean() < 1.0  # the rocket frame, not the cat
    result = rag.run_plan(lib, plan, get_generator("board"), out=tmp_path / "board.png", store_back=True)
    refs = lib.get(result.metadata["asset_id"]).lineage["references"]
    assert refs[0]["video"] == str(video) and refs[0]["time"] == pytest.approx(2.0)
    assert all(r["video"] == str(video) and r["time"] in (0.0, 2.0) for r in refs)
