"""Embedding fixtures: a tiny random CLIP checkpoint built on the spot, and the real offline model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

TINY_DIM = 16


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's byte → printable-character table (the base alphabet of a byte-level BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def _tiny_tokenizer(folder: Path):
    """A character-level CLIP tokenizer (no merges) written by hand: nothing is downloaded."""
    from transformers import CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    try:  # transformers ≥ 5 builds the tokenizer from the vocabulary itself
        tok = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)
    except TypeError:  # transformers 4.x wants the files
        tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16)
    return tok, vocab


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A random-initialised CLIP checkpoint (projection dim 16, 32 px images) saved like a real one."""
    from transformers import CLIPConfig, CLIPModel

    try:
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil as Processor
    except ImportError:  # transformers 4.x: the slow processor is the PIL one
        from transformers import CLIPImageProcessor as Processor

    folder = tmp_path_factory.mktemp("tiny-clip")
    tok, vocab = _tiny_tokenizer(folder)
    eos = vocab["<|endoftext|>"]
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": eos,
            "pad_token_id": eos,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=TINY_DIM,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    Processor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_clip_dim(tiny_clip_dir) -> int:
    return TINY_DIM


@pytest.fixture
def make_hf_cache():
    """Lay a checkpoint out as the Hugging Face hub cache holds a repo (refs/main → snapshots/<commit>)."""

    def make(root: Path, repo_id: str, checkpoint: Path) -> Path:
        repo = root / ("models--" + repo_id.replace("/", "--"))
        commit = "0" * 40
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(commit)
        shutil.copytree(checkpoint, repo / "snapshots" / commit)
        return repo / "snapshots" / commit

    return make


@pytest.fixture(scope="session")
def random_images() -> list[Image.Image]:
    """Five distinct RGB images of different sizes."""
    rng = np.random.default_rng(0)
    sizes = [(40, 30), (64, 64), (33, 70), (100, 50), (32, 32)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


@pytest.fixture(scope="session")
def offline_model():
    """The real ConSE model (EfficientNet-Lite0 + all-MiniLM-L6-v2) and what it announced on loading."""
    from assetrag.embedding import load_embedder

    said: list[str] = []
    model = load_embedder("offline:v1", device="cpu", batch_size=8, torch_threads=2, announce=said.append)
    return model, said
