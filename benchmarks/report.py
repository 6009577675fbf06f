"""Shared by the benchmarks: print a table and write it into docs/benchmarks.md under its own heading."""

from __future__ import annotations

import os
import platform
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nWritten by the scripts in `benchmarks/`; each section is replaced when its script runs.\n"


def machine() -> str:
    try:
        import torch

        dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except Exception:
        dev = "no torch"
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, {dev}, Python {platform.python_version()}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def write_section(key: str, title: str, body: str) -> None:
    """Replace (or append) the section `key` of docs/benchmarks.md and print it."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = f"<!-- {key}:start -->\n## {title}\n\n_{stamp} · {machine()}_\n\n{body.strip()}\n<!-- {key}:end -->\n"
    print(section)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else HEADER
    pattern = re.compile(rf"<!-- {re.escape(key)}:start -->.*?<!-- {re.escape(key)}:end -->\n", re.S)
    text = pattern.sub(lambda _m: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    DOC.write_text(text)


def synthetic_rows(vecs: np.ndarray, start: int) -> list[dict]:
    """Whole assetrag rows (every field, realistic sizes) around synthetic vectors, ids from `start`."""
    return [
        {
            "id": f"{start + i:064x}",
            "vector": v.tolist(),
            "path": f"/library/{(start + i) % 97}/{start + i}.jpg",
            "paths": [f"/library/{(start + i) % 97}/{start + i}.jpg"],
            "mtimes": [1_700_000_000_000_000_000],
            "filename": f"{start + i}.jpg",
            "size": 250_000,
            "mtime": 1_700_000_000_000_000_000,
            "width": 1024,
            "height": 768,
            "tags": [f"folder{(start + i) % 97}"],
            "collection": f"c{(start + i) % 10}",
            "source": "ingested",
            "lineage": {},
            "metadata": {},
        }
        for i, v in enumerate(vecs)
    ]


def percentile_ms(xs: list[float], p: float) -> float:
    """The p-th percentile of durations in seconds, in milliseconds."""
    return float(np.percentile(np.asarray(xs) * 1000, p))


def wait_server_indexed(store, n: int, timeout: float | None = None) -> None:
    """Until a Milvus server's vector index covers all `n` rows of `store` (Milvus Lite: `Store.flush` already
    waits), then 3 s for the query node to load the sealed, indexed segments. `timeout`: seconds, then an error
    (None: no limit — a 1M-row build takes most of an hour)."""
    store.client.flush(store.name)  # seal the growing segments so that they get indexed (Store.flush: Lite only)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        store._built = None
        info = store.index_info()
        if int(info.get("indexed_rows", 0)) >= n and int(info.get("pending_index_rows", 0)) == 0:
            break
        if deadline is not None and time.monotonic() > deadline:
            raise RuntimeError(f"the server's index did not cover {n} rows in {timeout:.0f} s: {info}")
        time.sleep(0.5)
    time.sleep(3.0)
