"""Scale-out figures on this machine: the same photos ingested (a) from a local folder, (b) from an S3-protocol
bucket (moto's server on 127.0.0.1, through s3fs), (c) from the folder with `--engine ray` on a local Ray (one
node). Each into a fresh Milvus Lite file, the offline model, in this process; the model load is not counted
(`IngestReport.images_per_s`). Prints a table; docs/scale-out.md quotes it.

    python benchmarks/scale_out.py [--photos 60] [--ray-cpus 2]

`--bulk-rows 20000,100000`: instead, writing N new rows (whole assetrag rows around synthetic 512-d vectors)
to the Milvus 2.3.5 standalone (PyPI `milvus`, started here in a private loopback-only network namespace, this
client inside it) three ways, each into a fresh collection (HNSW, built as the data arrives): upserts of 32 rows
(what ingest writes per batch), upserts of 2,000 rows (the best case for row writes), and bulk insert
(`store.bulk`: Parquet files of 50,000 rows staged in a directory the server reads, import, wait until every
row is visible to a Strong read). Each is timed until every row is readable and until the HNSW index covers
every row (readable rows are searched brute force until then); rows/s is over the latter. The load average is
printed with each figure (the machine is shared).

    python benchmarks/scale_out.py --bulk-rows 20000,100000
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


def _visible(store, n: int) -> None:
    while store.count() < n:
        time.sleep(0.2)


def _indexed(store, n: int) -> int:
    """Seal what is growing and wait until the vector index covers `n` rows; returns the indexed rows."""
    store.client.flush(store.name)
    while True:
        store._built = None
        info = store.index_info()
        if int(info.get("indexed_rows", 0)) >= n and int(info.get("pending_index_rows", 0)) == 0:
            return int(info["indexed_rows"])
        time.sleep(0.5)


def bulk_vs_upsert(sizes: list[int]) -> None:
    """Upserts vs bulk insert of `sizes` new rows on the 2.3.5 server (see the module doc)."""
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from milvus_server import enter_private_netns

    enter_private_netns()  # before any thread: the server and this client see only loopback
    from report import synthetic_rows
    from scale import DIM, Server, make_data

    from assetrag.store import Store
    from assetrag.store.bulk import BulkLoader, BulkStage

    out = []
    with tempfile.TemporaryDirectory(prefix="assetrag-bulk-") as d:
        (Path(d) / "milvus").mkdir()
        server = Server(Path(d) / "milvus")
        try:
            for n in sizes:
                x, _ = make_data(n, 1)
                rows = synthetic_rows(x, 0)
                for how in ("upsert 32", "upsert 2000", "bulk insert"):
                    store = Store(server.uri, f"bench_{how.replace(' ', '_')}_{n}")
                    store.drop()
                    store.ensure("bench", DIM)
                    load0 = os.getloadavg()[0]
                    t = time.perf_counter()
                    extra = ""
                    if how.startswith("upsert"):
                        step = int(how.split()[1])
                        for i in range(0, n, step):
                            store.upsert(rows[i : i + step])
                        _visible(store, n)
                        visible = time.perf_counter() - t
                        _indexed(store, n)
                    else:
                        loader = BulkLoader(store, BulkStage(str(Path(d) / "stage")))
                        loader.check()
                        t_check = time.perf_counter() - t
                        for i in range(0, n, 32):
                            loader.add(rows[i : i + 32])
                        assert loader.finish() == n
                        visible = time.perf_counter() - t
                        _indexed(store, n)
                        extra = (
                            f"probe {t_check:.1f} s, import tasks {loader.wait_s:.1f} s, "
                            f"until visible {loader.visible_s:.1f} s"
                        )
                    wall = time.perf_counter() - t
                    assert store.count() == n
                    res = {"n": n, "how": how, "wall": wall, "rate": n / wall, "load": (load0, os.getloadavg()[0])}
                    res["visible"] = visible
                    res["extra"] = extra
                    out.append(res)
                    print(
                        f"{n:>7} {how:<12} visible {visible:7.1f} s, indexed {wall:7.1f} s, {n / wall:7.0f} rows/s "
                        f" load {load0:.1f}→{os.getloadavg()[0]:.1f}  {extra}",
                        flush=True,
                    )
                    store.drop()
                    store.close()
        finally:
            server.stop()
    print(f"\nMilvus 2.3.5 standalone (local storage), {os.cpu_count()} cores, rows of {DIM}-d vectors + fields")
    print("seconds until every row is readable (Strong count) and until the HNSW index covers them all; rows/s over")
    print("the latter")
    print(
        f"{'rows':>7} {'write path':<12} {'visible s':>9} {'indexed s':>9} {'rows/s':>7} {'vs upsert 32':>13} "
        f"{'load':>10}"
    )
    for r in out:
        base = next(b for b in out if b["n"] == r["n"] and b["how"] == "upsert 32")
        print(
            f"{r['n']:>7} {r['how']:<12} {r['visible']:>9.1f} {r['wall']:>9.1f} {r['rate']:>7.0f} "
            f"{r['rate'] / base['rate']:>13.1f} "
            f"{r['load'][0]:>5.1f}→{r['load'][1]:.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=60)
    ap.add_argument("--ray-cpus", type=int, default=2)
    ap.add_argument("--bulk-rows", help="upserts vs bulk insert of these many rows on the 2.3.5 server instead")
    args = ap.parse_args()
    if args.bulk_rows:
        bulk_vs_upsert([int(s) for s in args.bulk_rows.split(",")])
        return
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
