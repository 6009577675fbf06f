"""Ingest on the real offline model, Milvus Lite and a Milvus server: incremental, moves, duplicates, bad files."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time

import pytest
from PIL import Image

pytestmark = pytest.mark.usefixtures("store_uri")  # every test on Milvus Lite and on a server


def _paths(lib):
    return sorted(p for r in lib.store.iterate(("paths",)) for p in r["paths"])


def test_ingest_then_search_finds_each_photo(make_library, photo_dir):
    lib = make_library()
    report = lib.ingest(photo_dir)
    assert (report.scanned, report.added, report.decoded, report.errors) == (5, 5, 5, [])
    assert lib.stats()["count"] == 5
    hit = lib.search("a cat", k=1)[0]
    assert hit.filename == "cat.jpg"
    assert hit.collection == "animals" and hit.tags == ["animals", "cats"]
    assert 0 < hit.score <= 1


def test_rerun_on_unchanged_library_decodes_nothing(make_library, photo_dir):
    lib = make_library()
    lib.ingest(photo_dir)
    again = lib.ingest(photo_dir)
    assert (again.unchanged, again.decoded, again.added, again.updated) == (5, 0, 0, 0)


def test_moved_file_keeps_its_id_and_gets_the_new_path(make_library, photo_dir):
    lib = make_library()
    lib.ingest(photo_dir)
    before = lib.search("a cat", k=1)[0]
    new = photo_dir / "animals" / "archive" / "kitty.jpg"
    new.parent.mkdir()
    shutil.move(photo_dir / "animals" / "cats" / "cat.jpg", new)
    os.remove(photo_dir / "things" / "space" / "rocket.jpg")
    report = lib.ingest(photo_dir)
    assert report.decoded == 0 and report.updated == 1
    # the moved file is not "gone from disk" (its record has the new path): only the deleted one is
    assert report.missing == 1
    after = lib.get(before.id)
    assert after.paths == [str(new)] and after.path == str(new)
    assert "archive" in after.tags and "cats" not in after.tags
    assert lib.stats()["count"] == 5
    assert lib.ingest(photo_dir).missing == 1


def test_byte_identical_duplicates_are_one_entry_with_all_paths(make_library, photo_dir):
    copy = photo_dir / "things" / "copy-of-coffee.jpg"
    shutil.copy(photo_dir / "things" / "drinks" / "coffee.jpg", copy)
    lib = make_library()
    report = lib.ingest(photo_dir)
    assert report.scanned == 6 and report.added == 5 and report.duplicates == 1 and report.decoded == 5
    assert lib.stats()["count"] == 5
    groups = lib.duplicates(threshold=None)["exact"]
    assert len(groups) == 1 and sorted(groups[0]["paths"]) == sorted(
        [str(copy), str(photo_dir / "things" / "drinks" / "coffee.jpg")]
    )
    # a duplicate added later joins the same entry without decoding
    later = photo_dir / "people" / "another-coffee.jpg"
    shutil.copy(copy, later)
    again = lib.ingest(photo_dir)
    assert again.decoded == 0 and again.duplicates == 1
    assert len(lib.get(groups[0]["id"]).paths) == 3


def test_deleted_files_are_pruned_only_when_asked(make_library, photo_dir):
    lib = make_library()
    lib.ingest(photo_dir)
    os.remove(photo_dir / "things" / "space" / "rocket.jpg")
    report = lib.ingest(photo_dir)
    assert report.missing == 1 and lib.stats()["count"] == 5
    report = lib.ingest(photo_dir, prune=True)
    assert report.pruned == 1 and lib.stats()["count"] == 4
    assert all("rocket" not in p for p in _paths(lib))


def test_file_changed_in_place_replaces_its_entry(make_library, photo_dir, photo_arrays):
    lib = make_library()
    lib.ingest(photo_dir)
    target = photo_dir / "people" / "camera.jpg"
    old_id = lib.search("a camera", k=5, where=f'path == "{target}"')[0].id
    time.sleep(0.01)
    Image.fromarray(photo_arrays["rocket"]).save(target, quality=80)  # new bytes, same path
    report = lib.ingest(photo_dir)
    assert report.added == 1 and report.pruned == 1
    assert lib.get(old_id) is None
    assert lib.stats()["count"] == 5
    assert _paths(lib).count(str(target)) == 1


def test_bad_files_are_reported_and_never_stop_the_rest(make_library, photo_dir, tmp_path):
    bad = photo_dir / "broken"
    bad.mkdir()
    (bad / "zero.jpg").write_bytes(b"")
    (bad / "notes.jpg").write_text("I am a text file")
    good = (photo_dir / "animals" / "cats" / "cat.jpg").read_bytes()
    (bad / "truncated.jpg").write_bytes(good[: len(good) // 3])
    side = 9600
    Image.new("1", (side, side)).save(bad / "bomb.png")
    os.symlink(bad / "does-not-exist.png", bad / "dangling.png")
    (bad / "readme.txt").write_text("not an image extension: ignored")
    lib = make_library()
    report = lib.ingest(photo_dir)
    reasons = {os.path.basename(e.path): e.reason for e in report.errors}
    assert set(reasons) == {"zero.jpg", "notes.jpg", "truncated.jpg", "bomb.png", "dangling.png"}
    assert "empty" in reasons["zero.jpg"]
    assert "not an image" in reasons["notes.jpg"]
    assert "truncated" in reasons["truncated.jpg"] or "corrupt" in reasons["truncated.jpg"]
    assert "bomb" in reasons["bomb.png"]
    assert "symbolic link" in reasons["dangling.png"]
    assert report.added == 5 and lib.stats()["count"] == 5
    assert lib.search("a rocket", k=1)[0].filename == "rocket.jpg"
    json.dumps([e.__dict__ for e in report.errors])  # serialisable for --errors


def test_collection_tag_options_and_sidecar_metadata(make_library, photo_dir):
    (photo_dir / "people" / "astronaut.jpg.json").write_text(
        json.dumps({"tags": ["nasa"], "usage": "internal-only", "caption": "official portrait"})
    )
    (photo_dir / "things" / "_assetrag.json").write_text(json.dumps({"brand": "acme"}))
    lib = make_library()
    lib.ingest(photo_dir, collection="lunar-2025", tags=["spring"])
    astro = lib.search("an astronaut", k=1, tags=["nasa"])[0]
    assert astro.filename == "astronaut.jpg"
    assert astro.collection == "lunar-2025"
    assert set(astro.tags) == {"people", "spring", "nasa"}
    assert astro.metadata == {"usage": "internal-only", "caption": "official portrait"}
    rocket = lib.search("a rocket", k=1)[0]
    assert rocket.metadata == {"brand": "acme"}
    # editing a sidecar refreshes the metadata without decoding the image again
    time.sleep(0.01)
    (photo_dir / "people" / "astronaut.jpg.json").write_text(json.dumps({"usage": "public"}))
    report = lib.ingest(photo_dir, collection="lunar-2025", tags=["spring"])
    assert report.decoded == 0 and report.updated == 1
    assert lib.get(astro.id).metadata["usage"] == "public"


def test_empty_folder_creates_nothing(make_library, tmp_path):
    (tmp_path / "empty").mkdir()
    lib = make_library()
    report = lib.ingest(tmp_path / "empty")
    assert report.scanned == 0 and lib.stats()["exists"] is False
    assert lib.search("anything") == []


def test_the_first_copy_in_scan_order_leads_whichever_worker_finishes_first(make_library, photo_dir, monkeypatch):
    """Two byte-identical files read by two workers: the later one (in scan order) is decoded first, always, not
    by timing. The record is still the earlier file's — its path first — and the later one is a path update:
    which copy leads a record does not depend on thread timing (bulk and upsert ingests agree)."""
    from assetrag.config import Settings
    from assetrag.ingest.simple import SimplePipeline

    first = photo_dir / "animals" / "a-copy.jpg"  # sorts before cats/cat.jpg in scan order
    shutil.copy(photo_dir / "animals" / "cats" / "cat.jpg", first)
    twin = photo_dir / "animals" / "cats" / "cat.jpg"
    real_prepare = SimplePipeline._prepare
    twin_read = threading.Event()
    items = {}

    def first_waits_for_its_twin(self, entry):
        assert self.ctx.workers == 2  # one worker would read the files in scan order: no race at all
        if entry.path == str(first):
            assert twin_read.wait(60), "the twin was never read"
        item = real_prepare(self, entry)
        items[entry.path] = item
        if entry.path == str(twin):
            twin_read.set()
        return item

    monkeypatch.setattr(SimplePipeline, "_prepare", first_waits_for_its_twin)
    # two decode workers even on 2 cores (torch_threads=0: the model's threads do not cap the workers)
    lib = make_library(settings=Settings(batch_size=1, workers=2, torch_threads=0))
    report = lib.ingest(photo_dir)
    assert twin_read.is_set() and items[str(first)].id == items[str(twin)].id is not None
    # the twin was decoded first, yet the in-order claim gave the bytes to the first file and dropped its pixels
    assert items[str(first)].decoded is not None and items[str(twin)].decoded is None
    assert report.errors == [] and report.added == 5 and report.duplicates == 1 and report.decoded == 5
    assert lib.get(lib.search("a cat", k=1)[0].id).paths == [str(first), str(twin)]
