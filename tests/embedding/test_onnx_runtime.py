"""ONNX Runtime vs torch: the same vectors from every model, a graph cache that survives faults, a fast start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assetrag.config import Settings
from assetrag.embedding import load_embedder
from assetrag.embedding.runtime import choose_runtime, decode_workers, model_threads
from assetrag.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "library"
SRC = ROOT / "src"
TEXTS = ["a frog", "a cup of coffee on a wooden table", "Ein Hund im Schnee", "x", "a " * 300 + "long text"]


@pytest.fixture(scope="module")
def real_images() -> list[Image.Image]:
    """Photos and clipart from the sample library (RGB, RGBA, any size)."""
    files = sorted(SAMPLES.glob("photos/*"))[:4] + sorted(SAMPLES.glob("beach/*.png"))[:3]
    assert len(files) >= 5, "the sample library is missing"
    return [Image.open(f).convert("RGB") for f in files]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


@pytest.mark.parametrize("spec", ["offline:v1", "offline:v2"])
def test_offline_model_gives_the_same_vectors_on_both_runtimes(spec, real_images):
    onnx = load_embedder(spec, device="cpu", runtime="onnx", quantize="none", torch_threads=2)
    torch_ = load_embedder(spec, device="cpu", runtime="torch", torch_threads=2)
    assert (onnx.runtime, torch_.runtime) == ("onnx", "torch")
    assert onnx.name == torch_.name  # the store records the model, not the runtime
    assert _cos(onnx.embed_images(real_images), torch_.embed_images(real_images)).min() >= 0.9999
    assert _cos(onnx.embed_texts(TEXTS), torch_.embed_texts(TEXTS)).min() >= 0.9999
    pixels = [onnx.pixel_spec.prepare(im) for im in real_images]
    assert _cos(onnx.embed_pixels(pixels), torch_.embed_pixels(pixels)).min() >= 0.9999
    np.testing.assert_allclose(onnx.embed_pixels(pixels), onnx.embed_images(real_images), atol=1e-5)


def test_int8_query_encoder_stays_close_and_never_touches_image_vectors(real_images):
    fp32 = load_embedder("offline:v1", device="cpu", runtime="onnx", quantize="none")
    int8 = load_embedder("offline:v1", device="cpu", runtime="onnx", quantize="int8")
    assert int8.text_int8 and not fp32.text_int8
    cos = _cos(fp32.embed_texts(TEXTS), int8.embed_texts(TEXTS))
    assert cos.min() >= 0.98, cos
    assert cos.min() < 0.99999  # it really is another graph
    np.testing.assert_allclose(int8.embed_images(real_images), fp32.embed_images(real_images), atol=1e-6)


def test_clip_gives_the_same_vectors_on_both_runtimes(tiny_clip_dir, random_images):
    onnx = load_embedder(f"clip:{tiny_clip_dir}", device="cpu", runtime="onnx", batch_size=2)
    torch_ = load_embedder(f"clip:{tiny_clip_dir}", device="cpu", runtime="torch", batch_size=2)
    assert onnx.name == torch_.name and onnx.runtime == "onnx"
    assert _cos(onnx.embed_images(random_images), torch_.embed_images(random_images)).min() >= 0.9999
    texts = ["a cat", "a much longer caption with many words", "x"]  # padded batches
    assert _cos(onnx.embed_texts(texts), torch_.embed_texts(texts)).min() >= 0.9999
    pixels = [onnx.pixel_spec.prepare(im) for im in random_images]
    assert _cos(onnx.embed_pixels(pixels), torch_.embed_pixels(pixels)).min() >= 0.9999
    int8 = load_embedder(f"clip:{tiny_clip_dir}", device="cpu", runtime="onnx", quantize="int8")
    assert _cos(int8.embed_images(random_images), torch_.embed_images(random_images)).min() >= 0.9  # random weights


def test_a_library_made_on_one_runtime_is_searched_on_the_other(tmp_path, real_images):
    from assetrag import Library

    settings = Settings(uri=str(tmp_path / "lib.db"), model="offline:v1", device="cpu", runtime="torch")
    with Library(settings=settings) as lib:
        lib.ingest(SAMPLES / "photos")
    onnx_settings = Settings(uri=settings.uri, model="auto", device="cpu", runtime="onnx")
    with Library(settings=onnx_settings) as lib:
        assert lib.embedder.runtime == "onnx"
        hits = lib.search("a cat", k=1)
    assert "cat" in Path(hits[0].path).name


WARM = textwrap.dedent(
    """
    import sys
    import assetrag.embedding
    from assetrag.embedding import load_embedder
    from PIL import Image
    m = load_embedder("{spec}", device="cpu", runtime="onnx")
    m.embed_texts(["a frog"]); m.embed_images([Image.new("RGB", (64, 48), "green")])
    heavy = [k for k in ("torch", "transformers", "sentence_transformers") if k in sys.modules]
    print("HEAVY", heavy)
    """
)


@pytest.mark.parametrize("spec", ["offline:v1", "offline:v2"])
def test_warm_start_imports_no_torch(spec):
    load_embedder(spec, device="cpu", runtime="onnx")  # the graphs are in the shared test cache now
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", WARM.format(spec=spec)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout


# -- the graph cache ---------------------------------------------------------------------------------------


def _tiny(tiny_clip_dir: Path, said: list[str] | None = None):
    return load_embedder(
        f"clip:{tiny_clip_dir}", device="cpu", runtime="onnx", announce=None if said is None else said.append
    )


def _graphs(cache: Path) -> list[Path]:
    return sorted((cache / "onnx").glob("*.onnx"))


def _valid(path: Path) -> bool:
    import hashlib

    side = json.loads(path.with_suffix(".json").read_text())
    data = path.read_bytes()
    return side["size"] == len(data) and side["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ASSETRAG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_graphs_are_exported_once_then_reused(own_cache, tiny_clip_dir):
    said: list[str] = []
    _tiny(tiny_clip_dir, said)
    assert len(said) == 1 and "Prepared ONNX Runtime graphs" in said[0], said
    assert len(_graphs(own_cache)) == 2 and all(_valid(p) for p in _graphs(own_cache))
    again: list[str] = []
    _tiny(tiny_clip_dir, again)
    assert again == []


@pytest.mark.parametrize("damage", ["truncate", "garbage", "version", "no-sidecar"])
def test_a_damaged_graph_is_rebuilt_not_loaded(own_cache, tiny_clip_dir, random_images, damage):
    reference = _tiny(tiny_clip_dir).embed_images(random_images)
    graph = _graphs(own_cache)[0]
    data = graph.read_bytes()
    if damage == "truncate":
        graph.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        graph.write_bytes(os.urandom(len(data)))  # same size: only the checksum can tell
    elif damage == "version":
        side = json.loads(graph.with_suffix(".json").read_text())
        graph.with_suffix(".json").write_text(json.dumps({**side, "format": 0}))
    else:
        graph.with_suffix(".json").unlink()
    said: list[str] = []
    emb = _tiny(tiny_clip_dir, said)
    assert len(said) == 1 and "Prepared" in said[0]
    assert _valid(graph)
    np.testing.assert_allclose(emb.embed_images(random_images), reference, atol=1e-6)


CONCURRENT = textwrap.dedent(
    """
    import sys
    from assetrag.embedding import load_embedder
    m = load_embedder("clip:" + sys.argv[1], device="cpu", runtime="onnx")
    print(m.embed_texts(["a cat"])[0][:3])
    """
)


def test_processes_exporting_at_once_leave_a_valid_cache(own_cache, tiny_clip_dir):
    env = {**os.environ, "PYTHONPATH": str(SRC), "ASSETRAG_CACHE": str(own_cache)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT, str(tiny_clip_dir)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert len({o[0] for o in outs}) == 1  # the same vector in every process
    assert len(_graphs(own_cache)) == 2 and all(_valid(p) for p in _graphs(own_cache))
    assert not [p for p in (own_cache / "onnx").iterdir() if p.suffix == ".tmp"]
    said: list[str] = []
    _tiny(tiny_clip_dir, said)
    assert said == []


def test_an_unwritable_cache_exports_in_memory_with_one_warning(tmp_path, monkeypatch, tiny_clip_dir, random_images):
    import assetrag.embedding.graphs as graphs

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ASSETRAG_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(graphs, "_warned_unwritable", False)
    reference = load_embedder(f"clip:{tiny_clip_dir}", device="cpu", runtime="torch").embed_images(random_images)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        said: list[str] = []
        first = _tiny(tiny_clip_dir, said)
        _tiny(tiny_clip_dir)
    unwritable = [w for w in caught if "cannot write the ONNX graph cache" in str(w.message)]
    assert len(unwritable) == 1
    assert "memory only" in said[0]
    assert _cos(first.embed_images(random_images), reference).min() >= 0.9999


# -- choices and threads ------------------------------------------------------------------------------------


def test_runtime_and_quantize_are_validated(monkeypatch):
    monkeypatch.setenv("ASSETRAG_RUNTIME", "tensorrt")
    with pytest.raises(ConfigError, match="runtime"):
        Settings.from_env()
    monkeypatch.setenv("ASSETRAG_RUNTIME", "onnx")
    monkeypatch.setenv("ASSETRAG_QUANTIZE", "int4")
    with pytest.raises(ConfigError, match="quantize"):
        Settings.from_env()
    monkeypatch.setenv("ASSETRAG_QUANTIZE", "int8")
    assert (Settings.from_env().runtime, Settings.from_env().quantize) == ("onnx", "int8")
    with pytest.raises(ConfigError, match="runtime"):
        load_embedder("offline:v1", runtime="tensorrt")
    with pytest.raises(ConfigError, match="CPU only"):
        choose_runtime("onnx", "cuda")


def test_auto_picks_onnx_on_a_cpu_and_says_why_it_falls_back(monkeypatch):
    assert choose_runtime("auto", "cpu").name == "onnx"
    assert choose_runtime("torch", "cpu").name == "torch"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # onnxruntime that does not import
    choice = choose_runtime("auto", "cpu")
    assert choice.name == "torch" and "onnxruntime does not import" in choice.reason
    with pytest.raises(ConfigError, match="onnxruntime"):
        choose_runtime("onnx", "cpu")


def test_thread_helpers_keep_decode_workers_and_model_within_the_cores():
    one = load_embedder("offline:v1", device="cpu", runtime="onnx", torch_threads=1)
    assert model_threads(one) == 1
    assert decode_workers(one, wanted=4, cores=2) == 1
    assert decode_workers(one, wanted=4, cores=8) == 4
    two = load_embedder("offline:v1", device="cpu", runtime="onnx", torch_threads=2)
    assert decode_workers(two, wanted=2, cores=2) == 1  # never 0
