"""Crash safety: `assetrag ingest` killed with SIGKILL at seeded random points, then re-run to completion.

After every re-run the library must equal the one a clean, uninterrupted run builds: each file present exactly
once, no orphaned entries (every stored path exists and belongs to the library), the same records with the
same (path, mtime) pairs.

Two scenarios, 10 kills in all on Milvus Lite and 4 on a Milvus server (the server's own crash is in
test_server_faults.py); the records' vectors are compared too, not only their ids and paths:
* fresh: an empty library, ingest of a folder with byte-identical copies in it;
* update: a clean library whose folder then changed (a file edited in place, one moved, one deleted, new files,
  a new copy of a stored file), ingested with --prune.

The killed process is the real CLI (`python -m assetrag.cli ingest --batch-size 2`); it is killed at a random
moment of its write phase (from its first write to the store — seen on disk for Lite, in the row count on a
server — to when a clean run would have
finished). Two victims run at a time (they spend most of their life importing torch and loading the model);
the re-runs and checks happen in this process, on the already loaded model, while the next pair starts.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from hashlib import sha256
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assetrag import Library
from assetrag.store import SCALAR_FIELDS, Store, is_server_uri

BATCH = 2
SEED = 20261126
KILLS = 10


def _image(rng: np.random.Generator, path: Path, size: int = 64) -> None:
    """A small photo-like JPEG (smooth colour blobs, so the model sees something)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    base = rng.random((4, 4, 3))
    img = Image.fromarray((base * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
    img.save(path, quality=90)


def _build_library(root: Path) -> None:
    rng = np.random.default_rng(7)
    for i in range(7):
        _image(rng, root / ("a" if i % 2 else "b") / f"img{i}.jpg")
    shutil.copy2(root / "a" / "img1.jpg", root / "b" / "copy-of-img1.jpg")  # byte-identical: one record


def _mutate_library(root: Path) -> None:
    rng = np.random.default_rng(8)
    time.sleep(0.01)
    _image(rng, root / "a" / "img3.jpg", size=72)  # edited in place: new bytes, same path
    (root / "c").mkdir()
    shutil.move(root / "b" / "img2.jpg", root / "c" / "img2-moved.jpg")  # moved
    os.remove(root / "b" / "img4.jpg")  # deleted (pruned)
    _image(rng, root / "c" / "new1.jpg")
    _image(rng, root / "c" / "new2.jpg")
    shutil.copy2(root / "b" / "img0.jpg", root / "c" / "copy-of-img0.jpg")  # a new copy of a stored file


def _state(lib: Library) -> dict[str, frozenset[tuple[str, int]]]:
    """record id → its (path, mtime) pairs: what a library holds, independent of write order."""
    out: dict[str, frozenset[tuple[str, int]]] = {}
    for row in lib.store.iterate(("id", "paths", "mtimes")):
        assert row["id"] not in out
        out[row["id"]] = frozenset(zip(row["paths"], row["mtimes"], strict=True))
    return out


def _vectors(lib: Library) -> dict[str, np.ndarray]:
    return {row["id"]: np.asarray(row["vector"], np.float32) for row in lib.store.iterate(("id", "vector"))}


def _same_vectors(got: dict[str, np.ndarray], want: dict[str, np.ndarray], what: str) -> None:
    """The same records with the same embeddings (a killed run must not leave a half-written or stale vector;
    victims embed on one thread, so equal up to float rounding)."""
    assert got.keys() == want.keys(), what
    for rid, vec in want.items():
        assert got[rid].shape == vec.shape and np.allclose(got[rid], vec, atol=1e-4), f"{what}: {rid[:12]}"
        assert float(got[rid] @ vec) > 0.9999, what


def _check_invariants(state: dict[str, frozenset[tuple[str, int]]], root: Path) -> None:
    paths = [p for pairs in state.values() for p, _ in pairs]
    assert len(paths) == len(set(paths)), "a file is listed by more than one record"
    assert all(pairs for pairs in state.values()), "a record with no file (orphan)"
    on_disk = {str(p) for p in root.rglob("*.jpg")}
    assert set(paths) == on_disk, set(paths) ^ on_disk


class Target:
    """Where one library lives: a Milvus Lite directory, or a collection of its own on the session's server."""

    def __init__(self, uri: str, library: str = "assets") -> None:
        self.uri, self.library = uri, library
        self.server = is_server_uri(uri)

    def open(self, embedder) -> Library:
        return Library(self.uri, library=self.library, embedder=embedder)

    def copy_to(self, other: Target, embedder) -> None:
        """`other` becomes a copy of this (closed) library."""
        if not self.server:
            shutil.copytree(self.uri, other.uri)  # a closed Lite dir copies
            return
        with self.open(embedder) as lib:
            lib.migrate_to(other.uri, library=other.library)

    def signature(self) -> tuple:
        """Something that changes when the library is written to."""
        if not self.server:
            return _write_signature(Path(self.uri))
        store = Store(self.uri, self.library)
        try:
            return (store.count(),) if store.exists() else ()
        finally:
            store.close()

    def drop(self) -> None:
        if self.server:
            store = Store(self.uri, self.library)
            store.drop()
            store.close()


def _write_signature(db: Path) -> tuple:
    """What the store has on disk (file names and sizes under collections/): changes on every write."""
    root = db / "collections"
    if not root.exists():
        return ()
    sig = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                sig.append((os.path.join(dirpath, name), os.stat(os.path.join(dirpath, name)).st_size))
    return tuple(sorted(sig))


def _ingest_cmd(target: Target, root: Path, prune: bool, pipeline: str = "simple") -> list[str]:
    cmd = [sys.executable, "-m", "assetrag.cli", "--uri", target.uri, "--library", target.library]
    cmd += ["--batch-size", str(BATCH), "--workers", "2"]
    return [*cmd, "ingest", str(root), "--json", "--pipeline", pipeline, *(["--prune"] if prune else [])]


def _kill_during_writes(jobs: list[tuple[Target, list[str], float]], timeout: float = 180.0) -> list[str]:
    """Start every victim at once; SIGKILL each `delay` seconds after its first write. Returns what happened."""
    env = {**os.environ, "ASSETRAG_MODEL": "offline:v1", "ASSETRAG_TORCH_THREADS": "1"}
    procs = []
    for db, cmd, delay in jobs:
        before = db.signature()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append({"proc": proc, "db": db, "before": before, "delay": delay, "t_write": None, "fate": None})
    deadline = time.monotonic() + timeout
    while any(p["fate"] is None for p in procs):
        assert time.monotonic() < deadline, "a victim never wrote to its store"
        now = time.monotonic()
        for p in procs:
            if p["fate"] is not None:
                continue
            if p["proc"].poll() is not None:  # finished before its kill time: the re-run has nothing to do
                p["fate"] = f"finished (rc {p['proc'].returncode})"
                assert p["proc"].returncode == 0, p["proc"].stderr.read()
                continue
            if p["t_write"] is None:
                if p["db"].signature() != p["before"]:
                    p["t_write"] = now
            elif now - p["t_write"] >= p["delay"]:
                p["proc"].send_signal(signal.SIGKILL)
                p["proc"].wait()
                p["fate"] = f"killed {p['delay']:.2f}s after its first write"
        time.sleep(0.005 if not jobs[0][0].server else 0.02)
    for p in procs:
        p["proc"].stderr.close()
    return [p["fate"] for p in procs]


@pytest.mark.slow
def test_ingest_killed_at_random_points_recovers_to_a_clean_run(tmp_path, offline_embedder, store_uri):
    lib_dir = tmp_path / "library"
    _build_library(lib_dir)
    server = is_server_uri(store_uri)
    kills = 4 if server else KILLS  # a server run costs more per victim; Lite keeps the full ten
    suffix = uuid.uuid4().hex[:8]
    targets: list[Target] = []

    def target(name: str) -> Target:
        t = (
            Target(store_uri, f"crash_{name.replace('-', '_')}_{suffix}")
            if server
            else Target(str(tmp_path / f"{name}.db"))
        )
        targets.append(t)
        return t

    def ingest(db: Target, prune: bool = False) -> tuple[float, dict, dict]:
        with db.open(offline_embedder) as lib:
            t = time.perf_counter()
            report = lib.ingest(lib_dir, prune=prune)
            assert report.errors == []
            return time.perf_counter() - t, _state(lib), _vectors(lib)

    try:
        # the clean reference runs (in this process; the first also warms the model's class-name cache)
        before_update = target("before-update")
        _, before, _ = ingest(before_update)
        _check_invariants(before, lib_dir)
        assert len(before) == 7  # 8 files, one a byte-identical copy of another
        update_ref = target("update-ref")
        before_update.copy_to(update_ref, offline_embedder)
        _mutate_library(lib_dir)
        update_s, reference, ref_vectors = ingest(update_ref, prune=True)
        _check_invariants(reference, lib_dir)
        assert len(reference) == 8  # -1 deleted, the edited one replaced, +2 new, the new copy joins a record
        fresh_s, from_scratch, scratch_vectors = ingest(target("fresh-ref"))
        assert from_scratch == reference  # incremental update and ingest from scratch agree
        _same_vectors(scratch_vectors, ref_vectors, "from scratch")

        rng = random.Random(SEED)
        # the mutated library from empty (fresh) and from the library as it was (update), in pairs, until ten
        # victims were killed mid-write (one that finishes before its kill time does not count; at most 16
        # runs). While a pair of victims starts up (imports, model), this process re-runs and checks the
        # previous pair.
        fates: list[str] = []
        victims: dict[tuple[str, int], Target] = {}

        def check(pair: list[tuple[str, int]]) -> None:
            for kind, i in pair:
                _, state, vectors = ingest(victims[kind, i], prune=kind == "update")
                _check_invariants(state, lib_dir)
                assert state == reference, f"{kind} run {i}: {fates}"
                _same_vectors(vectors, ref_vectors, f"{kind} run {i}: {fates}")

        run, previous = 0, None
        while sum(f.startswith("killed") for f in fates) < kills:
            assert run < 16, fates
            pair = [("fresh" if (run + j) % 2 == 0 else "update", run + j) for j in range(2)]
            run += 2
            jobs = []
            for kind, i in pair:
                db = victims[kind, i] = target(f"{kind}-{i}")
                if kind == "update":
                    before_update.copy_to(db, offline_embedder)
                # the victims embed on one thread each, beside other work: slower than the reference run here
                window = fresh_s if kind == "fresh" else update_s
                # every other pair runs the fast pipeline (embed and write threads, more batches in flight)
                pipeline = "fast" if i % 4 >= 2 else "simple"
                jobs.append((db, _ingest_cmd(db, lib_dir, kind == "update", pipeline), rng.uniform(0.0, window)))
            with ThreadPoolExecutor(1) as killer:
                killed = killer.submit(_kill_during_writes, jobs)
                if previous:
                    check(previous)
                fates += killed.result()
            previous = pair
        check(previous)
    finally:
        for t in targets:
            t.drop()


def test_a_path_left_on_two_records_by_a_crash_is_resolved(tmp_path, offline_embedder):
    """Killed between writing a changed file's new record and removing the path from its old record, a run
    leaves one path on two records; the next run must notice and keep only the record of the bytes on disk."""
    root = tmp_path / "library"
    rng = np.random.default_rng(3)
    for i in range(3):
        _image(rng, root / f"img{i}.jpg")
    target = root / "img1.jpg"
    with Library(tmp_path / "a.db", library="assets", embedder=offline_embedder) as lib:
        lib.ingest(root)
        old_id = lib.store.query(f'path == "{target}"', ("id",))[0]["id"]
    # new bytes for the same path, chosen so that the new record is listed after the old one (ids are
    # sha256s; records come back in id order), the order in which the stale record used to win
    while True:
        _image(rng, target, size=80)
        if sha256(target.read_bytes()).hexdigest() > old_id:
            break
    with Library(tmp_path / "b.db", library="assets", embedder=offline_embedder) as other:
        other.ingest(root)
        new_row = other.store.query(f'path == "{target}"', (*SCALAR_FIELDS, "vector"))[0]
    with Library(tmp_path / "a.db", library="assets", embedder=offline_embedder) as lib:
        lib.store.upsert([new_row])  # the crash state: both records list img1.jpg
        assert {r["id"] for r in lib.store.query(f'array_contains(paths, "{target}")', ("id",))} == {
            old_id,
            new_row["id"],
        }
        lib.ingest(root)
        state = _state(lib)
    _check_invariants(state, root)
    assert old_id not in state and new_row["id"] in state and len(state) == 3
