"""Copying a library between stores (`assetrag migrate`) on real Milvus Lite and a real Milvus server:
identical ids, vectors and fields; a copy killed with SIGKILL at any batch and run again ends the same."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
from store_rows import DIM, assert_holds, make_rows

from assetrag.errors import ModelMismatchError, StoreError
from assetrag.store.migrations import KILL_ENV
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


def _tampering(dst, change):
    """`dst.upsert` passing each batch through `change(rows)` first: a destination that loses or alters rows."""
    real = dst.upsert
    dst.upsert = lambda rows: real(change([dict(r) for r in rows]))


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda rows: rows[1:] if rows[0]["id"] == f"{0:064x}" else rows, r"1 of 30 rows are missing afterwards"),
        (lambda rows: [{**r, "vector": [-x for x in r["vector"]]} if r["size"] == 1007 else r for r in rows], "vector"),
        (lambda rows: [{**r, "tags": ["other"]} if r["size"] == 1007 else r for r in rows], "tags"),
        (lambda rows: [{**r, "lineage": {}} if r["size"] == 1010 else r for r in rows], "lineage"),
    ],
    ids=["missing", "vector", "tags", "lineage"],
)
def test_the_check_at_the_end_finds_a_row_missing_or_different(tmp_path, make_store, change, words):
    """The end of a copy is verified: a destination that lost a row, or holds one with another vector or
    field, is an error that says to run the copy again — and the run again (untampered) ends identical."""
    rows = make_rows(30)
    src = make_store("src", uri=str(tmp_path / "a.db"))
    src.ensure("model-a", DIM)
    src.upsert(rows)
    dst = make_store("dst", uri=str(tmp_path / "b.db"))
    _tampering(dst, change)
    with pytest.raises(StoreError, match=rf"(?s){words}.*run the copy again"):
        copy_library(src, dst, batch=10)
    del dst.upsert
    assert copy_library(src, dst, batch=10).destination_rows == 30
    assert_holds(dst, rows)


def test_a_copy_reads_the_source_with_query_iterator_not_offset_paging(tmp_path, make_store, monkeypatch):
    """Issue #12: the rows are read with pymilvus' iterator (no 16,384-row offset window), never offset/limit."""
    rows = make_rows(75)
    src = make_store("src", uri=str(tmp_path / "a.db"))
    src.ensure("model-a", DIM)
    src.upsert(rows)
    calls: list[tuple[str, dict]] = []
    for method in ("query_iterator", "query"):
        real = getattr(src.client, method)
        monkeypatch.setattr(
            src.client, method, lambda *a, _real=real, _m=method, **kw: calls.append((_m, kw)) or _real(*a, **kw)
        )
    dst = make_store("dst", uri=str(tmp_path / "b.db"))
    assert copy_library(src, dst, batch=20).copied == 75
    assert ("query_iterator", 20) in {(m, kw.get("batch_size")) for m, kw in calls}
    assert [kw for m, kw in calls if m == "query" and ("offset" in kw or "limit" in kw)] == []
    assert_holds(dst, rows)


#: where a copy can be killed (store/transfer.py's crash points): after each batch, and after the flush (before
#: the check at the end). 230 rows in batches of 30 are eight batches (seven full, a short last one): the same
#: kill points as 2300 rows in batches of 300, a tenth of the data.
ROWS, BATCH = 230, 30
KILL_POINTS = [*(f"transfer.batch.{n}" for n in range(1, -(-ROWS // BATCH) + 1)), "transfer.copied"]
#: kills per copy (≥ 5): the first after the first batch (a destination just created, part-filled: the test
#: checks it stopped part-way), then, in a seeded random order, three other batches drawn at random and the
#: point after the flush (its own phase: every row sent, not yet checked). ASSETRAG_TEST_KILL_SEED=<n> draws
#: others; every message names the points and the seed.
KILLS = 5
KILL_SEED = int(os.environ.get("ASSETRAG_TEST_KILL_SEED", "12"))


def draw_kill_points(rng: random.Random) -> list[str]:
    rest = [*rng.sample(KILL_POINTS[1:-1], KILLS - 2), KILL_POINTS[-1]]
    rng.shuffle(rest)
    return [KILL_POINTS[0], *rest]


def copy_killed_then_finished(src: tuple[str, str], dst: tuple[str, str], points: list[str], count) -> str:
    """Run `copy_library` from `src` to `dst` ((uri, library name)) in a child process SIGKILLed at each of
    `points` in turn (as kill -9 would), then once to the end; returns what was run, for messages."""
    code = (
        "import json\n"
        "from assetrag.store import Store\n"
        "from assetrag.store.transfer import copy_library\n"
        f"src, dst = Store({src[0]!r}, {src[1]!r}), Store({dst[0]!r}, {dst[1]!r})\n"
        f"print(json.dumps(copy_library(src, dst, batch={BATCH}).to_dict()))\n"
    )
    where = f"{src[1]} -> {dst[1]} killed at {points} (ASSETRAG_TEST_KILL_SEED={KILL_SEED})"
    plain = {k: v for k, v in os.environ.items() if k != KILL_ENV}
    for i, point in enumerate([*points, None]):
        env = {**plain, KILL_ENV: point} if point else plain
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == (-9 if point else 0), f"{where}: run {i} ({point}): {res.stdout}{res.stderr}"
        if i == 0:
            held = count()
            assert 0 < held < ROWS, f"{where}: the first kill did not stop it part-way ({held} rows copied)"
    report = json.loads(res.stdout.splitlines()[-1])
    assert (report["rows"], report["destination_rows"]) == (ROWS, ROWS), f"{where}: {report}"
    return where


def holds(store, rows: list[dict], where: str) -> None:
    """`assert_holds`, its failure naming the kill points that led to it."""
    try:
        assert_holds(store, rows)
    except AssertionError as e:
        raise AssertionError(f"{where}: {e}") from e


def test_a_copy_killed_anywhere_and_run_again_ends_identical(tmp_path, make_store, store_uri):
    """A copy SIGKILLed at 5 points (the first batch, then three more batches drawn at random and the point
    after the flush, in random order) and run again leaves exactly the source's rows. On the server backend
    that is Lite -> server, and then server -> a new Lite file, killed 5 times too, which must hold exactly
    the original rows (ids, vectors, every field)."""
    rng = random.Random(KILL_SEED)
    rows = make_rows(ROWS, seed=3)
    src = make_store("src", uri=str(tmp_path / "src.db"))
    src.ensure("model-a", DIM)
    src.upsert(rows)
    src.close()
    dst = make_store("dst")  # on the test's backend (a second Lite file, or the server)
    dst.close()

    def count(store_name: str, uri: str | None = None):
        def probe() -> int:
            store = make_store(store_name, uri=uri)
            n = store.count()
            store.close()
            return n

        return probe

    there = draw_kill_points(rng)
    where = copy_killed_then_finished((src.uri, src.name), (dst.uri, dst.name), there, count("dst"))
    final = make_store("dst")
    holds(final, rows, where)
    final.close()
    if not dst.is_server:
        return
    back_uri = str(tmp_path / "back.db")
    back = draw_kill_points(rng)
    where = copy_killed_then_finished((dst.uri, dst.name), (back_uri, "back"), back, count("back", back_uri))
    holds(make_store("back", uri=back_uri), rows, where)
