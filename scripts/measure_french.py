#!/usr/bin/env python3
"""French queries, one way against another (docs/quality.md, "French closer to English").

    python scripts/measure_french.py QUERIES --uri out/ev/emoji.db --library emoji --root out/evalsets/emoji \\
        [--part tune|heldout] [--variant NAME ...] [--models offline:v1 offline:v2] [--modes vector hybrid]

Runs `assetrag.evaluate.evaluate` on libraries `scripts/measure_sets.sh` already built (the v1 library is
`--library`, the v2 one `<library>_offline_v2`, as `assetrag eval --compare` names them), once per variant —
the environment switches of `assetrag.embedding.french` / `multilingual`:

    before      the function-word check, USE → map alone, lexical side on the French words (main before this work)
    check       + the French word check (FreeDict) routes more French queries to the multilingual side
    lexical     + the lexical side also searches the translation (the chosen senses: ASSETRAG_FRENCH_LEXICAL=one)
    dict        MiniLM(translation) alone for the vector (senses chosen by the map's vector)
    both        MiniLM(translation) averaged with USE → map (weight ASSETRAG_FRENCH_WEIGHT, default 0.5)
    both-0.3 …  the same with another weight
    cldr        both, with the CLDR table's words first (ASSETRAG_FRENCH_CLDR=1; the variants above have it off)
    cldr-replace  the CLDR table's senses instead of FreeDict's for the words it knows
    cldr-dict   MiniLM(translation) alone, with the CLDR table
    cldr-all    + the lexical side also searches the senses not chosen (ASSETRAG_FRENCH_LEXICAL=all): the default
    cldr-alone  the default without FreeDict (ASSETRAG_FREEDICT pointed at nothing); none-alone: neither

Prints recall@10 / MRR per variant × model × mode and writes them as JSON (`--out`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

VARIANTS = {
    "before": {"ASSETRAG_FRENCH_CHECK": "0", "ASSETRAG_FRENCH": "map", "ASSETRAG_FRENCH_LEXICAL": "0"},
    "check": {"ASSETRAG_FRENCH_CHECK": "1", "ASSETRAG_FRENCH": "map", "ASSETRAG_FRENCH_LEXICAL": "0"},
    "lexical": {"ASSETRAG_FRENCH_CHECK": "1", "ASSETRAG_FRENCH": "map", "ASSETRAG_FRENCH_LEXICAL": "one"},
    "dict": {"ASSETRAG_FRENCH_CHECK": "1", "ASSETRAG_FRENCH": "dict", "ASSETRAG_FRENCH_LEXICAL": "one"},
    "both": {"ASSETRAG_FRENCH_CHECK": "1", "ASSETRAG_FRENCH": "both", "ASSETRAG_FRENCH_LEXICAL": "one"},
    "cldr": {"ASSETRAG_FRENCH_CHECK": "1", "ASSETRAG_FRENCH": "both", "ASSETRAG_FRENCH_LEXICAL": "one",
             "ASSETRAG_FRENCH_CLDR": "1"},
    "cldr-replace": {"ASSETRAG_FRENCH_CHECK": "1", "ASSETRAG_FRENCH": "both", "ASSETRAG_FRENCH_LEXICAL": "one",
                     "ASSETRAG_FRENCH_CLDR": "replace"},
    "cldr-dict": {"ASSETRAG_FRENCH_CHECK": "1", "ASSETRAG_FRENCH": "dict", "ASSETRAG_FRENCH_LEXICAL": "one",
                  "ASSETRAG_FRENCH_CLDR": "1"},
    "cldr-all": {"ASSETRAG_FRENCH_CHECK": "1", "ASSETRAG_FRENCH": "both", "ASSETRAG_FRENCH_LEXICAL": "all",
                 "ASSETRAG_FRENCH_CLDR": "1"},
    "cldr-replace-all": {"ASSETRAG_FRENCH_CHECK": "1", "ASSETRAG_FRENCH": "both", "ASSETRAG_FRENCH_LEXICAL": "all",
                         "ASSETRAG_FRENCH_CLDR": "replace"},
    # the CLDR table without FreeDict (what a user without the GPL package gets)
    "cldr-alone": {"ASSETRAG_FRENCH_CHECK": "1", "ASSETRAG_FRENCH": "both", "ASSETRAG_FRENCH_LEXICAL": "all",
                   "ASSETRAG_FRENCH_CLDR": "1", "ASSETRAG_FREEDICT": "/nonexistent"},
    "none-alone": {"ASSETRAG_FRENCH_CHECK": "1", "ASSETRAG_FRENCH": "both", "ASSETRAG_FRENCH_LEXICAL": "all",
                   "ASSETRAG_FRENCH_CLDR": "0", "ASSETRAG_FREEDICT": "/nonexistent"},
}  # fmt: skip
# every variant sets these (the ones it does not name to their default)
DEFAULTS = {"ASSETRAG_FRENCH_WEIGHT": "", "ASSETRAG_FRENCH_CLDR": "0", "ASSETRAG_FREEDICT": ""}


def variant_env(name: str) -> dict[str, str]:
    for base in ("both", "cldr"):
        if name.startswith(f"{base}-") and name[len(base) + 1 :][:1].isdigit():
            return {**DEFAULTS, **VARIANTS[base], "ASSETRAG_FRENCH_WEIGHT": name.split("-", 1)[1]}
    return {**DEFAULTS, **VARIANTS[name]}


def main() -> None:
    from assetrag.config import Settings
    from assetrag.embedding import french
    from assetrag.evaluate import evaluate, load_queries
    from assetrag.library import Library

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("queries", type=Path)
    ap.add_argument("--uri", required=True)
    ap.add_argument("--library", required=True)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--part", choices=["tune", "heldout"], help="only the query lines of this half")
    ap.add_argument("--variant", nargs="+", default=["before", "check", "lexical", "dict", "both"])
    ap.add_argument("--models", nargs="+", default=["offline:v1", "offline:v2"])
    ap.add_argument("--modes", nargs="+", default=["vector", "hybrid"])
    ap.add_argument("--lang", default="auto")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    lines = [json.loads(x) for x in args.queries.read_text(encoding="utf-8").splitlines() if x.strip()]
    keep = {i for i, row in enumerate(lines) if not args.part or row.get("part") == args.part}
    queries = [q for i, q in enumerate(load_queries(args.queries, args.root)) if i in keep]
    results = []
    base = Settings.from_env()
    for model in args.models:
        slug = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in model).strip("_")[:40]
        library = args.library if model == "offline:v1" else f"{args.library}_{slug}"
        settings = replace(base, uri=args.uri, library=library, model=model, runtime="onnx")
        with Library(settings=settings) as lib:
            for variant in args.variant:
                os.environ.update(variant_env(variant))
                french.reset()  # the lexicon and its translations are read under the variant's switches
                for mode in args.modes:
                    rep = evaluate(lib, queries, root=args.root, mode=mode, lang=args.lang)
                    m = rep.overall
                    row = {
                        "queries": str(args.queries),
                        "part": args.part or "all",
                        "n": len(queries),
                        "model": model,
                        "mode": mode,
                        "variant": variant,
                        "r10": round(m["recall@10"], 3),
                        "mrr": round(m["mrr"], 3),
                        "seconds": round(rep.seconds, 1),
                    }
                    results.append(row)
                    print(
                        f"{args.queries.name:28} {row['part']:7} {model:10} {mode:6} {variant:9} "
                        f"R@10 {row['r10']:.3f}  MRR {row['mrr']:.3f}  ({row['seconds']} s)",
                        flush=True,
                    )
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
