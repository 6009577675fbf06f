"""The store at scale: 10k / 100k / 1M stored vectors on Milvus Lite, a Milvus server and exact numpy.

Per backend and size: insert rows/s (whole assetrag rows through `Store.upsert`, batches of 2,000), index
build time, single-query latency p50/p95 (`Store.search`, k=10, the scalar fields a search returns), QPS (one
client, one query per call; and batches of 100 queries per call), recall@10 of the ANN index against exact
search on the same data, memory (RSS) and disk.

Vectors are synthetic (the store does not care where they come from): 512-d like CLIP ViT-B/32, clustered
around n/100 random unit "concepts" (~100 near-alike assets each) with noise, L2-normalised. Queries are other
noisy copies of concept centres — shaped like a text query landing near a concept. (Uniform random vectors
would make any ANN index look broken — MILVUS_NOTES.md. Real text encoding adds its own time:
benchmarks/search.py measures that.)

Milvus Lite runs in a child process per size (clean RSS, memory given back); above `--lite-max` (default 300k)
it is not run and the table says so: at 1M it would need ~9 GB and most of an hour here, and every query
would cost ~0.8 s (see docs/milvus-server.md for where Lite's time goes).
The server is the PyPI `milvus` 2.3.5 standalone (`pip install milvus==2.3.5`), started here in a private
loopback-only network namespace (root, or unprivileged user namespaces), client in the same namespace.

    python benchmarks/scale.py [--sizes 10000,100000,1000000] [--lite-max 300000] [--backends numpy,lite,server]
                               [--server-data DIR]   # keep the server's data: re-measure queries later
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # the server helper (tests/milvus_server.py)
from report import percentile_ms, synthetic_rows, wait_server_indexed  # noqa: E402

DIM = 512
RESULTS = HERE.parent / "docs" / "benchmarks-scale.json"  # raw figures of every backend/size run so far
K = 10
BATCH_ROWS = 2000
PER_CONCEPT = 100  # a library of n assets has n/100 "concepts", ~100 near-alike images each
NOISE = 0.45  # per-dimension noise relative to a unit centre; cos(vector, its centre) ≈ 0.9


# -- data ---------------------------------------------------------------------------------------------


def make_data(n: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_concepts = max(10, n // PER_CONCEPT)
    centres = rng.standard_normal((n_concepts, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.empty((n, DIM), dtype=np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        part = centres[rng.integers(0, n_concepts, m)] + NOISE * rng.standard_normal((m, DIM)).astype(
            np.float32
        ) / np.sqrt(DIM)
        x[s : s + m] = part / np.linalg.norm(part, axis=1, keepdims=True)
    q = centres[rng.integers(0, n_concepts, n_queries)] + NOISE * rng.standard_normal((n_queries, DIM)).astype(
        np.float32
    ) / np.sqrt(DIM)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, q.astype(np.float32)


def exact_top_k(x: np.ndarray, q: np.ndarray, k: int = K) -> np.ndarray:
    out = np.empty((len(q), k), dtype=np.int64)
    for s in range(0, len(q), 50):
        sims = q[s : s + 50] @ x.T
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        out[s : s + 50] = np.take_along_axis(part, order, axis=1)
    return out


def recall(found: list[list[str]], truth: np.ndarray) -> float:
    hits = [len({int(h, 16) for h in f} & set(t.tolist())) / K for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits))


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def du_mb(path: Path) -> float:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            fp = os.path.join(dirpath, name)
            if not os.path.islink(fp):
                total += os.stat(fp).st_blocks * 512
    return total / 2**20


# -- one store, measured --------------------------------------------------------------------------------


def measure_store(store, x, q: np.ndarray, truth: np.ndarray, wait_index, log, insert: bool = True) -> dict:
    """Insert x, wait for its index, then query. `wait_index()` returns once the index covers the rows.
    With `insert=False` the store already holds x (kept from an earlier run): queries only."""
    n = len(x)
    out: dict = {"insert_rows_s": None, "search_unflushed_ms": None, "index_s": None}
    if insert:
        store.ensure("bench:synthetic-512", DIM)
        t0 = time.perf_counter()
        for s in range(0, n, BATCH_ROWS):
            store.upsert(synthetic_rows(x[s : s + BATCH_ROWS], s))
            if s and s % 100_000 == 0:
                log(f"  {s:,} rows, {s / (time.perf_counter() - t0):,.0f} rows/s")
        out["insert_rows_s"] = n / (time.perf_counter() - t0)
        # what a search costs before anything is flushed / indexed (Lite: the in-memory table)
        t = time.perf_counter()
        for v in q[:5]:
            store.search(v, K)
        out["search_unflushed_ms"] = (time.perf_counter() - t) / 5 * 1000
        t0 = time.perf_counter()
        wait_index()
        out["index_s"] = time.perf_counter() - t0
    for v in q[:10]:  # warm-up
        store.search(v, K)
    lat, found = [], []
    for v in q:
        t = time.perf_counter()
        hits = store.search(v, K)[0]
        lat.append(time.perf_counter() - t)
        found.append([h.id for h in hits])
    out["p50_ms"], out["p95_ms"] = percentile_ms(lat, 50), percentile_ms(lat, 95)
    out["qps_1"] = len(q) / sum(lat)
    t = time.perf_counter()
    batches = 0
    for s in range(0, len(q), 100):
        store.search(q[s : s + 100], K)
        batches += len(q[s : s + 100])
    out["qps_batch100"] = batches / (time.perf_counter() - t)
    out["recall"] = recall(found, truth)
    # where a query's time goes: the same queries returning the id only (no scalar fields to fetch)
    lat = []
    for v in q[:100]:
        t = time.perf_counter()
        store.search(v, K, fields=("id",))
        lat.append(time.perf_counter() - t)
    out["p50_id_only_ms"] = percentile_ms(lat, 50)
    return out


# -- Milvus Lite (child process) ------------------------------------------------------------------------


def lite_child(args: argparse.Namespace) -> None:
    from assetrag.store import Store

    x = np.load(args.x, mmap_mode="r")[: args.n]
    q = np.load(args.q)
    truth = np.load(args.truth)
    db = Path(args.workdir) / f"lite-{args.n}.db"
    base = rss_mb()
    store = Store(str(db), "bench")

    def wait_index() -> None:
        store.flush()  # what assetrag's ingest now does at its end
        from milvus_lite.server_manager import server_manager_instance

        _, lite_db, _ = server_manager_instance._servers[os.path.abspath(str(db))]
        lite_db.get_collection("bench")._wait_for_bg()  # the segment indexes Lite builds in the background

    res = measure_store(store, np.ascontiguousarray(x), q, truth, wait_index, lambda m: print(m, flush=True))
    res["rss_mb"] = rss_mb() - base
    store.close()
    res["disk_mb"] = du_mb(db)
    Path(args.out).write_text(json.dumps(res))


def run_lite(n: int, files: dict, workdir: Path, log) -> dict:
    out = workdir / f"lite-{n}.json"
    cmd = [sys.executable, __file__, "--lite-child", "--n", str(n), "--workdir", str(workdir), "--out", str(out)]
    cmd += ["--x", files["x"], "--q", files["q"], "--truth", files["truth"]]
    subprocess.run(cmd, check=True)
    shutil.rmtree(workdir / f"lite-{n}.db", ignore_errors=True)
    return json.loads(out.read_text())


# -- Milvus server --------------------------------------------------------------------------------------


class Server:
    def __init__(self, data: Path) -> None:
        from milvus_server import GRPC_PORT, prepare_data_dir, server_command, wait_healthy

        self.data = data
        prepare_data_dir(data)
        log = open(data / "server.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(server_command(data, []), stdout=log, stderr=log, start_new_session=True)
        wait_healthy(self.proc, 240)
        self.uri = f"http://127.0.0.1:{GRPC_PORT}"

    def pids(self) -> list[int]:
        out = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if os.getpgid(int(d.name)) == self.proc.pid:
                        out.append(int(d.name))
                except ProcessLookupError:
                    pass
        return out

    def rss_mb(self) -> float:
        return sum(rss_mb(p) for p in self.pids())

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def run_server(server: Server, n: int, x, q: np.ndarray, truth: np.ndarray, log, keep: bool = False) -> dict:
    from assetrag.store import Store

    store = Store(server.uri, f"bench_{n}")
    reuse = keep and store.exists() and store.count() == n  # kept from an earlier run: queries only
    if not reuse:
        store.drop()
    base_rss, base_disk = server.rss_mb(), du_mb(server.data / "data")

    res = measure_store(store, x, q, truth, lambda: wait_server_indexed(store, n), log, insert=not reuse)
    res["rss_mb"] = None if reuse else server.rss_mb() - base_rss
    res["disk_mb"] = None if reuse else du_mb(server.data / "data") - base_disk
    res["rss_total_mb"] = server.rss_mb()
    if not keep:
        store.drop()
    store.close()
    return res


# -- numpy ----------------------------------------------------------------------------------------------


def run_numpy(x: np.ndarray, q: np.ndarray) -> dict:
    lat = []
    for v in q:
        t = time.perf_counter()
        sims = x @ v
        top = np.argpartition(-sims, K)[:K]
        top[np.argsort(-sims[top])]
        lat.append(time.perf_counter() - t)
    t = time.perf_counter()
    for s in range(0, len(q), 100):
        sims = q[s : s + 100] @ x.T
        np.argpartition(-sims, K, axis=1)[:, :K]
    batch = len(q) / (time.perf_counter() - t)
    return {
        "insert_rows_s": None,
        "index_s": 0.0,
        "p50_ms": percentile_ms(lat, 50),
        "p95_ms": percentile_ms(lat, 95),
        "qps_1": len(q) / sum(lat),
        "qps_batch100": batch,
        "recall": 1.0,
        "rss_mb": x.nbytes / 2**20,
        "disk_mb": None,
    }


# -- main -------------------------------------------------------------------------------------------------


def fmt(v: object, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--lite-max", type=int, default=300_000)
    ap.add_argument("--backends", default="numpy,lite,server")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument(
        "--server-data",
        type=Path,
        help="keep the server's data here (and its collections): a later run with the same DIR re-measures "
        "the queries without inserting and indexing again",
    )
    ap.add_argument("--lite-child", action="store_true", help=argparse.SUPPRESS)
    for name in ("n", "x", "q", "truth", "workdir", "out"):
        ap.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.lite_child:
        args.n = int(args.n)
        lite_child(args)
        return

    backends = args.backends.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    if "server" in backends:
        from milvus_server import enter_private_netns

        enter_private_netns()  # this process, its children and the server see only loopback

    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory(prefix="assetrag-scale-") as tmp:
        work = Path(tmp)
        server = None
        if "server" in backends:
            data = args.server_data or work / "milvus"
            data.mkdir(parents=True, exist_ok=True)
            log("starting Milvus standalone 2.3.5")
            server = Server(data)
        try:
            for n in sizes:
                log(f"generating {n:,} × {DIM} clustered vectors and {args.queries} queries")
                x, q = make_data(n, args.queries, seed=n)
                truth = exact_top_k(x, q)
                files = {"x": str(work / "x.npy"), "q": str(work / "q.npy"), "truth": str(work / "truth.npy")}
                for key, arr in (("x", x), ("q", q), ("truth", truth)):
                    np.save(files[key], arr)
                if "numpy" in backends:
                    results[("numpy", n)] = run_numpy(x, q)
                    log(f"numpy {n:,}: {results[('numpy', n)]}")
                if server is not None:
                    log(f"Milvus server {n:,}")
                    results[("server", n)] = run_server(server, n, x, q, truth, log, keep=bool(args.server_data))
                    log(f"Milvus server {n:,}: {results[('server', n)]}")
                if "lite" in backends and n <= args.lite_max:
                    del x  # the child maps it from disk
                    log(f"Milvus Lite {n:,}")
                    results[("lite", n)] = run_lite(n, files, work, log)
                    log(f"Milvus Lite {n:,}: {results[('lite', n)]}")
        finally:
            if server is not None:
                server.stop()

    # merge with the figures of earlier runs (a long backend/size can be run on its own and still be in the table)
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for (b, n), r in results.items():  # a queries-only re-run keeps the earlier insert/index/memory figures
        fresh = {k: v for k, v in r.items() if v is not None}
        stored[f"{b}:{n}"] = {**stored.get(f"{b}:{n}", {}), **fresh}
    RESULTS.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    names = {"numpy": "exact numpy", "lite": "Milvus Lite 3.2.2 (HNSW)", "server": "Milvus 2.3.5 server (HNSW)"}
    all_sizes = sorted({int(key.split(":")[1]) for key in stored})
    rows = []
    for backend in ("server", "lite", "numpy"):
        for n in all_sizes:
            r = stored.get(f"{backend}:{n}")
            if r is None:
                rows.append([names[backend], f"{n:,}", "not run", *["—"] * 10])
                continue
            rows.append(
                [
                    names[backend],
                    f"{n:,}",
                    fmt(r.get("insert_rows_s"), ",.0f"),
                    fmt(r.get("index_s"), ".1f"),
                    fmt(r.get("search_unflushed_ms"), ",.0f"),
                    fmt(r["p50_ms"], ".1f"),
                    fmt(r["p95_ms"], ".1f"),
                    fmt(r.get("p50_id_only_ms"), ".1f"),
                    fmt(r["qps_1"], ",.0f"),
                    fmt(r["qps_batch100"], ",.0f"),
                    fmt(r["recall"], ".4f"),
                    fmt(r.get("rss_mb"), ",.0f"),
                    fmt(r.get("disk_mb"), ",.0f"),
                ]
            )
    from report import table, write_section

    headers = [
        "backend",
        "stored",
        "insert rows/s",
        "index build s",
        "search before flush ms",
        "p50 ms",
        "p95 ms",
        "p50 ms, id only",
        "QPS (1 query/call)",
        "QPS (100/call)",
        "recall@10",
        "RSS MB",
        "disk MB",
    ]
    note = (
        f"Synthetic clustered vectors ({DIM}-d; n/{PER_CONCEPT} concepts of ~{PER_CONCEPT} near-alike vectors each), "
        f"{args.queries} queries near concept centres, k={K}; whole assetrag rows through `Store`; HNSW M=16, "
        "efConstruction=200, ef=64 on both Milvus backends. 'index build s': from the last insert until the index "
        "covers every row (Lite: flush + its background segment builds; server: flush + index build + a 3 s "
        "load allowance). 'search before flush': a query right after inserting. RSS: growth of the Lite "
        "process / of the server's process group; numpy: the matrix. One run per row, on a machine shared "
        "with other jobs; raw figures in docs/benchmarks-scale.json."
    )
    body = note + "\n\n" + table(headers, rows)
    write_section("scale", "The store at 10k / 100k / 1M vectors (benchmarks/scale.py)", body)


if __name__ == "__main__":
    main()
