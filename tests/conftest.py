"""Shared fixtures: the real offline model (loaded once), real Milvus Lite libraries in tmp dirs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ASSETRAG_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "assetrag"))

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

    return load_embedder("offline", torch_threads=2)


@pytest.fixture
def make_library(tmp_path, offline_embedder):
    """A factory for real Milvus Lite libraries in tmp_path, on the offline model."""
    from assetrag import Library

    opened = []

    def make(name: str = "assets", uri: str | Path | None = None, **kw):
        lib = Library(uri or tmp_path / "lib.db", library=name, embedder=offline_embedder, **kw)
        opened.append(lib)
        return lib

    yield make
    for lib in opened:
        lib.close()


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


@pytest.fixture
def photo_dir(tmp_path, photo_arrays) -> Path:
    """A small library: photos/<name>.jpg in two collections (animals / things)."""
    root = tmp_path / "library"
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


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
