"""The offline model v2: ConSE + the shipped alignment head (src/assetrag/data/offline-head-v1.safetensors)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from assetrag.embedding import OFFLINE_DEFAULT, load_embedder, spec_for_name
from assetrag.embedding.conse import NAME as CONSE_NAME
from assetrag.embedding.head import HEAD_FILE, NAME_COMBINED, NAME_HEAD, HeadEmbedder, load_head
from assetrag.errors import ConfigError, ModelUnavailableError


@pytest.fixture(scope="module")
def v2(offline_embedder):
    """The session's offline model when it is v2, else a v2 of its own."""
    if offline_embedder.name == NAME_COMBINED:
        return offline_embedder
    return load_embedder("offline:v2", device="cpu", torch_threads=2)


@pytest.fixture(scope="module")
def photos():
    from skimage import data

    arrays = {"cat": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket()}
    return {k: Image.fromarray(v).convert("RGB") for k, v in arrays.items()}


def test_the_shipped_head_file_is_small_and_says_where_it_came_from():
    assert HEAD_FILE.is_file() and HEAD_FILE.stat().st_size < 5_000_000
    weights, meta = load_head()
    assert weights["mean"].shape == (1280,) and weights["w0"].shape[0] == 1280
    assert 0.0 <= meta["alpha_conse"] <= 1.0
    assert meta["trained_on"]["openclipart"] > 1000 and meta["trained_on"]["emoji"] > 500
    assert meta["excluded"]["excluded_by_path"] >= 40  # the sample library's own drawings were left out


def test_specs_names_and_reopening():
    assert OFFLINE_DEFAULT == "v2"  # the default for new libraries since issue #13 (docs/quality.md)
    assert spec_for_name(CONSE_NAME) == "offline:v1"
    assert spec_for_name(NAME_COMBINED) == "offline:v2"
    assert spec_for_name(NAME_HEAD) == "offline:head"
    assert spec_for_name("clip:openai/clip-vit-base-patch32") == "clip:openai/clip-vit-base-patch32"
    with pytest.raises(ConfigError, match="unknown offline model version"):
        load_embedder("offline:v9")
    with pytest.raises(ModelUnavailableError, match="head file"):
        HeadEmbedder(head_file="/nonexistent/head.safetensors")


def test_v2_mixes_conse_and_head_from_one_pass(v2, photos):
    ims = list(photos.values())
    vecs = v2.embed_images(ims)
    assert vecs.shape == (len(ims), 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    pooled, probs = v2.features(ims)
    mix = v2.alpha * v2.conse_vectors(probs) + (1 - v2.alpha) * v2.head_vectors(pooled)
    np.testing.assert_allclose(vecs, mix / np.linalg.norm(mix, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(v2.embed_images(ims[:1]), vecs[:1], atol=1e-5)  # deterministic
    assert v2.embed_images([]).shape == (0, 384)


def test_v2_beats_conse_on_the_sample_library(v2):
    """One EfficientNet pass gives both ConSE (v1) and v2 vectors of the 66 sample files; on the 49 labelled
    queries (the sample library's drawings were kept out of training) v2 finds more in the top 10."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "samples"
    files = sorted(p for p in (root / "library").rglob("*") if p.suffix in (".png", ".jpg"))
    names = [p.relative_to(root / "library").as_posix() for p in files]
    from assetrag.decode import decode_file

    pooled, probs = v2.features([decode_file(p).image for p in files])
    v1_vecs = v2.conse_vectors(probs)
    mix = v2.alpha * v1_vecs + (1 - v2.alpha) * v2.head_vectors(pooled)
    v2_vecs = mix / np.linalg.norm(mix, axis=1, keepdims=True)
    queries = [json.loads(line) for line in (root / "queries.jsonl").read_text().splitlines()]
    texts = v2.embed_texts([q["query"] for q in queries])

    def recall_at_10(vecs):
        top = np.argsort(-(texts @ vecs.T), axis=1)[:, :10]
        return np.mean(
            [
                len({names[i] for i in row} & set(q["relevant"])) / len(q["relevant"])
                for row, q in zip(top, queries, strict=True)
            ]
        )

    r1, r2 = recall_at_10(v1_vecs), recall_at_10(v2_vecs)
    assert r2 >= r1 + 0.1, (r1, r2)


def test_a_library_built_with_v2_keeps_v2(tmp_path):
    from assetrag import Library

    uri = str(tmp_path / "old.db")
    from assetrag.library import _spec_for

    with Library(uri) as lib:
        lib.store.ensure(NAME_COMBINED, 384)  # as if ingested with offline:v2
        assert _spec_for(lib.store.model_info()[0]) == "offline:v2"  # `auto` reopens it with v2


def test_the_fast_ingest_path_gives_v2_the_same_vectors(v2, photos):
    images = list(photos.values())
    pixels = [v2.pixel_spec.prepare(im) for im in images]
    np.testing.assert_allclose(v2.embed_pixels(pixels), v2.embed_images(images), atol=1e-5)


def test_new_libraries_get_v2_and_a_v1_library_reopens_as_v1(tmp_path, monkeypatch):
    """`offline` and `auto` (CLIP absent) build v2 for a new library; a library built with v1 stores v1's name and
    `--model auto` reopens it with v1, so nothing has to be re-ingested."""
    from assetrag import Library
    from assetrag.embedding import clip

    monkeypatch.setattr(clip, "cached_locally", lambda *_a, **_k: False)  # as on a machine without CLIP
    assert load_embedder("offline", device="cpu", torch_threads=2).name == NAME_COMBINED
    assert load_embedder("auto", device="cpu", torch_threads=2).name == NAME_COMBINED
    uri = str(tmp_path / "lib.db")
    with Library(uri, library="old") as lib:
        lib.store.ensure(CONSE_NAME, 384)  # as if ingested with offline:v1 before the default changed
    with Library(uri, library="old", model="auto") as lib:
        assert lib.embedder.name == CONSE_NAME
    with Library(uri, library="new", model="auto") as lib:
        assert lib.embedder.name == NAME_COMBINED
