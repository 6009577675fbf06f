"""`assetrag migrate`, `export` and `import` as a user runs them (real Milvus Lite, and the real server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from store_rows import DIM, assert_holds, make_rows

from assetrag.store import Store
from cli_support import run_in_process


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ASSETRAG_") or k == "ASSETRAG_CACHE"}


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`assetrag <args>` as a process, as a user runs it."""
    res = subprocess.run(
        [sys.executable, "-m", "assetrag.cli", *args], capture_output=True, text=True, env=_env(), timeout=300
    )
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


def _run_here(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The same in this process (`main()`): for the repeat run and the refusals, once each command has been
    run as a process."""
    res = run_in_process(*args, env=_env())
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


@pytest.fixture
def lite_library(tmp_path):
    rows = make_rows(120)
    store = Store(str(tmp_path / "a.db"), "assets")
    store.ensure("model-a", DIM)
    store.upsert(rows)
    store.close()  # Milvus Lite: the CLI is another process
    return str(tmp_path / "a.db"), rows


def test_cli_migrate_export_import_on_lite(tmp_path, lite_library):
    uri, rows = lite_library
    res = _run("--uri", uri, "migrate", "--to", str(tmp_path / "b.db"), "--to-library", "moved", "--no-progress")
    assert "copied 120 assets (model-a, dim 16)" in res.stdout and "120 rows compared" in res.stdout
    assert f"--uri {tmp_path / 'b.db'} --library moved" in res.stdout
    res = _run_here("--uri", uri, "migrate", "--to", str(tmp_path / "b.db"), "--to-library", "moved", "--json")
    again = json.loads(res.stdout)  # a second run: nothing new, still verified
    assert again["rows"] == 120 and again["destination_rows"] == 120 and not again["created"]

    backup = tmp_path / "backup.parquet"
    res = _run("--uri", str(tmp_path / "b.db"), "--library", "moved", "export", str(backup))
    assert "exported 120 assets" in res.stdout and backup.exists()
    res = _run("--uri", str(tmp_path / "c.db"), "import", str(backup), "--json")
    assert json.loads(res.stdout)["rows"] == 120
    restored = Store(str(tmp_path / "c.db"), "assets")
    assert_holds(restored, rows)
    restored.close()

    res = _run_here("--uri", uri, "migrate", "--to", uri, check=False)
    assert res.returncode == 2 and "are the same library" in res.stderr and "Traceback" not in res.stderr
    res = _run_here("--uri", str(tmp_path / "c.db"), "import", str(tmp_path / "missing.parquet"), check=False)
    assert res.returncode == 2 and "not a Parquet file" in res.stderr


@pytest.mark.server
def test_cli_migrate_from_lite_to_a_server(lite_library, milvus_server):
    uri, rows = lite_library
    name = f"moved_{uuid.uuid4().hex[:10]}"
    res = _run("--uri", uri, "migrate", "--to", milvus_server.uri, "--to-library", name)
    assert "copied 120 assets" in res.stdout
    remote = Store(milvus_server.uri, name)
    try:
        assert_holds(remote, rows)
    finally:
        remote.drop()
        remote.close()
