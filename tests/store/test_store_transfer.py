"""Copying a library between stores (`assetrag migrate`) on real Milvus Lite and a real Milvus server:
identical ids, vectors and fields; a copy killed with SIGKILL at any batch and run again ends the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from store_rows import DIM, assert_holds, make_rows

from assetrag.errors import ModelMismatchError, StoreError
from assetrag.store.transfer import copy_library


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def start(self, total: int, description: str) -> None:
        self.events.append(("start", total))

    def advance(self, n: int = 1) -> None:
        self.events.append(("advance", n))

    def stop(self) -> None:
        self.events.append(("stop",))


@pytest.mark.server
def test_lite_to_server_to_server_to_lite_keeps_every_id_vector_and_field(tmp_path, milvus_server, make_store):
    rows = make_rows(2300)
    src = make_store("src", uri=str(tmp_path / "a.db"), index="ivf_flat")
    src.ensure("model-a", DIM)
    src.upsert(rows)
    up = make_store("up", uri=milvus_server.uri)
    progress = Recorder()
    report = copy_library(src, up, progress, batch=700)
    assert (report.rows, report.copied, report.destination_rows, report.extra) == (2300, 2300, 2300, 0)
    assert report.created and report.sampled == 200 and report.model == "model-a" and report.dim == DIM
    assert progress.events[0] == ("start", 2300) and progress.events[-1] == ("stop",)
    assert sum(e[1] for e in progress.events if e[0] == "advance") == 2300
    assert up.model_info() == ("model-a", DIM) and up.index_info()["index_type"] == "IVF_FLAT"
    assert_holds(up, rows)
    across = make_store("across", uri=milvus_server.uri)
    copy_library(up, across)
    down = make_store("down", uri=str(tmp_path / "b.db"))
    back = copy_library(across, down, batch=1000)
    assert back.rows == 2300 and back.destination_rows == 2300
    assert_holds(down, rows)


def test_a_copy_into_an_existing_library_of_the_same_model_merges(tmp_path, make_store):
    rows = make_rows(30)
    src = make_store("src", uri=str(tmp_path / "a.db"))
    src.ensure("model-a", DIM)
    src.upsert(rows[:20])
    dst = make_store("dst", uri=str(tmp_path / "b.db"))
    dst.ensure("model-a", DIM)
    dst.upsert(rows[15:])
    report = copy_library(src, dst)
    assert (report.rows, report.destination_rows, report.extra, report.created) == (20, 30, 10, False)
    assert_holds(dst, rows)


def test_what_cannot_be_copied_is_refused_with_what_to_do(tmp_path, make_store):
    src = make_store("src", uri=str(tmp_path / "a.db"))
    other = make_store("dst", uri=str(tmp_path / "b.db"))
    with pytest.raises(StoreError, match="does not exist: nothing to copy"):
        copy_library(src, other)
    src.ensure("model-a", DIM)
    src.upsert(make_rows(3))
    with pytest.raises(StoreError, match="are the same library 'src'"):
        copy_library(src, make_store("src", uri=str(tmp_path / "a.db")))
    other.ensure("model-b", DIM)
    with pytest.raises(ModelMismatchError, match=r"built with model 'model-b'.*holds 'model-a'.*--to-library") as e:
        copy_library(src, other)
    assert e.value.built_model == "model-b" and other.count() == 0


#: one kill in each phase: after the first batch (a destination just created, part-filled), after the last
#: batch (every row sent, not flushed; the destination already existed), after the flush (before the check).
#: A run always copies from the start, upserting by id, so a kill after a middle batch (3, 5) is the same
#: phase as after the first.
KILLS = ["transfer.batch.1", "transfer.batch.8", "transfer.copied"]


def test_a_copy_killed_anywhere_and_run_again_ends_identical(tmp_path, make_store, store_uri):
    """SIGKILL (the process dies as with kill -9) after the first batch, the last one, and after the copy;
    a run to the end then leaves exactly the source's rows. 230 rows in batches of 30 are the same eight
    batches (seven full, a short last one) as 2300 in batches of 300: the same kill points, a tenth of the data."""
    rows = make_rows(230, seed=3)
    src = make_store("src", uri=str(tmp_path / "src.db"))
    src.ensure("model-a", DIM)
    src.upsert(rows)
    src.close()
    dst = make_store("dst")  # on the test's backend (a second Lite file, or the server)
    dst_uri, dst_name = dst.uri, dst.name
    dst.close()
    code = (
        "import json\n"
        "from assetrag.store import Store\n"
        "from assetrag.store.transfer import copy_library\n"
        f"src, dst = Store({src.uri!r}, 'src'), Store({dst_uri!r}, {dst_name!r})\n"
        "print(json.dumps(copy_library(src, dst, batch=30).to_dict()))\n"
    )
    counts = []
    for point in [*KILLS, None]:
        env = {**os.environ, "ASSETRAG_TEST_KILL_AT": point} if point else dict(os.environ)
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == (-9 if point else 0), res.stdout + res.stderr
        if point == "transfer.batch.1":
            probe = make_store("dst")
            counts.append(probe.count())
            probe.close()
    assert 0 < counts[0] < 230  # the first kill did stop it part-way
    report = json.loads(res.stdout.splitlines()[-1])
    assert (report["rows"], report["destination_rows"]) == (230, 230)
    final = make_store("dst")
    assert_holds(final, rows)
