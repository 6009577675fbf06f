"""`--engine ray` (issue #14): the ingest stages as Ray Data operators on a local Ray cluster (2 CPUs), written
into the real Milvus server; the same records and vectors as a single-process ingest, the same incremental
rules, and an embed actor killed mid-run is restarted by Ray with an identical result."""

from __future__ import annotations

import os

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from assetrag.errors import ConfigError  # noqa: E402
from assetrag.ingest.ray_engine import start_ray  # noqa: E402


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    flag = tmp_path_factory.mktemp("ray") / "crashed-once"
    start_ray(  # the product's own start: a busy 2-core box running the suite can miss Ray's 30 s start-up once
        ray,
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {"ASSETRAG_RAY_FAULT_FLAG": str(flag), "OMP_NUM_THREADS": "1"}},
    )
    yield flag
    ray.shutdown()


def _records(lib) -> dict[str, tuple[list[str], np.ndarray]]:
    return {r["id"]: (sorted(r["paths"]), np.asarray(r["vector"])) for r in lib.iterate(("id", "paths", "vector"))}


def test_ray_ingest_equals_a_single_process_ingest(ray_cluster, make_library, milvus_server, photo_dir):
    local = make_library("local", uri=milvus_server.uri)
    local.ingest(photo_dir)
    lib = make_library("on_ray", uri=milvus_server.uri)
    report = lib.ingest(photo_dir, engine="ray")
    assert ray_cluster.exists()  # an embed actor killed itself once: Ray restarted it and retried the batch
    assert report.errors == [] and report.added == 5 and report.decoded == 5
    want, got = _records(local), _records(lib)
    assert want.keys() == got.keys()
    for rid, (paths, vec) in want.items():
        assert got[rid][0] == paths
        np.testing.assert_allclose(got[rid][1], vec, atol=1e-5)

    again = lib.ingest(photo_dir, engine="ray")  # unchanged: nothing is read, Ray is not even asked
    assert again.unchanged == 5 and again.decoded == 0 and again.added == 0

    os.rename(photo_dir / "people" / "camera.jpg", photo_dir / "camera-moved.jpg")  # a move: a path update
    moved = lib.ingest(photo_dir, engine="ray")
    assert moved.decoded == 0 and moved.added == 0 and moved.updated == 1 and lib.count() == 5


#: what Ray 2.x raises when a local cluster's process does not start in time (the raylet's, the GCS's)
START_TIMEOUTS = (
    "The current node timed out during startup. This could happen because ...",
    "Timed out waiting for file /tmp/ray/session_x/gcs_server_port_0123",
)


class SlowToStart:
    """`ray.init` as a busy machine answers it: Ray's start-up timeout `fails` times, then a start."""

    def __init__(self, fails: int) -> None:
        self.fails, self.inits, self.shutdowns = fails, 0, 0

    def init(self, **kwargs) -> None:
        self.inits += 1
        if self.inits <= self.fails:
            raise RuntimeError(START_TIMEOUTS[self.inits % 2])

    def shutdown(self) -> None:
        self.shutdowns += 1


def test_a_local_ray_start_that_times_out_is_tried_again_then_explained():
    twice = SlowToStart(2)
    start_ray(twice)
    assert (twice.inits, twice.shutdowns) == (3, 2)
    with pytest.raises(ConfigError, match=r"did not start in 3 tries.*--address auto"):
        start_ray(SlowToStart(3))
    joining = SlowToStart(1)
    with pytest.raises(RuntimeError, match=r"(?i)timed out"):  # a cluster named by address is not started here
        start_ray(joining, "auto")
    assert joining.inits == 1
