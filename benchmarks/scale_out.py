"""Scale-out figures on this machine: the same photos ingested (a) from a local folder, (b) from an S3-protocol
bucket (moto's server on 127.0.0.1, through s3fs), (c) from the folder with `--engine ray` on a local Ray (one
node). Each into a fresh Milvus Lite file, the offline model, in this process; the model load is not counted
(`IngestReport.images_per_s`). Prints a table; docs/scale-out.md quotes it.

    python benchmarks/scale_out.py [--photos 60] [--ray-cpus 2]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "ingest"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def photos(folder: Path, n: int) -> Path:
    """n camera-like 1600×1200 JPEGs made from scikit-image's photos (each distinct: shifted crops + noise)."""
    from skimage import data

    base = [data.chelsea(), data.coffee(), data.rocket(), data.astronaut()]
    rng = np.random.default_rng(0)
    for i in range(n):
        img = Image.fromarray(base[i % len(base)]).resize((1600, 1200))
        arr = np.asarray(img).astype(np.int16) + rng.integers(-3, 4, (1200, 1600, 3))
        out = folder / f"set{i % 3}" / f"photo-{i:04d}.jpg"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(out, quality=88)
    return folder


def run(label: str, root: str, tmp: Path, **kw) -> dict:
    from assetrag import Library

    lib = Library(str(tmp / f"{label}.db"), library="bench", model="offline")
    t = time.perf_counter()
    report = lib.ingest(root, **kw)
    wall = time.perf_counter() - t
    again = time.perf_counter()
    rerun = lib.ingest(root, **kw)
    rerun_s = time.perf_counter() - again
    lib.close()
    assert not report.errors, report.errors[:3]
    assert rerun.decoded == 0
    return {"label": label, "n": report.added, "rate": report.images_per_s, "wall": wall, "rerun": rerun_s}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=60)
    ap.add_argument("--ray-cpus", type=int, default=2)
    args = ap.parse_args()
    from buckets_support import S3Server

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        folder = photos(tmp / "photos", args.photos)
        server = S3Server()
        server.start()
        os.environ.update(
            {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "ASSETRAG_S3_ENDPOINT": server.endpoint}
        )
        server.client().create_bucket(Bucket="bench")
        server.upload_tree("bench", "photos", folder)
        rows = [run("local folder", str(folder), tmp), run("s3 (moto, loopback)", "s3://bench/photos", tmp)]
        import ray

        ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
        rows.append(run(f"ray, 1 node, {args.ray_cpus} CPUs", str(folder), tmp, engine="ray"))
        ray.shutdown()
        server.stop()
    base = rows[0]["rate"]
    print(f"{args.photos} photos 1600×1200 JPEG, offline model, Milvus Lite, {os.cpu_count()} cores")
    print(f"{'source / engine':<28} {'images/s':>9} {'vs local':>9} {'wall s':>8} {'re-run s':>9}")
    for r in rows:
        print(f"{r['label']:<28} {r['rate']:>9.2f} {r['rate'] / base:>9.2f} {r['wall']:>8.1f} {r['rerun']:>9.2f}")


if __name__ == "__main__":
    main()
