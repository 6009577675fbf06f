"""Fixtures for the server tests: a real Milvus Lite library on the offline model, apps over it.

The library that read-only tests share is built once per session (ingesting costs seconds on 2 cores);
tests that ingest or upload get their own library from `make_library`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # → `import server_support` from the test modules

from server_support import LAYOUT, build_photo_tree, server_config  # noqa: E402

from assetrag import Library  # noqa: E402
from assetrag.server import ServerConfig, create_app  # noqa: E402


@pytest.fixture(scope="session")
def served(tmp_path_factory, photo_arrays, offline_embedder) -> Iterator[tuple[Library, Path]]:
    """(library, base folder): the photo library under <base>/roots/library, ingested once."""
    base = tmp_path_factory.mktemp("served")
    root = build_photo_tree(base / "roots" / "library", photo_arrays)
    lib = Library(base / "lib.db", library="assets", embedder=offline_embedder)
    report = lib.ingest(root)
    assert report.added == len(LAYOUT), report.errors
    yield lib, base
    lib.close()


@pytest.fixture(scope="session")
def photo_root(served) -> Path:
    return served[1] / "roots" / "library"


@pytest.fixture(scope="module")
def client(served) -> Iterator[TestClient]:
    """A client of an app (no token) over the shared library: for tests that only read."""
    lib, base = served
    with TestClient(create_app(lib, server_config(base))) as c:
        yield c


@pytest.fixture
def app_client(tmp_path) -> Iterator[Callable[..., TestClient]]:
    """Factory: a TestClient over `create_app(library, config)`; the config defaults to one under tmp_path."""
    opened: list[TestClient] = []

    def make(library: Library, config: ServerConfig | None = None, **client_kw: Any) -> TestClient:
        c = TestClient(create_app(library, config or server_config(tmp_path)), **client_kw)
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)
