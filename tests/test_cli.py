"""The `assetrag` command line end to end (real model, real Milvus Lite), as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from cli_support import run_in_process


def _env(uri: Path) -> dict[str, str]:
    env = {**os.environ, "ASSETRAG_URI": str(uri), "ASSETRAG_MODEL": "offline:v1", "ASSETRAG_TORCH_THREADS": "2"}
    env.pop("COLUMNS", None)  # output piped, as in a script
    return env


def _run(*args: str, uri: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`assetrag <args>` as a process, as a user runs it."""
    res = subprocess.run(
        [sys.executable, "-m", "assetrag.cli", *args], capture_output=True, text=True, env=_env(uri), timeout=300
    )
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


def _run_here(*args: str, uri: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`assetrag <args>` in this process (`main()`, the same environment): for a test of many calls whose
    process start is covered by the tests that use `_run`."""
    res = run_in_process(*args, env=_env(uri))
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_cli_ingest_search_json_sheet_stats_remove(tmp_path, photo_dir):
    uri = tmp_path / "cli.db"
    (photo_dir / "empty.jpg").write_bytes(b"")
    errors = tmp_path / "errors.json"
    res = _run("ingest", str(photo_dir), "--errors", str(errors), "--tag", "demo", uri=uri)
    assert "added 5" in res.stdout and "errors 1" in res.stdout
    assert "weaker than CLIP" in res.stderr  # the offline model says what it is
    assert [e["path"] for e in json.loads(errors.read_text())] == [str(photo_dir / "empty.jpg")]

    sheet = tmp_path / "sheet.png"
    res = _run("search", "a rocket", "-k", "3", "--json", "--sheet", str(sheet), uri=uri)
    hits = json.loads(res.stdout)
    assert [h["rank"] for h in hits] == [1, 2, 3] and hits[0]["filename"] == "rocket.jpg"
    assert "weaker than CLIP" not in res.stderr  # said when the library was built, not on every search
    assert set(hits[0]) >= {"id", "score", "path", "collection", "tags", "width", "height"}
    assert Image.open(sheet).size[0] > 300

    cat = photo_dir / "animals" / "cats" / "cat.jpg"
    res = _run("search", "--image", str(cat), "-k", "1", uri=uri)
    assert len(str(cat)) > 80 and str(cat) in res.stdout  # piped tables are not cut at 80 columns

    stats = json.loads(_run("stats", "--json", uri=uri).stdout)
    assert stats["count"] == 5 and stats["collections"] == {"animals": 1, "people": 2, "things": 2}
    assert stats["model"].startswith("offline:")

    res = _run("remove", str(photo_dir / "people"), uri=uri)
    assert "removed 2" in res.stdout
    assert json.loads(_run("stats", "--json", uri=uri).stdout)["count"] == 3


def test_cli_video_hits_name_the_time_in_json_the_table_and_the_contact_sheet(tmp_path, photo_arrays, monkeypatch):
    import numpy as np

    from assetrag import render
    from assetrag.video import frame_at
    from fakes.videos import make_video

    video = make_video(tmp_path / "lib" / "lunar.mp4", [photo_arrays[n] for n in ("cat", "coffee", "rocket")])
    uri = tmp_path / "cli.db"
    _run_here("ingest", str(tmp_path / "lib"), uri=uri)
    tiles: list = []
    real = render.render_contact_sheet
    monkeypatch.setattr(
        render, "render_contact_sheet", lambda title, t, *a, **kw: real(title, tiles.extend(t) or t, *a, **kw)
    )
    sheet = tmp_path / "sheet.png"
    search = ("search", "a rocket", "-k", "3", "--mode", "vector")
    hits = json.loads(_run_here(*search, "--json", "--sheet", str(sheet), uri=uri).stdout)
    assert hits[0]["filename"] == "lunar.mp4" and hits[0]["media"] == "video_frame"
    assert hits[0]["time"] == pytest.approx(4.0) and sorted(h["time"] for h in hits) == pytest.approx([0.0, 2.0, 4.0])
    # the sheet's first tile is the frame at the hit's time (the rocket, not the cat at 0 s), labelled with it
    assert tiles[0].label == "lunar.mp4 @ 4.0s" and isinstance(tiles[0].image, Image.Image)
    rocket = np.asarray(frame_at(video, 4.0).resize(tiles[0].image.size), np.float32)
    assert np.abs(np.asarray(tiles[0].image.convert("RGB"), np.float32) - rocket).mean() < 1.0
    assert Image.open(sheet).size[0] > 300
    assert f"{video} @ 4.0s" in _run_here(*search, uri=uri).stdout
    grouped = json.loads(_run_here(*search, "--group-videos", "--json", uri=uri).stdout)
    assert len(grouped) == 1 and grouped[0]["time"] == pytest.approx(4.0)
    assert sorted(grouped[0]["moments"]) == pytest.approx([0.0, 2.0])


def test_cli_search_pages_with_offset_and_says_what_it_understood_with_json(tmp_path, photo_dir):
    uri = tmp_path / "cli.db"
    _run_here("ingest", str(photo_dir), uri=uri)
    first = json.loads(_run_here("search", "a rocket", "-k", "4", "--json", uri=uri).stdout)
    page = json.loads(_run_here("search", "a rocket", "-k", "2", "--offset", "2", "--json", uri=uri).stdout)
    assert [h["rank"] for h in page] == [3, 4] and [h["id"] for h in page] == [h["id"] for h in first[2:]]
    # the results were filtered by a name read from the query: stdout stays JSON, stderr says so
    res = _run_here("search", "a rocket from the things collection", "--json", uri=uri)
    assert {h["collection"] for h in json.loads(res.stdout)} == {"things"}
    assert "understood: collection = things" in res.stderr
    # an explicit name is exact: a search that finds nothing says which name matched no asset
    res = _run_here("search", "a rocket", "--collection", "Things", "--tag", "space", uri=uri)
    assert res.stdout.strip() == "no results" and "no asset has collection 'Things'" in res.stderr
    assert "tag 'space'" not in res.stderr


def test_cli_user_errors_are_one_clear_line(tmp_path, photo_dir):
    uri = tmp_path / "cli.db"
    res = _run("search", uri=uri, check=False)
    assert res.returncode == 2 and "give a text query" in res.stderr
    assert "Traceback" not in res.stderr
    res = _run("--uri", str(tmp_path / "nodb"), "stats", uri=uri, check=False)
    assert res.returncode == 2 and "neither a Milvus Lite path" in res.stderr
    res = _run("--library", "my-assets", "stats", uri=uri, check=False)
    assert res.returncode == 2 and "library name 'my-assets' is not allowed" in res.stderr
    assert "use e.g. 'my_assets'" in res.stderr and "Traceback" not in res.stderr


def test_cli_prints_bracketed_names_as_text_not_markup(tmp_path, photo_arrays):
    """Paths, tags, queries and error messages are the user's words: '[final]' is printed, '[b]' is not eaten as
    bold, and '[/x]' (a closing tag Rich cannot match) is not a traceback."""
    folder = tmp_path / "lib" / "[final]"
    folder.mkdir(parents=True)
    Image.fromarray(photo_arrays["coffee"]).save(folder / "coffee [red].jpg")
    (folder / "broken [b].jpg").write_bytes(b"not an image")
    uri = tmp_path / "cli.db"
    res = _run_here("ingest", str(tmp_path / "lib"), uri=uri)
    assert "errors 1" in res.stdout and "broken [b].jpg" in res.stdout
    res = _run_here("search", "a [/b] cup", "-k", "1", "--mode", "vector", uri=uri)
    assert str(folder / "coffee [red].jpg") in res.stdout and "[final]" in res.stdout and "a [/b] cup" in res.stdout
    assert "[final]" in _run_here("stats", uri=uri).stdout
    res = _run_here("search", "--image", str(tmp_path / "[/x]nope.png"), uri=uri, check=False)
    assert res.returncode == 2 and "[/x]nope.png does not exist" in res.stderr and "Traceback" not in res.stderr
    res = _run_here("ingest", "--help", uri=uri)
    assert "assetrag[ray]" in res.stdout.replace("\n", "").replace(" ", "").replace("│", "")


def test_cli_duplicates_index_and_doctor(tmp_path, photo_dir):
    """In this process: the CLI's start as a process is covered by the other tests here."""
    uri = tmp_path / "cli.db"
    cat = photo_dir / "animals" / "cats" / "cat.jpg"
    copy = photo_dir / "copies" / "cat-copy.jpg"
    copy.parent.mkdir()
    copy.write_bytes(cat.read_bytes())  # byte-identical: one asset, two paths
    rocket = photo_dir / "things" / "space" / "rocket.jpg"
    near = photo_dir / "copies" / "rocket-smaller.jpg"
    with Image.open(rocket) as im:  # the same picture, re-encoded smaller: a near-duplicate
        im.resize((im.width * 3 // 4, im.height * 3 // 4)).save(near, quality=80)
    res = _run_here("ingest", str(photo_dir), uri=uri)
    assert "added 6" in res.stdout

    found = json.loads(_run_here("duplicates", "--json", uri=uri).stdout)
    assert [sorted(g["paths"]) for g in found["exact"]] == [sorted([str(cat), str(copy)])]
    # the re-encoded, smaller rocket is a near-duplicate by perceptual hash, and nothing else is
    assert [sorted(m["path"] for m in g["members"]) for g in found["near"]] == [sorted([str(rocket), str(near)])]
    assert all(0 <= m["distance"] <= found["distance"] for m in found["near"][0]["members"])
    assert found["not_hashed"] == 0
    # (the offline model puts the re-encoded rocket at ~0.9 and any two different photos below 0.7)
    alike = json.loads(_run_here("duplicates", "--threshold", "0.85", "--json", uri=uri).stdout)
    # an explicit threshold lists look-alikes; the rocket pair is already a near-duplicate group, not repeated
    assert alike["threshold"] == 0.85 and alike["similar"] == []
    text = _run_here("duplicates", uri=uri).stdout
    assert "1 exact duplicate group(s)" in text and "1 near-duplicate group(s)" in text
    assert f"{cat}  =  {copy}" in text or f"{copy}  =  {cat}" in text

    built = json.loads(_run_here("index", "flat", "--json", uri=uri).stdout)
    assert built["index_type"] == "FLAT" and built["rows"] == 6
    assert json.loads(_run_here("search", "a rocket", "-k", "1", "--json", uri=uri).stdout)[0]["filename"] in {
        "rocket.jpg",
        "rocket-smaller.jpg",
    }
    res = _run_here("index", "hnsw", uri=uri)
    assert res.stdout.startswith("built HNSW (") and "over 6 assets" in res.stdout
    assert json.loads(_run_here("stats", "--json", uri=uri).stdout)["count"] == 6

    checks = {c["name"]: c for c in json.loads(_run_here("doctor", "--json", uri=uri).stdout)}
    assert {"versions", "device", "runtime", "store", "model"} <= checks.keys()
    assert all(c["status"] in ("ok", "warn") for c in checks.values())
    assert "6 assets" in checks["store"]["detail"] and checks["store"]["status"] == "ok"
    assert "offline:" in checks["model"]["detail"]
    # a check that fails: exit 1, and the text form marks it
    bad = _run_here("--model", str(tmp_path / "no-such-model"), "doctor", uri=uri, check=False)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "✗" in bad.stdout and "Traceback" not in bad.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serve_is_a_real_server(tmp_path, photo_dir):
    """`assetrag serve` as a process: it answers on its loopback port, searches, and stops on SIGTERM."""
    uri = tmp_path / "cli.db"
    _run("ingest", str(photo_dir), uri=uri)
    port = _free_port()
    env = {**os.environ, "ASSETRAG_URI": str(uri), "ASSETRAG_MODEL": "offline:v1", "ASSETRAG_TORCH_THREADS": "2"}
    env.pop("ASSETRAG_API_TOKEN", None)
    cmd = [sys.executable, "-m", "assetrag.cli", "serve", "--port", str(port), "--root", str(photo_dir)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            try:
                with urllib.request.urlopen(f"{base}/api/health", timeout=2) as r:
                    health = json.load(r)
                break
            except OSError:
                assert time.monotonic() < deadline, "assetrag serve did not answer /api/health in 120 s"
                time.sleep(0.2)
        assert health["status"] == "ok", health
        query = urllib.parse.urlencode({"q": "a rocket", "limit": 2})
        with urllib.request.urlopen(f"{base}/api/search?{query}", timeout=60) as r:
            items = json.load(r)["items"]
        assert items[0]["filename"] == "rocket.jpg" and len(items) == 2
        with urllib.request.urlopen(base + items[0]["image_url"], timeout=30) as r:
            assert r.read() == (photo_dir / "things" / "space" / "rocket.jpg").read_bytes()
        bad_host = urllib.request.Request(f"{base}/api/health", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(bad_host, timeout=5)
        assert info.value.code == 400  # serve allows loopback Host names only
    finally:
        proc.terminate()
        try:
            _, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    assert proc.returncode in (0, -signal.SIGTERM), stderr[-3000:]
    assert f"http://127.0.0.1:{port}/" in stderr and "Traceback" not in stderr
