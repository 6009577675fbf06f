"""Helpers shared by the server tests (plain functions and constants; the fixtures are in conftest.py)."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from assetrag.server import ServerConfig

#: the same small photo library as tests/conftest.py's `photo_dir`, built once for the session
LAYOUT = {
    "cat": "animals/cats",
    "coffee": "things/drinks",
    "rocket": "things/space",
    "astronaut": "people",
    "camera": "people",
}
TOKEN = "test-token-0123456789abcdef"


def build_photo_tree(root: Path, arrays: dict) -> Path:
    for name, folder in LAYOUT.items():
        path = root / folder / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arrays[name]).save(path, quality=90)
    return root


def server_config(base: Path, **kw: Any) -> ServerConfig:
    """A config confined to `base`: roots, uploads and the thumbnail cache all live below it."""
    defaults: dict[str, Any] = {
        "roots": (base / "roots",),
        "upload_dir": base / "uploads",
        "generated_dir": base / "generated",
        "cache_dir": base / "cache",
    }
    defaults.update(kw)
    for root in defaults["roots"]:
        Path(root).mkdir(parents=True, exist_ok=True)
    return ServerConfig(**defaults)


def wait_job(client: TestClient, job_id: str, timeout: float = 60.0, **kw: Any) -> dict:
    """Poll /api/jobs/{id} until it is done or failed."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}", **kw).json()
        if job["status"] in ("done", "failed"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s: {job}")
        time.sleep(0.05)


def jpeg_bytes(array, **kw: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=kw.pop("quality", 90), **kw)
    return buf.getvalue()


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """`app` served by uvicorn on an ephemeral 127.0.0.1 port in a daemon thread; yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
