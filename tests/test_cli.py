"""The `assetrag` command line end to end (real model, real Milvus Lite), as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image


def _run(*args: str, uri: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASSETRAG_URI": str(uri), "ASSETRAG_MODEL": "offline:v1", "ASSETRAG_TORCH_THREADS": "2"}
    env.pop("COLUMNS", None)  # output piped, as in a script
    res = subprocess.run(
        [sys.executable, "-m", "assetrag.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )
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
