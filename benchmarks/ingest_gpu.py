"""End-to-end ingest throughput of the fast pipeline: JPEG files on disk → vectors in Milvus, in images/s.

Also measured alone, to show which stage limits: decode (read + sha256 + decode to the model's input, in
worker threads and in worker processes), the model on ready pixels (at the pipeline's batch and dtype), and
for comparison the simple pipeline and the transformers image-processor path.

    python benchmarks/ingest_gpu.py --n 3000                      # CUDA: fp16, batch 256
    python benchmarks/ingest_gpu.py --n 64 --model tiny           # CPU smoke run
    python benchmarks/ingest_gpu.py --model /models/clip-vit-base-patch32 --uri http://host:19530

`--model`: `auto` (CLIP ViT-B/32 when its weights are in the HF cache, else `vit-b32-random`),
`vit-b32-random` (the real ViT-B/32 architecture with random weights, built locally: the same FLOPs and memory
traffic as CLIP, so the same speed; the vectors mean nothing), `tiny` (the tests' tiny random CLIP), `offline`,
or any `--model` spec of assetrag (a CLIP checkpoint folder…). `--uri none` measures without a store (only for
a machine without pymilvus/milvus-lite; the table says so).

Results go to the `ingest_gpu` section of docs/benchmarks.md: the CUDA and the CPU figures are kept apart,
and a run replaces only its own device's part.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "src"))
from report import DOC, table, write_section  # noqa: E402

MIXED = [(1600, 1200), (1200, 1600), (2048, 1365), (1024, 768), (3000, 2000), (800, 800)]


# -- corpus -----------------------------------------------------------------------------------------


def _photo(i: int, size: tuple[int, int]) -> Image.Image:
    """A photo-like image: one of scikit-image's photos (or a smooth random field) scaled up, colour-shifted,
    flipped, with film grain so the JPEG holds as much detail as a camera photo of that size."""
    rng = np.random.default_rng(i)
    try:
        from skimage import data

        bases = [data.chelsea, data.coffee, data.rocket, data.astronaut, data.immunohistochemistry]
        base = Image.fromarray(bases[i % len(bases)]())
    except Exception:
        base = Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8))
    img = base.resize(size, Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.int16) + rng.integers(-30, 30, size=3, dtype=np.int16)
    arr = arr + rng.normal(0, 6, (*arr.shape[:2], 1)).astype(np.int16)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i % 2 else img


def _write_one(args: tuple[int, str, tuple[int, int]]) -> int:
    i, path, size = args
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _photo(i, size).save(path, quality=90)
    return os.path.getsize(path)


def make_photos(root: Path, n: int, sizes: list[tuple[int, int]], workers: int) -> tuple[list[Path], float]:
    """n JPEGs under root (10 folders), written in parallel; returns the paths and their mean size in bytes."""
    jobs = [(i, str(root / f"set{i % 10}" / f"img{i:06d}.jpg"), sizes[i % len(sizes)]) for i in range(n)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        total = sum(pool.map(_write_one, jobs, chunksize=8))
    return [Path(j[1]) for j in jobs], total / max(1, n)


# -- models -----------------------------------------------------------------------------------------


def _build_clip(folder: Path, vit_b32: bool) -> Path:
    """A random-weight CLIP checkpoint saved like a real one (ViT-B/32's config, or the tests' tiny one)."""
    if (folder / "config.json").exists():
        return folder
    import torch
    from transformers import CLIPConfig, CLIPModel

    sys.path.insert(0, str(REPO / "tests" / "embedding"))
    from conftest import _tiny_tokenizer  # a character-level tokenizer written by hand: no download

    try:
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil as Processor
    except ImportError:
        from transformers import CLIPImageProcessor as Processor
    folder.mkdir(parents=True, exist_ok=True)
    tok, vocab = _tiny_tokenizer(folder)
    eos = vocab["<|endoftext|>"]
    ids = {"bos_token_id": vocab["<|startoftext|>"], "eos_token_id": eos, "pad_token_id": eos}
    if vit_b32:  # CLIPConfig's defaults are openai/clip-vit-base-patch32's architecture
        config = CLIPConfig(text_config={"vocab_size": 49408, **ids})
        processor = Processor()  # shortest edge 224, centre crop 224, bicubic, OpenAI mean/std
    else:
        small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
        config = CLIPConfig(
            text_config={**small, "vocab_size": len(vocab), "max_position_embeddings": 16, **ids},
            vision_config={**small, "image_size": 32, "patch_size": 8},
            projection_dim=16,
        )
        processor = Processor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def load_model(spec: str, device: str):
    """(embedder, a line that says what it is)."""
    from assetrag.config import DEFAULT_CLIP_CHECKPOINT, Settings
    from assetrag.embedding import load_embedder
    from assetrag.embedding.clip import cached_locally

    if spec == "auto":
        spec = "clip" if cached_locally(DEFAULT_CLIP_CHECKPOINT) else "vit-b32-random"
    bench = Settings().cache_dir / "bench"
    if spec in ("vit-b32-random", "tiny"):
        folder = _build_clip(bench / f"clip-{spec}", vit_b32=spec == "vit-b32-random")
        emb = load_embedder(f"clip:{folder}", device=device)
        what = (
            "CLIP ViT-B/32 architecture with RANDOM weights (same compute as the real model; vectors meaningless)"
            if spec == "vit-b32-random"
            else "the tests' tiny random CLIP (32 px input; measures the pipeline, not a model)"
        )
        return emb, what
    emb = load_embedder(spec, device=device)
    return emb, f"`{emb.name}`"


# -- stages -------------------------------------------------------------------------------------------


class NullStore:
    """Stands in for Milvus when pymilvus/milvus-lite are missing (`--uri none`): writes go nowhere."""

    def __init__(self) -> None:
        self.rows = 0
        self._info: tuple[str, int] | None = None

    def model_info(self):
        return self._info

    def ensure(self, name: str, dim: int) -> None:
        self._info = (name, dim)

    def iterate(self, fields=()):
        return iter(())

    def upsert(self, rows) -> None:
        self.rows += len(rows)

    def get(self, ids, fields=()):
        return []

    def delete(self, ids) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def decode_rate(paths: list[Path], spec, pool: str, workers: int) -> float:
    """Images/s of read + sha256 + decode to model input, as the fast pipeline's workers do it."""
    from assetrag.ingest.read import Target, load_file, load_file_in_process

    target = Target(spec=spec)
    t = time.perf_counter()
    if pool == "process":
        import multiprocessing

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            warm = [str(p) for p in paths[: workers * 2]]
            list(ex.map(load_file_in_process, warm, [target] * len(warm), range(len(warm))))
            t = time.perf_counter()  # pool started and warm
            out = list(ex.map(load_file_in_process, map(str, paths), [target] * len(paths), range(len(paths))))
    else:
        with ThreadPoolExecutor(workers) as ex:
            out = list(ex.map(lambda ip: load_file(str(ip[1]), target, ip[0], ()), enumerate(paths)))
    assert not [o.error for o in out if o.error], "decode failed"
    return len(paths) / (time.perf_counter() - t)


def simple_decode_rate(paths: list[Path], workers: int) -> float:
    """The simple pipeline's decode: read + sha256 + PIL decode with draft to 512 px, long side ≤ 512."""
    from assetrag.decode import decode_bytes
    from assetrag.ingest.read import read_regular_file, sha256_bytes

    def one(p: Path) -> None:
        data = read_regular_file(str(p))
        sha256_bytes(data)
        decode_bytes(data, str(p))

    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, paths))
    return len(paths) / (time.perf_counter() - t)


def embed_rate(emb, spec, batch: int, seconds: float) -> float:
    """Images/s of the model alone on ready uint8 pixels (host memory, as the workers hand them over)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (batch, spec.n_views, spec.crop_h, spec.crop_w, 3), dtype=np.uint8)
    emb.embed_pixels(pixels[: min(batch, 8)])
    emb.embed_pixels(pixels)  # warm-up (CUDA kernels, cuDNN autotune, pinned buffer)
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds or n < 2 * batch:
        emb.embed_pixels(list(pixels))
        n += batch
    return n / (time.perf_counter() - t)


def processor_rate(emb, batch: int, seconds: float) -> float:
    """Images/s of `embed_images` on 512 px PIL images (the transformers image-processor path)."""
    rng = np.random.default_rng(1)
    imgs = [Image.fromarray(rng.integers(0, 256, (384, 512, 3), dtype=np.uint8)) for _ in range(batch)]
    emb.embed_images(imgs[:4])
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds or n < batch:
        emb.embed_images(imgs)
        n += batch
    return n / (time.perf_counter() - t)


def end_to_end(root: Path, emb, uri: str, name: str, **kw) -> tuple[float, dict, object]:
    """A fresh library ingests `root`; (images/s excluding the model load, what the ingestor used, report)."""
    from assetrag.ingest import Ingestor

    if uri == "none":
        store = NullStore()
    else:
        from assetrag.store import Store

        store = Store(uri, name)
        store.drop()
        store = Store(uri, name)
    ing = Ingestor(store, lambda: emb, **kw)
    report = ing.run([root])
    if uri != "none":
        store.drop()
    store.close()
    assert not report.errors, report.errors[:3]
    return report.images_per_s, ing.used, report


# -- main --------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=None, help="JPEG files (default 3000 on CUDA, 96 on CPU)")
    ap.add_argument("--size", default="1600x1200", help="WxH, or 'mixed' (6 camera-like sizes)")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--uri", default=None, help="Milvus Lite path or server URL (default: a temporary Lite db)")
    ap.add_argument("--batch", type=int, default=None, help="default: 256 on CUDA, 32 on CPU")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--pool", choices=["thread", "process", "both"], default="both")
    ap.add_argument("--gpu-shares", default="0,0.5,0.65,0.8", help="GPU decode shares to try (CUDA+torchvision)")
    ap.add_argument("--seconds", type=float, default=None, help="time per model-only measurement")
    ap.add_argument("--no-simple", action="store_true", help="skip the simple pipeline's end-to-end run")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args()

    import torch

    from assetrag.embedding.base import pixel_spec_of
    from assetrag.embedding.tensors import GpuJpegDecoder

    cuda = torch.cuda.is_available() and args.device != "cpu"
    n = args.n or (3000 if cuda else 96)
    batch = args.batch or (256 if cuda else 32)
    seconds = args.seconds or (5.0 if cuda else 3.0)
    sizes = MIXED if args.size == "mixed" else [tuple(int(x) for x in args.size.split("x"))]
    emb, what = load_model(args.model, args.device)
    spec = pixel_spec_of(emb)
    if spec is None:
        sys.exit(f"{emb.name} has no pixel fast path (its image processor is not resize+crop); nothing to measure")
    dev = getattr(emb, "device", torch.device("cpu"))
    dtype = str(getattr(emb, "dtype", torch.float32)).replace("torch.", "")
    dev_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    gpu_decode = GpuJpegDecoder.create(dev) is not None if dev.type == "cuda" else False
    pools = ["thread", "process"] if args.pool == "both" else [args.pool]

    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        t = time.perf_counter()
        paths, mean_bytes = make_photos(root, n, sizes, args.workers)
        print(f"wrote {n} JPEGs ({mean_bytes / 1e3:.0f} kB on average) in {time.perf_counter() - t:.1f}s", flush=True)
        uri = args.uri or str(Path(tmp) / "bench.db")
        store_what = "no store (--uri none)" if uri == "none" else ("Milvus Lite" if uri.endswith(".db") else uri)

        for pool in pools:
            r = decode_rate(paths, spec, pool, args.workers)
            label = f"{args.workers} {pool} workers"
            rows.append(["decode only: read + sha256 + decode to model input", label, f"{r:.0f}"])
            print(rows[-1], flush=True)
        r = simple_decode_rate(paths, args.workers)
        rows.append(
            [
                "decode only: the simple pipeline's (PIL draft ≥ 512, long side 512)",
                f"{args.workers} threads",
                f"{r:.0f}",
            ]
        )
        r = embed_rate(emb, spec, batch, seconds)
        rows.append([f"model only: embed_pixels on ready pixels ({dtype})", f"batch {batch}", f"{r:.0f}"])
        print(rows[-1], flush=True)
        r = processor_rate(emb, min(batch, 64), seconds)
        label = "model only: embed_images via the transformers image processor (512 px PIL in)"
        rows.append([label, f"batch {min(batch, 64)}", f"{r:.0f}"])
        print(rows[-1], flush=True)

        common = {"batch_size": batch, "workers": args.workers, "device": args.device, "gpu_batch_size": batch}
        shares = [float(s) for s in args.gpu_shares.split(",")] if gpu_decode else [0.0]
        for pool in pools:
            for share in shares:
                ips, _used, rep = end_to_end(
                    root, emb, uri, "bench_gpu", pipeline="fast", decode_pool=pool,
                    gpu_decode="on" if share > 0 else "off", gpu_share=share, **common,
                )  # fmt: skip
                label = f"{args.workers} {pool} workers" + (f", GPU decodes {share:.0%}" if gpu_decode else "")
                rows.append([f"end to end, fast pipeline → {store_what}", label, f"**{ips:.0f}**"])
                print(rows[-1], f"(embed thread busy {rep.embed_s:.1f}s of {rep.elapsed_s:.1f}s)", flush=True)
        if not args.no_simple:
            ips, _, _ = end_to_end(root, emb, uri, "bench_simple", pipeline="simple", **common)
            rows.append([f"end to end, simple pipeline → {store_what}", f"{args.workers} threads", f"{ips:.0f}"])
            print(rows[-1], flush=True)

    size_txt = (
        "mixed sizes " + ", ".join(f"{w}×{h}" for w, h in sizes) if len(sizes) > 1 else f"{sizes[0][0]}×{sizes[0][1]}"
    )
    part = (
        f"**{'GPU: ' + dev_name if dev.type == 'cuda' else 'CPU only'}** · model: {what} · {dtype} · batch {batch} · "
        f"{args.workers} decode workers · torchvision GPU decode: {'yes' if gpu_decode else 'no'} · "
        f"{n} JPEGs of {size_txt} ({mean_bytes / 1e3:.0f} kB on average) on local disk · store: {store_what}\n\n"
        + table(["stage", "setting", "images/s"], rows)
    )
    print(part)
    if not args.no_write:
        write_part("cuda" if dev.type == "cuda" else "cpu", part)


NO_GPU = (
    "**GPU: no figure yet.** Nothing here has run on a GPU so far: run `benchmarks/gpu_check.sh` on a CUDA "
    "machine (target: ≥ 2,500 images/s end to end on one H100)."
)


def write_part(device: str, part: str) -> None:
    """Replace this device's part of the `ingest_gpu` section, keeping the other device's part."""
    old = DOC.read_text() if DOC.exists() else ""
    parts = {"cuda": NO_GPU, "cpu": "**CPU:** no figure yet."}
    for key in parts:
        m = re.search(rf"<!-- ingest_gpu:{key} -->\n(.*?)\n<!-- /ingest_gpu:{key} -->", old, re.S)
        if m:
            parts[key] = m.group(1)
    parts[device] = part.strip()
    body = (
        "Files on disk → sha256 → decode straight to the model's input (JPEG DCT draft + resize/crop in worker "
        "threads or processes; on CUDA with torchvision part of the JPEGs decoded by nvJPEG) → batched model "
        "(fp16 on CUDA) → Milvus upsert, the three overlapped (`assetrag ingest --pipeline fast`, the default on "
        "CUDA). Images/s exclude loading the model; the stage rows show which stage limits.\n\n"
        + "\n\n".join(f"<!-- ingest_gpu:{k} -->\n{parts[k]}\n<!-- /ingest_gpu:{k} -->" for k in ("cuda", "cpu"))
    )
    write_section("ingest_gpu", "Fast ingest pipeline, GPU and CPU (benchmarks/ingest_gpu.py)", body)


if __name__ == "__main__":
    main()
