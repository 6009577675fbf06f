"""The fast ingest pipeline (worker decode to model input, embed and write threads) on the real offline model and
Milvus Lite: same library as the simple pipeline, same guarantees (bad files, copies, moves, re-runs, a store
that fails mid-run)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from assetrag import Library
from assetrag.config import Settings
from assetrag.errors import ConfigError, StoreError
from assetrag.ingest import Ingestor

FIELDS = ("id", "vector", "paths", "mtimes", "width", "height", "tags", "collection", "filename", "size")


def _contents(lib: Library) -> dict[str, dict]:
    return {r["id"]: r for r in lib.store.iterate(FIELDS)}


def _same_library(a: dict[str, dict], b: dict[str, dict], min_cos: float = 0.99) -> None:
    assert a.keys() == b.keys()
    for rid, ra in a.items():
        rb = b[rid]
        for f in FIELDS[2:]:
            va, vb = ra[f], rb[f]
            if f in ("paths", "mtimes", "tags"):
                va, vb = sorted(va), sorted(vb)
            assert va == vb, (f, ra["paths"])
        cos = float(np.dot(ra["vector"], rb["vector"]))
        assert cos >= min_cos, (ra["paths"], cos)


@pytest.fixture
def messy_dir(photo_dir):
    """The five photos, a byte-identical copy, and three bad files named .jpg."""
    shutil.copy(photo_dir / "things" / "drinks" / "coffee.jpg", photo_dir / "things" / "coffee-copy.jpg")
    data = (photo_dir / "animals" / "cats" / "cat.jpg").read_bytes()
    (photo_dir / "bad").mkdir()
    (photo_dir / "bad" / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (photo_dir / "bad" / "empty.jpg").write_bytes(b"")
    (photo_dir / "bad" / "text.jpg").write_text("not an image at all")
    return photo_dir


def _errors(report) -> dict[str, str]:
    return {e.path.rsplit("/", 1)[-1]: e.reason for e in report.errors}


def test_fast_pipeline_builds_the_same_library_as_the_simple_one(tmp_path, messy_dir, offline_embedder):
    simple = Library(str(tmp_path / "simple.db"), embedder=offline_embedder)
    fast = Library(str(tmp_path / "fast.db"), embedder=offline_embedder)
    rs = simple.ingest(messy_dir, pipeline="simple")
    rf = fast.ingest(messy_dir, pipeline="fast")
    for r in (rs, rf):
        assert (r.scanned, r.added, r.duplicates, r.decoded) == (9, 5, 1, 5)
    assert _errors(rf).keys() == _errors(rs).keys() == {"truncated.jpg", "empty.jpg", "text.jpg"}
    assert _errors(rf)["empty.jpg"] == _errors(rs)["empty.jpg"]
    assert _errors(rf)["text.jpg"] == _errors(rs)["text.jpg"]
    assert "truncated" in _errors(rf)["truncated.jpg"]
    # width/height are the original image's; vectors differ only by the JPEG draft scale (512 px vs 256 px)
    _same_library(_contents(simple), _contents(fast))

    again = fast.ingest(messy_dir, pipeline="fast")
    assert (again.unchanged, again.decoded, again.added, again.updated) == (6, 0, 0, 0)
    assert len(again.errors) == 3  # bad files are reported again, never stored

    # a move and a new copy are path updates, never decoded
    (messy_dir / "animals" / "archive").mkdir()
    shutil.move(messy_dir / "animals" / "cats" / "cat.jpg", messy_dir / "animals" / "archive" / "kitty.jpg")
    shutil.copy(messy_dir / "people" / "astronaut.jpg", messy_dir / "things" / "astro-copy.jpg")
    rs, rf = simple.ingest(messy_dir, pipeline="simple"), fast.ingest(messy_dir, pipeline="fast")
    assert (rf.decoded, rf.added, rf.updated, rf.duplicates) == (rs.decoded, rs.added, rs.updated, rs.duplicates)
    assert rf.decoded == 0 and rf.updated == 2
    _same_library(_contents(simple), _contents(fast))
    simple.close()
    fast.close()


def test_process_workers_give_what_thread_workers_give(tmp_path, messy_dir, offline_embedder):
    libs = {}
    for pool in ("thread", "process"):
        lib = Library(str(tmp_path / f"{pool}.db"), embedder=offline_embedder)
        ing = Ingestor(lib.store, lambda: offline_embedder, pipeline="fast", decode_pool=pool, workers=2)
        report = ing.run([messy_dir])
        assert (report.added, report.duplicates, len(report.errors)) == (5, 1, 3)
        assert ing.used["decode_pool"] == pool and ing.used["pixel_path"]
        libs[pool] = lib
    _same_library(_contents(libs["thread"]), _contents(libs["process"]), min_cos=0.99999)
    # a re-run with workers in processes: the stored ids reach them as 64-bit prefixes
    lib = libs["process"]
    shutil.copy(messy_dir / "people" / "camera.jpg", messy_dir / "camera-copy.jpg")
    report = Ingestor(lib.store, lambda: offline_embedder, pipeline="fast", decode_pool="process", workers=2).run(
        [messy_dir]
    )
    assert (report.decoded, report.updated, report.duplicates) == (0, 1, 1)
    for lib in libs.values():
        lib.close()


def test_a_store_failing_mid_run_stops_the_run_clearly_and_a_rerun_completes(
    tmp_path, messy_dir, offline_embedder, monkeypatch
):
    lib = Library(str(tmp_path / "lib.db"), embedder=offline_embedder)
    store = lib.store
    real_upsert = type(store).upsert
    calls = {"n": 0}

    def failing_upsert(self, rows):
        calls["n"] += 1
        if calls["n"] == 2:
            raise StoreError("Milvus went away (injected)")
        return real_upsert(self, rows)

    monkeypatch.setattr(type(store), "upsert", failing_upsert)
    ing = Ingestor(store, lambda: offline_embedder, pipeline="fast", batch_size=2, workers=2)
    with pytest.raises(StoreError, match="injected"):
        ing.run([messy_dir])
    written = lib.stats()["count"]
    assert 0 < written < 5  # the first batch is in; the rest was dropped, not half-written

    monkeypatch.setattr(type(store), "upsert", real_upsert)
    report = Ingestor(store, lambda: offline_embedder, pipeline="fast", batch_size=2, workers=2).run([messy_dir])
    assert report.added == 5 - written and len(report.errors) == 3
    clean = Library(str(tmp_path / "clean.db"), embedder=offline_embedder)
    clean.ingest(messy_dir, pipeline="fast")
    _same_library(_contents(clean), _contents(lib), min_cos=0.99999)
    lib.close()
    clean.close()


def test_pipeline_choice(monkeypatch, tmp_path):
    import torch

    from assetrag.store import Store

    store = Store(str(tmp_path / "x.db"), "x")
    ing = Ingestor(store, lambda: None, pipeline="auto", device="auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not ing._use_fast()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert ing._use_fast()
    assert not Ingestor(store, lambda: None, pipeline="auto", device="cpu")._use_fast()
    assert Ingestor(store, lambda: None, pipeline="fast", device="cpu")._use_fast()
    with pytest.raises(ConfigError, match="pipeline"):
        Ingestor(store, lambda: None, pipeline="turbo")
    with pytest.raises(ConfigError, match="pipeline"):
        Settings(pipeline="turbo").validate()
    assert Settings.from_env().pipeline == "auto"
    store.close()


def test_cli_ingest_offers_the_pipeline_choice():
    from typer.testing import CliRunner

    from assetrag.cli import app

    result = CliRunner().invoke(app, ["ingest", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--pipeline" in result.output


def test_fast_pipeline_never_blocks_on_a_fifo_named_like_an_image(tmp_path, photo_dir, offline_embedder):
    import os

    os.mkfifo(photo_dir / "pipe.jpg")
    lib = Library(str(tmp_path / "lib.db"), embedder=offline_embedder)
    report = lib.ingest(photo_dir, pipeline="fast")
    assert report.added == 5 and [e.path.rsplit("/", 1)[-1] for e in report.errors] == ["pipe.jpg"]
    assert "not a regular file" in report.errors[0].reason
    lib.close()


@pytest.mark.parametrize("pipeline", ["simple", "fast"])
def test_the_runner_times_each_stage(tmp_path, messy_dir, offline_embedder, pipeline):
    lib = Library(str(tmp_path / "t.db"), embedder=offline_embedder)
    report = Ingestor(lib.store, lambda: offline_embedder, pipeline=pipeline, batch_size=2).run([messy_dir])
    stages = report.stages
    assert {"scan", "known", "read+decode", "embed", "write", "path updates"} <= set(stages)
    assert all(s >= 0 for s in stages.values()) and stages["embed"] > 0 and stages["read+decode"] > 0
    assert report.embed_s == pytest.approx(stages["embed"] + stages.get("gpu-decode", 0.0))
    assert report.to_dict()["stages"].keys() == stages.keys()
    again = Ingestor(lib.store, lambda: offline_embedder, pipeline=pipeline).run([messy_dir])
    assert "embed" not in again.stages and again.decoded == 0  # nothing new: the model is never called
    lib.close()
