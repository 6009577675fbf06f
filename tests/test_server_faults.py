"""Store faults and concurrent use, through the real CLI: a server that is down at start or killed mid-ingest,
two ingests at once on one server, and (in test_store.py) two processes on one Milvus Lite directory.

The server here is this module's own (it gets killed), with authentication on, so every CLI call here also
proves that `--token user:password` reaches the server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assetrag.errors import StoreError
from assetrag.store import Store

TOKEN = "root:Milvus"  # the default credentials of a Milvus with authorization enabled
AUTH = ("common.security.authorizationEnabled=true",)


def _cli(*args: str, wait: bool = True, **env_extra: str):
    env = {**os.environ, "ASSETRAG_MODEL": "offline:v1", "ASSETRAG_TORCH_THREADS": "1", **env_extra}
    cmd = [sys.executable, "-m", "assetrag.cli", *args]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _images(root: Path, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for i in range(n):
        small = (rng.random((4, 4, 3)) * 255).astype(np.uint8)
        Image.fromarray(small).resize((64, 64), Image.Resampling.BICUBIC).save(root / f"{i:03d}.jpg", quality=90)
    return root


def _paths(uri: str, library: str) -> list[str]:
    store = Store(uri, library, token=TOKEN)
    try:
        return [p for row in store.iterate(("paths",)) for p in row["paths"]]
    finally:
        store.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_at_start_is_one_clear_line():
    res = _cli("--uri", f"http://127.0.0.1:{_free_port()}", "stats")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "cannot reach the Milvus server" in res.stderr and "Is it running" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    from milvus_server import MilvusServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = MilvusServer(tmp_path_factory.mktemp("milvus-auth"), extra_config=AUTH).start()
    yield server
    server.stop()


@pytest.mark.server
def test_wrong_or_missing_credentials_are_refused_clearly(auth_server):
    for token in (None, "root:wrong"):
        with pytest.raises(StoreError, match="token"):
            Store(auth_server.uri, "x", token=token).exists()
    assert Store(auth_server.uri, "x", token=TOKEN).exists() is False


@pytest.mark.server
def test_two_concurrent_ingests_of_different_folders_both_complete(auth_server, tmp_path):
    a, b = _images(tmp_path / "a", 6, seed=1), _images(tmp_path / "b", 6, seed=2)
    common = ("--uri", auth_server.uri, "--token", TOKEN, "--library", "together", "--batch-size", "2")
    procs = [_cli(*common, "ingest", str(folder), "--json", wait=False) for folder in (a, b)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        assert '"added": 6' in out
    paths = _paths(auth_server.uri, "together")
    assert sorted(paths) == sorted(str(p) for p in [*a.glob("*.jpg"), *b.glob("*.jpg")])


#: `python -c` this, then the CLI's arguments: the CLI, paused after its first batch is written (it touches
#: $WROTE, then waits for $GO) — so the server is killed mid-ingest every time, not when timing allows
_PAUSE_AFTER_FIRST_WRITE = """
import os, sys, time
from assetrag.store.client import Store
wrote, go = os.environ["ASSETRAG_TEST_WROTE"], os.environ["ASSETRAG_TEST_GO"]
real = Store.upsert
def upsert(self, rows):
    real(self, rows)
    if not os.path.exists(wrote):
        open(wrote, "w").close()
        deadline = time.monotonic() + 120
        while not os.path.exists(go) and time.monotonic() < deadline:
            time.sleep(0.02)
Store.upsert = upsert
sys.argv[0] = "assetrag"
from assetrag.cli import main
main()
"""


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


@pytest.mark.server
@pytest.mark.slow
def test_server_killed_mid_ingest_fails_clearly_and_a_rerun_after_restart_fixes_everything(auth_server, tmp_path):
    folder = _images(tmp_path / "photos", 12, seed=3)  # 6 batches: the server dies after the first
    args = ("--uri", auth_server.uri, "--token", TOKEN, "--library", "crashy", "--batch-size", "2")
    wrote, go = tmp_path / "wrote", tmp_path / "go"
    env = {**os.environ, "ASSETRAG_MODEL": "offline:v1", "ASSETRAG_TORCH_THREADS": "1"}
    env |= {"ASSETRAG_TEST_WROTE": str(wrote), "ASSETRAG_TEST_GO": str(go)}
    cmd = [sys.executable, "-c", _PAUSE_AFTER_FIRST_WRITE, *args, "ingest", str(folder), "--json"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(wrote, proc, 240)  # the first batch is written, and the CLI holds still
    store = Store(auth_server.uri, "crashy", token=TOKEN)
    assert store.count() == 2  # exactly one batch in: ten images still to write
    store.close()
    auth_server.crash()  # SIGKILL: no goodbye to clients, whatever was in flight is cut
    go.touch()
    out, err = proc.communicate(timeout=120)  # ... and the CLI must not hang on it
    assert proc.returncode == 2, out + err[-3000:]
    assert "lost the Milvus server" in err and "run the command again" in err
    assert "Traceback" not in err

    auth_server.start()  # same data dir, same port
    res = _cli(*args, "ingest", str(folder), "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    paths = _paths(auth_server.uri, "crashy")
    assert sorted(paths) == sorted(str(p) for p in folder.glob("*.jpg"))  # each file once, nothing else
