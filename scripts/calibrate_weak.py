#!/usr/bin/env python3
"""Calibrate the "no good match" cut-off per model (`assetrag.embedding.calibration.WEAK_BELOW`).

For each labelled query of the given sets (`--part tune`: the tune halves only), the top 10 of a vector search
with its cosine and whether it is relevant. The cut-off is the highest cosine c such that, among the collected
hits scoring under c, at most `PRECISION` (2 %) are relevant: under it a hit is almost never the one wanted.
The report gives, per model, the cut-off and — on the other part — the precision above and below it and the share
of relevant hits it would mark weak.

    python scripts/calibrate_weak.py out/ev out/evalsets    # libraries made by scripts/measure_sets.sh

Libraries: `<OUT>/<set>.db` (library `<set>` for offline:v1, `<set>_offline_v2` for offline:v2), as
scripts/measure_sets.sh leaves them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from assetrag import Library  # noqa: E402
from assetrag.embedding import load_embedder  # noqa: E402
from assetrag.embedding.calibration import PRECISION  # noqa: E402
from assetrag.evaluate import _Catalogue, load_queries  # noqa: E402

SETS = {"emoji": ["emoji-en", "emoji-fr"], "openclipart": ["openclipart-en"]}
MODELS = {"offline:v1": "", "offline:v2": "_offline_v2"}


def collect(out: Path, sets: Path, model: str, part: str, embedder) -> tuple[np.ndarray, np.ndarray]:
    scores, relevant = [], []
    for name, files in SETS.items():
        library = name + MODELS[model]
        with Library(str(out / f"{name}.db"), library=library, embedder=embedder) as lib:
            cat = _Catalogue(lib)
            for f in files:
                rows = [json.loads(x) for x in (sets / f"{f}.jsonl").read_text().splitlines() if x.strip()]
                keep = {r["query"] for r in rows if r.get("part") == part}
                for q in load_queries(sets / f"{f}.jsonl", root=sets / name):
                    if q.text not in keep:
                        continue
                    ids, _ = cat.relevant(q, sets / name)
                    for h in lib.search(q.text, k=10, mode="vector"):
                        scores.append(h.score)
                        relevant.append(h.id in ids)
    return np.asarray(scores), np.asarray(relevant)


def cutoff(scores: np.ndarray, relevant: np.ndarray, precision: float = PRECISION) -> float:
    order = np.argsort(scores)
    s, r = scores[order], relevant[order].astype(float)
    below = np.cumsum(r) / np.arange(1, len(r) + 1)  # precision of the hits scoring ≤ s[i]
    ok = np.nonzero(below <= precision)[0]
    return float(np.floor(s[ok[-1]] * 100) / 100) if len(ok) else float(s.min())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("sets", type=Path)
    args = ap.parse_args()
    for model in MODELS:
        emb = load_embedder(model, device="cpu", runtime="onnx")
        s, r = collect(args.out, args.sets, model, "tune", emb)
        c = cutoff(s, r)
        hs, hr = collect(args.out, args.sets, model, "heldout", emb)
        weak = hs < c
        print(
            json.dumps(
                {
                    "model": emb.name,
                    "cutoff": c,
                    "tune": {"hits": len(s), "relevant": int(r.sum())},
                    "heldout": {
                        "hits": len(hs),
                        "precision_above": round(float(hr[~weak].mean()), 4) if (~weak).any() else None,
                        "precision_below": round(float(hr[weak].mean()), 4) if weak.any() else None,
                        "share_marked_weak": round(float(weak.mean()), 4),
                        "relevant_marked_weak": round(float((hr & weak).sum() / max(1, hr.sum())), 4),
                    },
                }
            )
        )


if __name__ == "__main__":
    main()
