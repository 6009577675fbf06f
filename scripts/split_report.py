#!/usr/bin/env python3
"""R@10 / MRR of an `assetrag eval --json` report (scripts/measure_sets.sh writes them) per half of the query file.

    python scripts/split_report.py out/ev/emoji-fr.json out/evalsets/emoji-fr.jsonl

Queries are matched to their line of the query file in order (`eval` keeps it); prints one line per
configuration: all, tune, held-out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    report, queries = Path(sys.argv[1]), Path(sys.argv[2])
    lines = queries.read_text(encoding="utf-8").splitlines()
    parts = [json.loads(x).get("part", "heldout") for x in lines if x.strip()]
    for rep in json.loads(report.read_text(encoding="utf-8")):
        rows = rep["queries"]
        assert len(rows) == len(parts), (len(rows), len(parts))
        cfg = rep["config"]
        cells = []
        for want in ("all", "tune", "heldout"):
            sel = [q for q, p in zip(rows, parts, strict=True) if want in ("all", p) and q["relevant"]]
            if not sel:
                cells.append(f"{want} -")
                continue
            r10 = sum(q["metrics"]["recall@10"] for q in sel) / len(sel)
            mrr = sum(q["metrics"]["mrr"] for q in sel) / len(sel)
            cells.append(f"{want}({len(sel)}) {r10:.3f} / {mrr:.3f}")
        model = "v2" if "v2" in cfg["model"] else "v1"
        print(f"{report.name:34} {model} {cfg['mode']:6} " + "   ".join(cells))


if __name__ == "__main__":
    main()
