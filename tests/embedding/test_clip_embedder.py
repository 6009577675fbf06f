"""CLIP-family loading and embedding, on a tiny random checkpoint built by the fixture (no download)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from assetrag.config import DEFAULT_CLIP_CHECKPOINT
from assetrag.embedding import Embedder, load_embedder
from assetrag.embedding.clip import ClipEmbedder
from assetrag.errors import ConfigError, ModelUnavailableError


@pytest.fixture(scope="module")
def tiny(tiny_clip_dir) -> ClipEmbedder:
    return load_embedder(f"clip:{tiny_clip_dir}", device="cpu", batch_size=2)


@pytest.fixture
def empty_offline_hub(tmp_path, monkeypatch):
    """An empty Hugging Face cache with downloads forbidden: nothing can reach the network."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    return tmp_path / "hf-cache"


def _unit_rows(x: np.ndarray) -> bool:
    return np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_tiny_checkpoint_loads_as_clip(tiny, tiny_clip_dir, tiny_clip_dim):
    assert isinstance(tiny, Embedder)
    assert tiny.dim == tiny_clip_dim
    assert tiny.name == f"clip:{tiny_clip_dir.resolve()}"
    assert tiny.model_type == "clip"


def test_image_embeddings_are_unit_float32(tiny, random_images, tiny_clip_dim):
    vecs = tiny.embed_images(random_images)
    assert vecs.shape == (len(random_images), tiny_clip_dim)
    assert vecs.dtype == np.float32
    assert _unit_rows(vecs)


def test_batching_matches_one_by_one(tiny, random_images):
    together = tiny.embed_images(random_images)  # batch_size=2: three batches, the last one short
    alone = np.concatenate([tiny.embed_images([im]) for im in random_images])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_different_images_give_different_vectors(tiny, random_images):
    vecs = tiny.embed_images(random_images)
    sims = vecs @ vecs.T
    assert (sims[~np.eye(len(vecs), dtype=bool)] < 0.999).all()


def test_non_rgb_images_are_converted(tiny, random_images):
    rgb = random_images[1]
    np.testing.assert_allclose(tiny.embed_images([rgb.convert("RGBA")]), tiny.embed_images([rgb]), atol=1e-6)


def test_text_embeddings(tiny, tiny_clip_dim):
    texts = ["a cat", "an astronaut on the moon", "coffee"]
    vecs = tiny.embed_texts(texts)
    assert vecs.shape == (3, tiny_clip_dim)
    assert vecs.dtype == np.float32
    assert _unit_rows(vecs)
    assert not np.allclose(vecs[0], vecs[1])
    # padding inside a batch must not change a text's vector
    np.testing.assert_allclose(vecs[0], tiny.embed_texts(["a cat"])[0], atol=1e-5)


def test_empty_inputs(tiny, tiny_clip_dim):
    assert tiny.embed_images([]).shape == (0, tiny_clip_dim)
    assert tiny.embed_texts([]).shape == (0, tiny_clip_dim)


def test_bare_directory_spec_is_clip(tiny_clip_dir, tiny, random_images):
    other = load_embedder(str(tiny_clip_dir), device="cpu")
    assert other.name == tiny.name
    np.testing.assert_allclose(other.embed_images(random_images[:2]), tiny.embed_images(random_images[:2]), atol=1e-6)


def test_bad_path_says_how_to_get_weights(tmp_path):
    with pytest.raises(ModelUnavailableError) as err:
        load_embedder(f"clip:{tmp_path / 'no-such-model'}", device="cpu")
    msg = str(err.value)
    assert "no-such-model" in msg
    assert "huggingface-cli download" in msg and "--model" in msg


def test_folder_without_config_is_refused(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelUnavailableError, match=r"config\.json"):
        load_embedder(f"clip:{tmp_path}", device="cpu")


def test_uncached_hub_id_offline_is_refused(empty_offline_hub):
    with pytest.raises(ModelUnavailableError) as err:
        load_embedder("clip:acme/not-cached", device="cpu", allow_download=True)
    msg = str(err.value)
    assert "acme/not-cached" in msg and "HF_HUB_OFFLINE" in msg
    assert "huggingface-cli download acme/not-cached" in msg


def test_hub_id_loads_from_the_local_cache(empty_offline_hub, make_hf_cache, tiny_clip_dir, random_images, tiny):
    snapshot = make_hf_cache(empty_offline_hub, "acme/tiny-clip", tiny_clip_dir)
    for spec in ("clip:acme/tiny-clip", "acme/tiny-clip"):
        emb = load_embedder(spec, device="cpu")
        assert emb.name == "clip:acme/tiny-clip"
        np.testing.assert_allclose(emb.embed_images(random_images[:1]), tiny.embed_images(random_images[:1]), atol=1e-6)
    # the snapshot folder itself is named after its hub id, so the name can be reloaded from the cache
    assert load_embedder(str(snapshot), device="cpu").name == "clip:acme/tiny-clip"


def test_auto_uses_clip_when_the_default_checkpoint_is_cached(empty_offline_hub, make_hf_cache, tiny_clip_dir):
    make_hf_cache(empty_offline_hub, DEFAULT_CLIP_CHECKPOINT, tiny_clip_dir)
    said: list[str] = []
    emb = load_embedder("auto", device="cpu", announce=said.append)
    assert emb.name == f"clip:{DEFAULT_CLIP_CHECKPOINT}"
    assert not [line for line in said if "offline model" in line]  # at most the one-time ONNX export line


def test_auto_falls_back_to_the_offline_model(empty_offline_hub):
    said: list[str] = []
    emb = load_embedder("auto", device="cpu", announce=said.append)
    assert emb.name.startswith("offline:conse-")
    assert emb.dim == 384
    said = [line for line in said if not line.startswith("Prepared ONNX Runtime graphs")]  # a first run's export
    assert len(said) == 1
    assert "weaker than CLIP" in said[0] and f"huggingface-cli download {DEFAULT_CLIP_CHECKPOINT}" in said[0]


def test_unknown_spec_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown model"):
        load_embedder("definitely-not-a-model")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_cuda_without_cuda_is_a_config_error(tiny_clip_dir):
    with pytest.raises(ConfigError, match="CUDA"):
        load_embedder(f"clip:{tiny_clip_dir}", device="cuda")
