#!/usr/bin/env python3
"""Calibrate the "no good match" cut-off per model (`assetrag.embedding.calibration.WEAK_BELOW`).

For each labelled query of the tune halves, the top 10 of a vector search with its cosine and whether it is
relevant. The cut-off is the cosine above which `KEEP` (95 %) of the relevant hits score: under it lie 5 % of
the right answers and most of the wrong ones. (A precision criterion — "the cosine under which fewer than 2 % of
hits are relevant" — was tried first and fails for offline:v1, whose top-10 hits are relevant 1.4 % of the time
overall: it marks everything weak.) The report gives, per model, the cut-off and, on the held-out halves, the
precision above and below it, the share of hits marked weak and the share of relevant hits marked weak.

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
from assetrag.embedding.calibration import KEEP  # noqa: E402
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


def cutoff(scores: np.ndarray, relevant: np.ndarray, keep: float = KEEP) -> float:
    """The cosine (rounded down to 0.01) above which `keep` of the relevant top-10 hits score."""
    return float(np.floor(np.quantile(scores[relevant], 1.0 - keep) * 100) / 100)


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
