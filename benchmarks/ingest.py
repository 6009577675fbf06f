"""Ingest throughput: the seed's one-at-a-time loop vs `assetrag ingest`, same files, same model.

The seed loop: for each file open → convert → embed one image → append; then one insert at the end.
assetrag: parallel decode threads (JPEG draft mode), batched embedding, a write per batch.

    python benchmarks/ingest.py [--n 200] [--model offline] [--size 1600x1200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import table, write_section


def make_corpus(root: Path, n: int, size: tuple[int, int]) -> list[Path]:
    """n distinct camera-sized JPEGs made from scikit-image's photos (crops, flips, colour shifts)."""
    from skimage import data

    bases = [data.chelsea(), data.coffee(), data.rocket(), data.astronaut(), data.immunohistochemistry()]
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        base = Image.fromarray(bases[i % len(bases)]).resize(size, Image.Resampling.BILINEAR)
        arr = np.asarray(base).astype(np.int16) + rng.integers(-30, 30, size=3)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        if i % 2:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        p = root / f"set{i % 7}" / f"img{i:05d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        img.save(p, quality=90)
        paths.append(p)
    return paths


def seed_loop(paths: list[Path], embedder, uri: str) -> float:
    """The seed's recipe: one image at a time, one insert at the end."""
    from assetrag.store import Store

    t0 = time.perf_counter()
    rows = []
    for p in paths:
        img = Image.open(p).convert("RGB")
        vec = embedder.embed_images([img])[0]
        rows.append(
            {
                "id": str(len(rows)).zfill(64),
                "vector": vec.tolist(),
                "path": str(p),
                "paths": [str(p)],
                "mtimes": [0],
                "filename": p.name,
                "size": 0,
                "mtime": 0,
                "width": img.width,
                "height": img.height,
                "tags": [],
                "collection": "",
                "source": "ingested",
                "lineage": {},
                "metadata": {},
            }
        )
    store = Store(uri, "seed")
    store.ensure(embedder.name, embedder.dim)
    store.upsert(rows)
    store.close()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--model", default="offline")
    ap.add_argument("--size", default="1600x1200")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    size = tuple(int(x) for x in args.size.split("x"))

    import torch

    from assetrag import Library, Settings
    from assetrag.embedding import load_embedder

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    embedder = load_embedder(args.model, torch_threads=threads)
    embedder.embed_images([Image.new("RGB", (224, 224))] * 2)  # warm-up

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_corpus(root / "lib", args.n, size)
        seed_s = seed_loop(paths, embedder, str(root / "seed.db"))
        settings = Settings(uri=str(root / "ar.db"), batch_size=args.batch_size, workers=threads)
        with Library(settings=settings, embedder=embedder) as lib:
            t0 = time.perf_counter()
            report = lib.ingest(root / "lib")
            ours_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            rerun = lib.ingest(root / "lib")
            rerun_s = time.perf_counter() - t0
        assert report.added == args.n and rerun.decoded == 0

    seed_ips, ours_ips = args.n / seed_s, args.n / ours_s
    rows = [
        ["seed loop (1 image at a time, 1 insert)", args.n, f"{seed_s:.1f}", f"{seed_ips:.1f}", "1.0×"],
        [
            f"assetrag ingest (batch {args.batch_size}, {threads} decode threads)",
            args.n,
            f"{ours_s:.1f}",
            f"{ours_ips:.1f}",
            f"{ours_ips / seed_ips:.1f}×",
        ],
        ["assetrag re-run, nothing changed", args.n, f"{rerun_s:.2f}", f"{args.n / rerun_s:.0f}", "—"],
    ]
    body = (
        f"Model `{embedder.name}`, {args.n} JPEGs of {size[0]}×{size[1]} on disk, Milvus Lite, "
        f"torch threads {threads}.\n\n"
        + table(["pipeline", "images", "seconds", "images/s", "speed-up"], rows)
        + "\n\nWhere the time goes in assetrag's run: "
        f"embedding {report.embed_s:.1f}s of {report.elapsed_s:.1f}s "
        "(the rest is reading, hashing, decoding in parallel threads and Milvus writes). On a CPU the model "
        "is the limit, and it is fastest one or two images per network pass (EfficientNet-Lite0's depthwise "
        "convolutions are memory-bound: 38 images/s at 1-2 images a pass, 14 at 32, on 2 cores), which is also "
        "what the seed loop does; assetrag's gain is decoding in draft mode on other threads meanwhile. Figures "
        "taken under load earlier (3.6×) overstated it."
    )
    write_section("ingest", "Ingest throughput (benchmarks/ingest.py)", body)


if __name__ == "__main__":
    main()
