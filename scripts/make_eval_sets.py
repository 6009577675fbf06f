#!/usr/bin/env python3
"""Build the harder labelled sets of docs/quality.md (issue #13), and camera-roll copies of any set.

    python scripts/make_eval_sets.py emoji DEST         # emoji × CLDR names, English and French queries
    python scripts/make_eval_sets.py openclipart DEST   # a held-out slice of openclipart, English titles
    python scripts/make_eval_sets.py hashed SET_DIR QUERIES... --dest DIR   # the same set, names = content hashes
    python scripts/make_eval_sets.py all DEST           # the first two, the sample library, and hashed copies
    python scripts/make_eval_sets.py translate QUERIES... # French queries → English word by word (FreeDict)

**translate** writes `<name>.dict-en.jsonl` beside each French query file: every word looked up in FreeDict
French–English (Debian `dict-freedict-fra-eng`; first sense; plural and elision folded; French function words
dropped; unknown words kept) — "translate by dictionary, then encode as English" (`assetrag eval --lang en`),
measured against the multilingual maps in docs/quality.md. FreeDict is GPL: it is used here, not shipped.

**emoji** (`DEST/emoji/`, `emoji-en.jsonl`, `emoji-fr.jsonl`): the emoji of `emoji-datasource-google` (npm, the
images scripts/train_head.py trains on) that are in the alignment head's *test* split (`Item.split`, never
trained on by the head) and have an annotation in Unicode CLDR (Debian `unicode-cldr-core`). The query is the
CLDR text-to-speech name in English (`en.xml`) or French (`fr.xml`), written by CLDR's translators — not the
Unicode character name the head and the multilingual map v1 were trained on. Files are named like a designer
would: `<category>/<first short name>.png` (`smileys-emotion/grinning.png`), which differ from the query
words ("grinning face") more often than not.

**openclipart** (`DEST/openclipart/`, `openclipart-en.jsonl`): 400 drawings of the head's test split, drawn with
a seed other than `train_head.py export-eval`'s, in their archive folders and names; the query is the
drawing's cleaned title (the archive's names often repeat it: the lexical best case).

**hashed**: copies every image a query file names (and every other image under the set) to one flat folder
`DCIM/` with the sha256 of its bytes as its name — a camera roll without words — and rewrites the query files.

Each set is split by a hash of the query's relevant path into a **tune** half and a **held-out** half
(`"part"` in every query line; `tune-*.jsonl` / `heldout-*.jsonl` beside the full files). Whatever is chosen
by measuring (the multilingual map's data and penalty, the weak-match cut-offs) looks at the tune half only;
docs/quality.md reports both.

Needs: `apt-get install unicode-cldr-core openclipart-png openclipart-svg`;
`npm install --prefix ~/.cache/assetrag/train emoji-datasource-google@16.0.0`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "src"))

CLDR = Path("/usr/share/unicode/cldr/common/annotations")
SEED = 1313
OPENCLIPART_N = 400
TUNE_SHARE = 0.5


def cldr_names(lang: str) -> dict[str, str]:
    """Emoji (the characters) → CLDR text-to-speech name in `lang` (`en`, `fr`, …)."""
    path = CLDR / f"{lang}.xml"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: apt-get install -y unicode-cldr-core")
    out: dict[str, str] = {}
    for node in ET.parse(path).getroot().iter("annotation"):
        if node.get("type") == "tts" and node.text:
            out[node.get("cp", "")] = node.text.strip()
    return out


def cldr_keywords(lang: str) -> dict[str, list[str]]:
    """Emoji → CLDR keywords in `lang` (the non-tts annotation, `|`-separated)."""
    out: dict[str, list[str]] = {}
    for node in ET.parse(CLDR / f"{lang}.xml").getroot().iter("annotation"):
        if node.get("type") != "tts" and node.text:
            out[node.get("cp", "")] = [k.strip() for k in node.text.split("|") if k.strip()]
    return out


def part_of(key: str) -> str:
    """'tune' or 'heldout', by a hash of the relevant path (stable across runs and name variants)."""
    h = int(hashlib.sha256(f"part:{key}".encode()).hexdigest()[:8], 16)
    return "tune" if (h % 1000) / 1000 < TUNE_SHARE else "heldout"


def _char(unified: str) -> str:
    return "".join(chr(int(cp, 16)) for cp in unified.split("-"))


def _write(dest: Path, name: str, rows: list[dict]) -> None:
    for part in ("", "tune-", "heldout-"):
        keep = [r for r in rows if not part or r["part"] == part[:-1]]
        with (dest / f"{part}{name}").open("w", encoding="utf-8") as fh:
            for r in keep:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def make_emoji(dest: Path) -> None:
    import train_head

    en, fr = cldr_names("en"), cldr_names("fr")
    data = json.loads((train_head.EMOJI_ROOT / "emoji.json").read_text()) if train_head.EMOJI_ROOT.exists() else None
    if data is None:
        raise SystemExit(f"emoji-datasource-google is not at {train_head.EMOJI_ROOT}: see the module doc")
    by_image = {e["image"]: e for e in data}
    items, _ = train_head.emoji_items()
    root = dest / "emoji"
    if root.exists():
        shutil.rmtree(root)
    rows_en, rows_fr, used = [], [], set()
    for it in items:
        if it.split != "test" or it.category in train_head.SKIP_EMOJI_CATEGORIES:
            continue
        e = by_image[Path(it.key).name]
        ch = _char(e["unified"])
        alt = _char(e["non_qualified"]) if e.get("non_qualified") else ch
        name_en, name_fr = en.get(ch) or en.get(alt), fr.get(ch) or fr.get(alt)
        if not (name_en and name_fr):
            continue
        folder = re.sub(r"[^a-z]+", "-", it.category.lower()).strip("-") or "misc"
        short = re.sub(r"[^a-z0-9]+", "-", (e.get("short_name") or e["unified"]).lower()).strip("-")
        rel = f"{folder}/{short}.png"
        if rel in used:
            continue
        used.add(rel)
        (root / folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(it.path, root / rel)
        part = part_of(f"emoji/{e['unified']}")
        rows_en.append({"query": name_en, "relevant": [rel], "part": part})
        rows_fr.append({"query": name_fr, "relevant": [rel], "part": part})
    _write(dest, "emoji-en.jsonl", rows_en)
    _write(dest, "emoji-fr.jsonl", rows_fr)
    tune = sum(r["part"] == "tune" for r in rows_en)
    print(f"emoji: {len(rows_en)} images and queries (en, fr; {tune} tune, {len(rows_en) - tune} held out) → {root}")


def make_openclipart(dest: Path) -> None:
    import train_head

    items, _ = train_head.openclipart_items()
    test = [it for it in items if it.split == "test"]
    rng = random.Random(SEED)
    rng.shuffle(test)
    root = dest / "openclipart"
    if root.exists():
        shutil.rmtree(root)
    queries: dict[str, list[str]] = {}
    for it in sorted(test[:OPENCLIPART_N], key=lambda i: i.key):
        rel = it.key
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(it.path, root / rel)
        queries.setdefault(it.title, []).append(rel)
    rows = [
        {"query": q, "relevant": rel, "part": part_of(f"openclipart/{rel[0]}")} for q, rel in sorted(queries.items())
    ]
    _write(dest, "openclipart-en.jsonl", rows)
    print(f"openclipart: {OPENCLIPART_N} images, {len(rows)} queries → {root}")


def make_hashed(set_dir: Path, query_files: list[Path], dest: Path) -> None:
    """Copy `set_dir`'s images to `dest/DCIM/<sha256>.<ext>` and rewrite the query files beside `dest`."""
    target = dest / "DCIM"
    if dest.exists():
        shutil.rmtree(dest)
    target.mkdir(parents=True)
    new: dict[str, str] = {}
    for path in sorted(p for p in set_dir.rglob("*") if p.is_file() and p.suffix.lower() in (".png", ".jpg", ".jpeg")):
        name = f"{hashlib.sha256(path.read_bytes()).hexdigest()}{path.suffix.lower()}"
        shutil.copyfile(path, target / name)
        new[path.relative_to(set_dir).as_posix()] = f"DCIM/{name}"
    for qf in query_files:
        out = dest.parent / f"{dest.name}-{qf.name}"
        with out.open("w", encoding="utf-8") as fh:
            for line in qf.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                rel = row["relevant"] if isinstance(row["relevant"], list) else [row["relevant"]]
                row["relevant"] = sorted({new[r] for r in rel})
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{qf} → {out}")
    print(f"{len(new)} images → {target} (content-hash names)")


FREEDICT = Path("/usr/share/dictd/freedict-fra-eng")
FR_STOP = set(
    re.findall(
        r"\w+", "le la les l un une des du de d à au aux et avec en sur dans pour sans sous par ou son sa ses ce cette"
    )
)


def freedict() -> dict[str, str]:
    """French headword (lower case) → first English translation."""
    import gzip

    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def b64(text: str) -> int:
        n = 0
        for ch in text:
            n = n * 64 + alphabet.index(ch)
        return n

    if not FREEDICT.with_suffix(".index").exists():
        raise SystemExit("FreeDict is missing: apt-get install -y dict-freedict-fra-eng")
    raw = gzip.decompress(FREEDICT.with_suffix(".dict.dz").read_bytes())
    out: dict[str, str] = {}
    for line in FREEDICT.with_suffix(".index").read_text(encoding="utf-8").splitlines():
        word, off, size = line.split("\t")[:3]
        entry = raw[b64(off) : b64(off) + b64(size)].decode("utf-8", "replace").strip().splitlines()
        if len(entry) >= 2 and not word.startswith("00"):
            en = re.sub(r"\s*\([^)]*\)|^\d+\.\s*", "", entry[1]).split(",")[0].split(";")[0].strip()
            out.setdefault(word.lower().strip(), en)
    return out


def translate(text: str, table: dict[str, str]) -> str:
    words = re.findall(r"[^\W\d_]+|\d+", text.lower().replace("’", "'"))
    out = []
    for w in words:
        if w in FR_STOP:
            continue
        for cand in (w, w[:-1] if w.endswith(("s", "x")) else w, w[:-2] + "al" if w.endswith("aux") else w):
            if cand in table:
                out.append(table[cand])
                break
        else:
            out.append(w)
    return " ".join(out) or text


def make_translated(files: list[Path]) -> None:
    table = freedict()
    for f in files:
        dest = f.with_name(f.stem + ".dict-en.jsonl")
        with dest.open("w", encoding="utf-8") as fh:
            for line in f.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    row["french"], row["query"] = row["query"], translate(row["query"], table)
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{f} → {dest}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["emoji", "openclipart", "hashed", "all", "translate"])
    ap.add_argument("paths", nargs="*", type=Path, help="DEST, or for hashed: SET_DIR QUERY_FILE...")
    ap.add_argument("--dest", type=Path, help="hashed: where the copy goes (default SET_DIR-hashed)")
    args = ap.parse_args()
    if args.command == "translate":
        make_translated(args.paths)
        return
    if args.command == "hashed":
        if len(args.paths) < 2:
            ap.error("hashed needs SET_DIR and at least one query file")
        set_dir = args.paths[0]
        make_hashed(set_dir, args.paths[1:], args.dest or set_dir.with_name(set_dir.name + "-hashed"))
        return
    dest = args.paths[0] if args.paths else REPO / "out" / "evalsets"
    dest.mkdir(parents=True, exist_ok=True)
    if args.command in ("emoji", "all"):
        make_emoji(dest)
    if args.command in ("openclipart", "all"):
        make_openclipart(dest)
    if args.command == "all":
        samples = REPO / "samples"
        shutil.copytree(samples / "library", dest / "samples", dirs_exist_ok=True)
        for lang in ("en", "fr"):
            src = samples / ("queries.jsonl" if lang == "en" else f"queries.{lang}.jsonl")
            rows = [json.loads(x) for x in src.read_text(encoding="utf-8").splitlines() if x.strip()]
            for r in rows:
                r["part"] = "heldout"  # hand-labelled long before this issue; nothing is tuned on it
            _write(dest, f"samples-{lang}.jsonl", rows)
        for name, files in (
            ("emoji", ["emoji-en.jsonl", "emoji-fr.jsonl"]),
            ("openclipart", ["openclipart-en.jsonl"]),
            ("samples", ["samples-en.jsonl", "samples-fr.jsonl"]),
        ):
            make_hashed(dest / name, [dest / f for f in files], dest / f"{name}-hashed")


if __name__ == "__main__":
    main()
