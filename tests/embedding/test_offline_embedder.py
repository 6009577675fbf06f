"""The built-in offline model (ConSE over EfficientNet-Lite0 + all-MiniLM-L6-v2), with its real weights."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from assetrag.embedding import Embedder
from assetrag.embedding.conse import ConseEmbedder

QUERIES = {"cat": "a cat", "coffee": "a cup of coffee", "rocket": "a rocket", "astronaut": "an astronaut"}


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    """scikit-image's bundled photos (in its wheel, no download): four targets and five distractors."""
    from skimage import data

    horse = data.horse()  # a boolean silhouette
    arrays = {
        "cat": data.chelsea(),
        "coffee": data.coffee(),
        "rocket": data.rocket(),
        "astronaut": data.astronaut(),
        "camera": data.camera(),
        "horse": np.where(horse, 0, 255).astype(np.uint8) if horse.dtype == bool else horse,
        "motorcycle": data.stereo_motorcycle()[0],
        "coins": data.coins(),
        "galaxies": data.hubble_deep_field(),
    }
    return {name: Image.fromarray(a).convert("RGB") for name, a in arrays.items()}


@pytest.fixture(scope="module")
def photo_vectors(offline_model, photos) -> np.ndarray:
    model, _ = offline_model
    return model.embed_images(list(photos.values()))


def test_identity_and_announcement(offline_model):
    model, said = offline_model
    assert isinstance(model, Embedder)
    assert model.name == "offline:conse-effnetlite0-minilm-v1"
    assert model.dim == 384
    assert len(said) == 1 and "weaker than CLIP" in said[0]


def test_each_query_ranks_its_photo_first(offline_model, photos, photo_vectors):
    model, _ = offline_model
    names = list(photos)
    sims = model.embed_texts(list(QUERIES.values())) @ photo_vectors.T
    margins = {}
    for row, (target, query) in zip(sims, QUERIES.items(), strict=True):
        j = names.index(target)
        margins[query] = float(row[j] - np.delete(row, j).max())
        ranked = [names[i] for i in np.argsort(-row)]
        assert ranked[0] == target, f"{query!r} ranked {ranked} (scores {np.round(np.sort(row)[::-1], 3)})"
    assert min(margins.values()) > 0, margins


def test_vectors_are_unit_float32_and_deterministic(offline_model, photos, photo_vectors):
    model, _ = offline_model
    assert photo_vectors.shape == (len(photos), 384)
    assert photo_vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(photo_vectors, axis=1), 1.0, atol=1e-5)
    first_two = list(photos.values())[:2]
    np.testing.assert_allclose(model.embed_images(first_two), photo_vectors[:2], atol=1e-5)
    np.testing.assert_allclose(model.embed_images(first_two[1:]), photo_vectors[1:2], atol=1e-5)
    texts = model.embed_texts(["a cat", "a rocket"])
    assert texts.dtype == np.float32 and texts.shape == (2, 384)
    np.testing.assert_array_equal(texts, model.embed_texts(["a cat", "a rocket"]))


def test_odd_inputs(offline_model, photos):
    model, _ = offline_model
    assert model.embed_images([]).shape == (0, 384)
    assert model.embed_texts([]).shape == (0, 384)
    tiny_gray = Image.new("L", (3, 5), 128)  # any mode, any size is accepted
    assert model.embed_images([tiny_gray, photos["cat"].convert("RGBA")]).shape == (2, 384)


def test_class_name_embeddings_are_cached_on_disk(offline_model, photo_vectors, monkeypatch):
    model, _ = offline_model
    cached = list(model.cache_dir.glob("conse-classes-*.npy"))
    assert cached, f"no class-name cache under {model.cache_dir}"
    again = ConseEmbedder(device="cpu", cache_dir=model.cache_dir)

    def no_encoding(*_a, **_k):
        raise AssertionError("class names were re-embedded instead of read from the cache")

    monkeypatch.setattr(again, "_encode", no_encoding)
    np.testing.assert_array_equal(again.class_vectors(), model.class_vectors())
