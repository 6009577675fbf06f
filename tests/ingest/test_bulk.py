"""Bulk insert (`store.bulk`, `ingest --bulk`): on the real 2.3.5 server, a bulk-loaded ingest equals one done
with upserts; a stage the server cannot read, a file it fails and a client killed mid-job are handled; Milvus
Lite keeps upserting.

The test server runs in its own network namespace but shares this machine's files, so a tmp_path directory is
a stage it reads at the same path (local storage opens the absolute path it is given). Each import task costs
the server ~1-3 s and a finished one's rows show up ~5-10 s later, so these tests use few, small files.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from assetrag.errors import ConfigError
from assetrag.ingest import Ingestor
from assetrag.store.bulk import BulkError, BulkLoader, BulkStage, supported

server = pytest.mark.server


def _ingest(lib, root, embedder, **kw):
    return Ingestor(lib.store, lambda: embedder, batch_size=2, **kw).run([root])


def _rows(lib):
    return {r["id"]: r for r in lib.store.iterate(("id", "paths", "mtimes", "tags", "collection", "vector"))}


def _leftovers(stage):
    return sorted(str(p) for p in stage.rglob("*")) if stage.exists() else []


@pytest.fixture
def server_uri(milvus_server):
    return milvus_server.uri


@server
def test_bulk_ingest_equals_an_upsert_ingest(make_library, photo_dir, offline_embedder, server_uri, tmp_path):
    shutil.copy(photo_dir / "things" / "drinks" / "coffee.jpg", photo_dir / "people" / "coffee-copy.jpg")
    stage = tmp_path / "stage"
    bulk, plain = make_library("bulk", uri=server_uri), make_library("plain", uri=server_uri)
    report = _ingest(bulk, photo_dir, offline_embedder, bulk="on", bulk_stage=str(stage), bulk_rows_per_file=2)
    _ingest(plain, photo_dir, offline_embedder, bulk="off")
    assert (report.added, report.bulk_rows, report.duplicates, report.errors, report.notes) == (5, 5, 1, [], [])
    assert report.stages.get("bulk insert", 0) > 0 and "write" not in report.stages  # no upsert of new rows
    got, want = _rows(bulk), _rows(plain)
    assert got.keys() == want.keys() and len(got) == 5 == bulk.store.count()  # nothing imported twice
    for rid, row in want.items():
        assert np.allclose(got[rid]["vector"], row["vector"], atol=1e-5)
        assert {k: got[rid][k] for k in ("paths", "mtimes", "tags", "collection")} == {
            k: row[k] for k in ("paths", "mtimes", "tags", "collection")
        }
    for query in ("a cat", "a cup of coffee", "a rocket"):
        assert [h.id for h in bulk.search(query, k=3)] == [h.id for h in plain.search(query, k=3)]
    assert _leftovers(stage) == []  # the staged files are deleted
    again = _ingest(bulk, photo_dir, offline_embedder, bulk="on", bulk_stage=str(stage))
    assert (again.unchanged, again.added, again.bulk_rows) == (6, 0, 0)


@server
def test_a_stage_the_server_cannot_read_falls_back_or_stops(
    make_library, photo_dir, offline_embedder, server_uri, tmp_path
):
    # the client writes there, but the server is told another path: what a container without the volume sees
    stage = BulkStage(str(tmp_path / "stage"), server_path="/nonexistent/assetrag-bulk")
    lib = make_library(uri=server_uri)
    with pytest.raises(BulkError, match=r"cannot load files staged in .*ASSETRAG_BULK_SERVER_PATH.*--bulk off"):
        _ingest(lib, photo_dir, offline_embedder, bulk="on", bulk_stage=stage)
    assert lib.store.count() == 0
    report = _ingest(lib, photo_dir, offline_embedder, bulk="auto", bulk_stage=stage, bulk_threshold=1)
    assert report.added == 5 and report.bulk_rows == 0 and lib.store.count() == 5
    assert len(report.notes) == 1 and "bulk insert not used" in report.notes[0]
    assert _leftovers(tmp_path / "stage") == []


@server
def test_an_unwritable_stage_is_a_clear_error(make_library, photo_dir, offline_embedder, server_uri, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the stage should be")
    lib = make_library(uri=server_uri)
    with pytest.raises(BulkError, match="cannot write to the bulk staging location"):
        _ingest(lib, photo_dir, offline_embedder, bulk="on", bulk_stage=str(blocker / "stage"))


@server
def test_a_file_the_server_fails_is_upserted_with_a_note(
    make_library, photo_dir, offline_embedder, server_uri, tmp_path, monkeypatch
):
    real = BulkLoader._parquet
    calls = []

    def second_file_broken(self, rows):
        calls.append(len(rows))
        data = real(self, rows)
        return data[: len(data) // 2] if len(calls) == 3 else data  # probe, file 1, then a truncated file 2

    monkeypatch.setattr(BulkLoader, "_parquet", second_file_broken)
    lib = make_library(uri=server_uri)
    report = _ingest(
        lib,
        photo_dir,
        offline_embedder,
        bulk="auto",
        bulk_stage=str(tmp_path / "s"),
        bulk_threshold=1,
        bulk_rows_per_file=3,
    )
    assert report.added == 5 and report.bulk_rows == 3 and lib.store.count() == 5
    assert len(report.notes) == 1 and "failed" in report.notes[0] and "upserted instead" in report.notes[0]


@server
def test_a_client_killed_mid_job_is_recovered_without_duplicates(
    make_library, photo_dir, offline_embedder, server_uri, tmp_path, monkeypatch
):
    """The client dies right after handing a file to the server (its import runs on; its rows appear seconds
    later): the re-run waits for it and its rows before deciding what is missing, so nothing is imported twice
    and the library equals a clean run's."""
    stage = tmp_path / "stage"
    lib = make_library(uri=server_uri)

    def die(self, task):
        raise KeyboardInterrupt  # stands in for SIGKILL: nothing after the submit runs

    with monkeypatch.context() as m:
        m.setattr(BulkLoader, "_settle", die)
        with pytest.raises(KeyboardInterrupt):
            _ingest(lib, photo_dir, offline_embedder, bulk="on", bulk_stage=str(stage), bulk_rows_per_file=3)
    assert any(p.endswith("job.json") for p in _leftovers(stage))  # the killed job's manifest is left
    report = _ingest(lib, photo_dir, offline_embedder, bulk="on", bulk_stage=str(stage), bulk_rows_per_file=3)
    assert any("earlier run" in n for n in report.notes), report.notes
    assert report.added == 2  # the 3 rows of the file the killed run handed over were not ingested again
    rows = _rows(lib)
    assert len(rows) == 5 == lib.store.count()  # count(*) counts duplicates; it equals the distinct ids
    assert sorted(p for r in rows.values() for p in r["paths"]) == sorted(str(p) for p in photo_dir.rglob("*.jpg"))
    assert _leftovers(stage) == []


def test_milvus_lite_upserts(make_library, photo_dir, offline_embedder, tmp_path):
    lib = make_library()
    assert "Milvus Lite has no bulk insert" in (supported(lib.store) or "")
    report = _ingest(lib, photo_dir, offline_embedder, bulk="auto", bulk_stage=str(tmp_path / "s"), bulk_threshold=1)
    assert report.added == 5 and report.bulk_rows == 0 and report.notes == []
    with pytest.raises(ConfigError, match=r"Milvus Lite has no bulk insert.*--bulk auto or off"):
        _ingest(make_library("other"), photo_dir, offline_embedder, bulk="on", bulk_stage=str(tmp_path / "s"))


def test_bulk_on_without_a_stage_says_what_to_set(make_library, photo_dir, offline_embedder):
    with pytest.raises(ConfigError, match="--bulk-stage"):
        _ingest(make_library(), photo_dir, offline_embedder, bulk="on")


def test_stage_names_for_the_server(tmp_path):
    assert BulkStage(str(tmp_path)).server_name("job", "0.parquet") == f"{tmp_path}/job/0.parquet"
    assert BulkStage("s3://milvus-bucket/bulk/").server_name("job", "0.parquet") == "bulk/job/0.parquet"
    assert BulkStage("s3://milvus-bucket").server_name("j", "f") == "j/f"
    assert (
        BulkStage(str(tmp_path), server_path="/var/lib/milvus/bulk").server_name("j", "f") == "/var/lib/milvus/bulk/j/f"
    )


@server
@pytest.mark.slow
def test_the_cli_killed_during_a_bulk_job_recovers_to_a_clean_run(
    tmp_path, offline_embedder, milvus_server, make_library
):
    """`assetrag ingest --bulk on` SIGKILLed at seeded moments after it handed its file to the server (seen as
    the job's manifest in the stage): during the import, after it completed but before its rows are visible,
    or later. The re-run must give the library a clean run gives: each file once, no id stored twice."""
    import os
    import random
    import subprocess
    import sys
    import time

    from test_crash import _build_library, _state, _vectors

    root = tmp_path / "library"
    _build_library(root)  # 8 files, one a byte-identical copy: 7 records
    clean = make_library("clean", uri=milvus_server.uri)
    clean.ingest(root)
    reference, ref_vectors = _state(clean), _vectors(clean)
    rng = random.Random(20261129)
    env = {**os.environ, "ASSETRAG_MODEL": "offline:v1", "ASSETRAG_TORCH_THREADS": "1"}
    fates = []
    for run in range(2):
        stage = tmp_path / f"stage{run}"
        lib = make_library(f"victim{run}", uri=milvus_server.uri)
        cmd = [sys.executable, "-m", "assetrag.cli", "--uri", milvus_server.uri, "--library", lib.store.name]
        cmd += ["--batch-size", "2", "ingest", str(root), "--json", "--bulk", "on", "--bulk-stage", str(stage)]
        delay = rng.uniform(0.0, 8.0)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 240
        while not list(stage.glob("*/job.json")) and proc.poll() is None:
            assert time.monotonic() < deadline, "the victim never handed a file to the server"
            time.sleep(0.02)
        time.sleep(delay)
        fates.append("finished" if proc.poll() is not None else f"killed {delay:.1f}s after the import started")
        proc.kill()
        proc.wait()
        proc.stderr.close()
        report = lib.ingest(root, bulk="on", bulk_stage=str(stage))
        assert report.errors == []
        state, vectors = _state(lib), _vectors(lib)
        assert state == reference, fates
        assert lib.store.count() == len(reference), fates  # count(*) would count an id imported twice
        assert vectors.keys() == ref_vectors.keys()
        # the victim embeds on one thread, this process on two: equal up to float rounding (as test_crash)
        assert all(np.allclose(vectors[k], v, atol=1e-4) for k, v in ref_vectors.items()), fates
        assert _leftovers(stage) == []
    assert any(f.startswith("killed") for f in fates), fates


def test_parquet_follows_the_collections_field_list(make_store):
    """The staged columns are the collection's own fields, in its order (`fields()` reads them from the server):
    a field a later schema adds (here a `caption`) follows without code changes; schema 4's `text` is derived
    from the row, as every write derives it."""
    import io

    import pyarrow.parquet as pq
    from pymilvus import DataType

    loader = BulkLoader(make_store(), BulkStage("/tmp/unused"))
    loader._fields = [
        {"name": "id", "type": DataType.VARCHAR, "params": {"max_length": 64}},
        {"name": "vector", "type": DataType.FLOAT_VECTOR, "params": {"dim": 3}},
        {"name": "tags", "type": DataType.ARRAY, "element_type": DataType.VARCHAR, "params": {"max_capacity": 2}},
        {"name": "metadata", "type": DataType.JSON, "params": {}},
        {"name": "caption", "type": DataType.VARCHAR, "params": {"max_length": 8}},
    ]
    rows = [{"id": "a", "vector": [0.5, 0.25, 1.0], "tags": ["x"], "metadata": {"k": "é"}, "caption": "hello"}]
    table = pq.read_table(io.BytesIO(loader._parquet(rows)))
    assert table.column_names == ["id", "vector", "tags", "metadata", "caption"]
    assert table.to_pylist() == [{**rows[0], "metadata": '{"k": "é"}'}]
    with pytest.raises(BulkError, match="'caption' is over its maximum length 8"):
        loader._parquet([{**rows[0], "caption": "far too long"}])
    with pytest.raises(BulkError, match="'tags' has 3 items, over its capacity 2"):
        loader._parquet([{**rows[0], "tags": ["a", "b", "c"]}])
    with pytest.raises(BulkError, match="lacks the field 'caption'"):
        loader._parquet([{k: v for k, v in rows[0].items() if k != "caption"}])
