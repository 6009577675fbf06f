"""The pixel fast path: worker-made uint8 pixels + `embed_pixels` give what `embed_images` gives (the transformers
processor path), decode straight to model input keeps decode.py's safeguards, and the GPU JPEG decoder's
code path (run here on CPU with a stand-in for torchvision) falls back cleanly."""

from __future__ import annotations

import io
import json
import shutil
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from assetrag import Library
from assetrag.embedding import load_embedder
from assetrag.embedding.base import PixelEmbedder, pixel_spec_of
from assetrag.embedding.clip import _pixel_spec
from assetrag.embedding.pixels import decode_pixels, gpu_decodable
from assetrag.embedding.tensors import GpuJpegDecoder, resize_crop
from assetrag.errors import BadImageError
from assetrag.ingest import Ingestor

VIT_B32_PREPROCESSOR = {  # openai/clip-vit-base-patch32's preprocessor_config.json, as published
    "crop_size": 224,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 224,
}


@pytest.fixture(scope="module")
def tiny(tiny_clip_dir):
    return load_embedder(f"clip:{tiny_clip_dir}", device="cpu", batch_size=4)


def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    arr = np.asarray(base, dtype=np.int16) + rng.normal(0, 8, (h, w, 1)).astype(np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def _processor(tmp_path, config: dict):
    from transformers import AutoImageProcessor

    (tmp_path / "preprocessor_config.json").write_text(json.dumps(config))
    try:
        return AutoImageProcessor.from_pretrained(tmp_path, backend="pil")
    except TypeError:  # transformers 4.x
        return AutoImageProcessor.from_pretrained(tmp_path, use_fast=False)


def test_clip_vit_b32_processor_is_described_exactly(tmp_path):
    spec = _pixel_spec(_processor(tmp_path, VIT_B32_PREPROCESSOR))
    assert (spec.short_side, spec.crop_h, spec.crop_w, spec.resample, spec.views) == (224, 224, 224, "bicubic", "crop")
    assert spec.mean == pytest.approx(VIT_B32_PREPROCESSOR["image_mean"])
    assert spec.std == pytest.approx(VIT_B32_PREPROCESSOR["image_std"])
    assert spec.scale == pytest.approx(1 / 255)
    assert spec.draft_side == 224


def test_a_processor_it_cannot_describe_has_no_fast_path(tmp_path):
    siglip_like = {**VIT_B32_PREPROCESSOR, "size": {"height": 224, "width": 224}, "do_center_crop": False}
    assert _pixel_spec(_processor(tmp_path, siglip_like)) is None


def test_clip_fast_path_equals_the_processor_path(tiny, random_images):
    assert isinstance(tiny, PixelEmbedder) and pixel_spec_of(tiny) is not None
    images = [*random_images, _photo(20, 10), _photo(300, 40, 1), _photo(31, 33, 2).convert("L").convert("RGB")]
    spec = tiny.pixel_spec
    pixels = [spec.prepare(im) for im in images]
    assert all(p.shape == (1, 32, 32, 3) and p.dtype == np.uint8 for p in pixels)
    slow = tiny.embed_images(images)
    np.testing.assert_allclose(tiny.embed_pixels(pixels), slow, atol=1e-5)
    np.testing.assert_allclose(tiny.embed_pixels(np.stack(pixels)), slow, atol=1e-5)  # one stacked array
    mixed = [torch.from_numpy(p.copy()) if i % 2 else p for i, p in enumerate(pixels)]  # tensors and arrays
    np.testing.assert_allclose(tiny.embed_pixels(mixed), slow, atol=1e-5)
    assert tiny.embed_pixels([]).shape == (0, tiny.dim)
    with pytest.raises(ValueError, match="do not match"):
        tiny.embed_pixels([np.zeros((1, 16, 16, 3), np.uint8)])


def test_conse_fast_path_equals_embed_images(offline_model):
    model, _ = offline_model
    images = [_photo(400, 300), _photo(300, 512, 1), _photo(224, 224, 2)]
    pixels = [model.pixel_spec.prepare(im) for im in images]
    assert pixels[0].shape == (2, 224, 224, 3)
    np.testing.assert_allclose(model.embed_pixels(pixels), model.embed_images(images), atol=1e-5)


def test_decode_to_model_input_keeps_the_original_size_and_the_safeguards(tiny):
    spec = tiny.pixel_spec
    big = _photo(1600, 1200)
    px = decode_pixels(_jpeg(big), "big.jpg", spec)
    assert (px.width, px.height) == (1600, 1200) and px.pixels.shape == (1, 32, 32, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°: stored 400×300, shown 300×400
    px = decode_pixels(_jpeg(_photo(400, 300), exif=exif), "rot.jpg", spec)
    assert (px.width, px.height) == (300, 400)
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    px = decode_pixels(buf.getvalue(), "clear.png", spec)
    assert px.pixels.min() == 255  # fully transparent → white
    buf = io.BytesIO()
    Image.new("CMYK", (50, 40), (0, 255, 255, 0)).save(buf, "JPEG")
    assert decode_pixels(buf.getvalue(), "cmyk.jpg", spec).pixels.shape == (1, 32, 32, 3)
    with pytest.raises(BadImageError, match="truncated"):
        data = _jpeg(big)
        decode_pixels(data[: len(data) // 2], "cut.jpg", spec)
    with pytest.raises(BadImageError, match="decompression bomb"):
        decode_pixels(_jpeg(Image.new("RGB", (8, 8))).replace(b"\x00\x08\x00\x08", b"\x7f\xff\x7f\xff", 1), "b", spec)


def test_which_jpegs_a_gpu_may_decode():
    img = _photo(320, 240)
    assert gpu_decodable(_jpeg(img)) == (320, 240)
    assert gpu_decodable(_jpeg(img.convert("L"))) == (320, 240)
    assert gpu_decodable(_jpeg(img, progressive=True)) is None
    assert gpu_decodable(_jpeg(img)[:-200]) is None  # truncated: the CPU says why
    exif = Image.Exif()
    exif[0x0112] = 6
    assert gpu_decodable(_jpeg(img, exif=exif)) is None  # rotated: the CPU applies EXIF
    assert gpu_decodable(_jpeg(img.convert("CMYK"))) is None
    assert gpu_decodable(b"not a jpeg") is None


def test_tensor_resize_and_crop_is_close_to_pil(tiny):
    spec = tiny.pixel_spec
    for w, h in [(400, 300), (90, 200), (32, 32), (20, 10)]:
        img = _photo(w, h, w)
        ref = spec.prepare(img).astype(int)
        got = resize_crop(torch.from_numpy(np.array(img)).permute(2, 0, 1), spec).numpy().astype(int)
        assert got.shape == ref.shape
        assert np.abs(got - ref).mean() < 2.0, (w, h)


# -- the GPU JPEG decoder's path, with a stand-in for torchvision ------------------------------------------


@pytest.fixture
def fake_torchvision(monkeypatch):
    """torchvision.io.decode_jpeg as a PIL decode on the CPU (CHW uint8), refusing files that hold b"REFUSE"."""
    calls: dict[str, set] = {"images": set()}  # the distinct images decoded

    def decode_jpeg(data, mode=None, device="cpu"):
        if isinstance(data, list):
            return [decode_jpeg(d, mode, device) for d in data]
        raw = bytes(data.numpy())
        if b"REFUSE" in raw:
            raise RuntimeError("nvjpeg: unsupported (stand-in)")
        calls["images"].add(raw)
        arr = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)

    tv = types.ModuleType("torchvision")
    tv_io = types.ModuleType("torchvision.io")
    tv_io.decode_jpeg = decode_jpeg
    tv_io.ImageReadMode = types.SimpleNamespace(RGB="RGB")
    tv.io = tv_io
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.io", tv_io)
    return calls


@pytest.fixture
def jpeg_dir(tmp_path):
    root = tmp_path / "jpegs"
    root.mkdir()
    for i in range(7):
        (root / f"p{i}.jpg").write_bytes(_jpeg(_photo(40 + 3 * i, 36 + i, i)))  # < 2×32: no JPEG draft
    good = (root / "p0.jpg").read_bytes()
    # a JPEG the GPU decoder refuses (a comment segment carries the marker): decoded on the CPU instead
    (root / "refused.jpg").write_bytes(good[:2] + b"\xff\xfe\x00\x08REFUSE" + good[2:])
    (root / "cut.jpg").write_bytes(good[: len(good) // 2])
    (root / "text.jpg").write_text("hello")
    shutil.copy(root / "p1.jpg", root / "p1-copy.jpg")
    return root


def _vectors(lib):
    return {
        r["id"]: (np.asarray(r["vector"]), r["width"], r["height"])
        for r in lib.store.iterate(("id", "vector", "width", "height"))
    }


def test_gpu_decoder_path_with_fallbacks(tmp_path, tiny, jpeg_dir, fake_torchvision):
    cpu_lib = Library(str(tmp_path / "cpu.db"), embedder=tiny)
    ing = Ingestor(cpu_lib.store, lambda: tiny, pipeline="fast", gpu_decode="off", batch_size=4)
    ref = ing.run([jpeg_dir])
    gpu_lib = Library(str(tmp_path / "gpu.db"), embedder=tiny)
    ing = Ingestor(gpu_lib.store, lambda: tiny, pipeline="fast", gpu_decode="on", gpu_share=1.0, batch_size=4)
    got = ing.run([jpeg_dir])
    assert ing.used["gpu_decode"].startswith("torchvision")
    assert len(fake_torchvision["images"]) == 7  # every decodable JPEG went to the "GPU"; the refused one did not
    assert (got.added, got.duplicates) == (ref.added, ref.duplicates) == (8, 1)
    assert {e.path: e.reason for e in got.errors} == {e.path: e.reason for e in ref.errors}  # reasons from the CPU
    a, b = _vectors(cpu_lib), _vectors(gpu_lib)
    assert a.keys() == b.keys()
    for rid, (va, wa, ha) in a.items():
        vb, wb, hb = b[rid]
        assert (wa, ha) == (wb, hb)
        assert float(va @ vb) > 0.98  # torch's antialiased bicubic vs PIL's: a level or two apart
    cpu_lib.close()
    gpu_lib.close()


def test_without_torchvision_everything_decodes_on_the_cpu(tmp_path, tiny, jpeg_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision → ImportError
    monkeypatch.setitem(sys.modules, "torchvision.io", None)
    assert GpuJpegDecoder.create("cpu") is None
    lib = Library(str(tmp_path / "lib.db"), embedder=tiny)
    ing = Ingestor(lib.store, lambda: tiny, pipeline="fast", gpu_decode="on", gpu_share=1.0, batch_size=4)
    report = ing.run([jpeg_dir])
    assert ing.used["gpu_decode"] == "off"
    assert (report.added, report.duplicates, len(report.errors)) == (8, 1, 2)
    lib.close()


def test_small_images_give_the_very_same_vectors_on_both_pipelines(tmp_path, tiny, jpeg_dir):
    """Images under twice the model's input get no JPEG draft on either path: the pipelines must then agree to
    float precision (the fast path is the processor's arithmetic, not an approximation of it)."""
    libs = {}
    for mode in ("simple", "fast"):
        libs[mode] = Library(str(tmp_path / f"{mode}.db"), embedder=tiny)
        libs[mode].ingest(jpeg_dir, pipeline=mode)
    a, b = _vectors(libs["simple"]), _vectors(libs["fast"])
    assert a.keys() == b.keys() and len(a) == 8
    for rid in a:
        np.testing.assert_allclose(a[rid][0], b[rid][0], atol=1e-5)
    for lib in libs.values():
        lib.close()
