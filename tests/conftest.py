"""Shared fixtures: the real offline model (loaded once), real Milvus libraries in tmp dirs.

Backends: tests that request `store_uri` (directly, through `make_library`/`make_store`, or a module's
`pytestmark = pytest.mark.usefixtures("store_uri")`) run twice: on Milvus Lite, and on a real Milvus
standalone server (marked `server`; `-m "not server"` leaves them out). Everything else stays on Lite.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ASSETRAG_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "assetrag"))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist's workers start with COLUMNS=80 LINES=24, which a plain run piped to a file (CI) does not have:
    # the CLI would size its tables for an 80-column terminal. Workers see the environment a plain run sees.
    for _var in ("COLUMNS", "LINES"):
        os.environ.pop(_var, None)

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(2)  # the CI machine has 2 cores; be explicit rather than oversubscribe

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples" / "library"


@pytest.fixture(scope="session")
def offline_embedder():
    """The built-in ConSE model (EfficientNet-Lite0 + all-MiniLM-L6-v2), loaded once per session."""
    from assetrag.embedding import load_embedder

    return load_embedder("offline:v1", torch_threads=2)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """A real Milvus standalone server (PyPI `milvus`), on 127.0.0.1 only, for the whole session (one per
    pytest-xdist worker: each runs in its own network namespace, so they never collide).

    Started on first use (~3-10 s), stopped (SIGINT) at the end; see tests/milvus_server.py. Skipped only
    when the `milvus` package is not installed.
    """
    from milvus_server import MilvusServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = MilvusServer(tmp_path_factory.mktemp("milvus-server"))
    server.start()
    yield server
    server.stop()


BACKENDS = ["lite", pytest.param("server", marks=pytest.mark.server)]


@pytest.fixture(params=BACKENDS)
def store_uri(request, tmp_path) -> str:
    """An empty store on each backend: a Milvus Lite directory in tmp_path, or the session's server."""
    if request.param == "lite":
        return str(tmp_path / "lib.db")
    return request.getfixturevalue("milvus_server").uri


def _default_uri(request, tmp_path) -> str:
    if "store_uri" in request.fixturenames:
        return request.getfixturevalue("store_uri")
    return str(tmp_path / "lib.db")


class _Names:
    """Library names unique to one test on a shared server (the same name always maps to the same one)."""

    def __init__(self) -> None:
        self.names: dict[tuple[str, str], str] = {}

    def __call__(self, uri: str, name: str) -> str:
        from assetrag.store import is_server_uri

        if not is_server_uri(uri):
            return name
        return self.names.setdefault((uri, name), f"{name.replace('-', '_')}_{uuid.uuid4().hex[:10]}")

    def drop_all(self) -> None:
        from assetrag.store import Store

        for (uri, _), name in self.names.items():
            store = Store(uri, name)
            store.drop()
            store.close()


@pytest.fixture
def make_store(request, tmp_path):
    """A factory for `Store`s on the test's backend (`store_uri` when the test uses it, else Lite)."""
    from assetrag.store import Store

    names = _Names()
    opened = []

    def make(name: str = "lib", uri: str | None = None, **kw):
        uri = uri or _default_uri(request, tmp_path)
        store = Store(uri, names(uri, name), **kw)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
    names.drop_all()


@pytest.fixture
def make_library(request, tmp_path, offline_embedder):
    """A factory for real libraries on the offline model: Milvus Lite in tmp_path, or the server when the
    test uses `store_uri` (each test gets its own collection there, dropped afterwards)."""
    from assetrag import Library

    names = _Names()
    opened = []

    def make(name: str = "assets", uri: str | Path | None = None, **kw):
        uri = os.fspath(uri) if uri else _default_uri(request, tmp_path)
        lib = Library(uri, library=names(uri, name), embedder=offline_embedder, **kw)
        opened.append(lib)
        return lib

    yield make
    for lib in opened:
        lib.close()
    names.drop_all()


@pytest.fixture(scope="session")
def tiny_sd_checkpoint(tmp_path_factory) -> Path:
    """A tiny, random Stable Diffusion img2img pipeline directory (tests/fakes/tiny_diffusers.py), built once
    per session for every test of the local diffusers backend (read only)."""
    from fakes.tiny_diffusers import build_tiny_sd_img2img

    return build_tiny_sd_img2img(tmp_path_factory.mktemp("ckpt") / "tiny-sd")


def _save(img: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


@pytest.fixture(scope="session")
def photo_arrays():
    """scikit-image's bundled photos (shipped in its wheel; no download)."""
    from skimage import data

    return {
        "cat": data.chelsea(),
        "coffee": data.coffee(),
        "rocket": data.rocket(),
        "astronaut": data.astronaut(),
        "camera": np.stack([data.camera()] * 3, axis=-1),
    }


def _photo_library(root: Path, photo_arrays) -> Path:
    layout = {
        "cat": "animals/cats",
        "coffee": "things/drinks",
        "rocket": "things/space",
        "astronaut": "people",
        "camera": "people",
    }
    for name, folder in layout.items():
        _save(Image.fromarray(photo_arrays[name]), root / folder / f"{name}.jpg", quality=90)
    return root


@pytest.fixture
def photo_dir(tmp_path, photo_arrays) -> Path:
    """A small library: photos/<name>.jpg in two collections (animals / things)."""
    return _photo_library(tmp_path / "library", photo_arrays)


@pytest.fixture(scope="module", params=BACKENDS)
def photo_library(request, tmp_path_factory, photo_arrays, offline_embedder):
    """(Library, its photo folder): the `photo_dir` photos ingested once per module and backend, for tests
    that only read (saves an ingest per test; on a server also a collection)."""
    from assetrag import Library

    tmp = tmp_path_factory.mktemp("photo-library")
    root = _photo_library(tmp / "library", photo_arrays)
    if request.param == "lite":
        uri, name = str(tmp / "lib.db"), "assets"
    else:
        uri, name = request.getfixturevalue("milvus_server").uri, f"assets_{uuid.uuid4().hex[:10]}"
    lib = Library(uri, library=name, embedder=offline_embedder)
    lib.ingest(root)
    yield lib, root
    if request.param != "lite":
        lib.store.drop()
    lib.close()


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
