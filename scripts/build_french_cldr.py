#!/usr/bin/env python3
"""Build the French → English word table learned from Unicode CLDR emoji annotations (docs/quality.md, "French
closer to English"): `src/assetrag/data/french-cldr.tsv`, read by `assetrag.embedding.french`.

    python scripts/build_french_cldr.py            # write the table (needs unicode-cldr-core and the emoji images)
    python scripts/build_french_cldr.py --check    # rebuild in memory, exit 1 if it differs from the shipped one

**Data.** CLDR's French and English emoji annotations (Debian `unicode-cldr-core`,
`common/annotations/{fr,en}.xml`): per emoji a text-to-speech name and a keyword list in each language, written by
CLDR's translators. Every emoji of the alignment head's **test split** is left out — the same definition as
scripts/train_multilingual.py (`train_head.emoji_items()`, `Item.split == "test"`, by `unified` and
`non_qualified` code points, variation selectors ignored): the emoji evaluation set of scripts/make_eval_sets.py,
tune and held-out halves alike, is drawn from that split. The left-out code points are written into the table's
header, so tests can rebuild it from CLDR alone and check that nothing else was left out or added.

**Alignment.** Each remaining emoji gives two "sentences" per language: its tts name, and its tts name plus
keywords. French and English words (lower case, elided articles split off, function words dropped) are aligned
with IBM Model 1 (EM, `ITERATIONS` rounds, French → English with a null word). A French word keeps the English words
whose translation probability is at least `MIN_PROB` and that were seen with it in at least `MIN_COUNT` emoji
(best first, at most `MAX_SENSES`). The tts names with two or more words are also kept whole as phrases
("visage souriant" → "smiling face"), unless they equal a left-out emoji's French name. A word that follows the
first word of French names while its English word comes before the first word's ("visage rieur" ↔ "smiling
face") in at least two names more than not is marked as an adjective (word order in the translation).

**Licence.** CLDR is under the Unicode licence (Unicode-DFS-2016), which allows redistribution of derived data
with its notice: the table carries it in its header. (FreeDict, GPL, is never read here.)
"""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "src"))

from assetrag.embedding.french import CLDR_TABLE, tokens  # noqa: E402

CLDR = Path("/usr/share/unicode/cldr/common/annotations")
ITERATIONS = 12
MIN_PROB = 0.3
MIN_COUNT = 2
MIN_REVERSE = 0.0  # and p(French word | English word) of the reverse model at least this (0: not asked)
MAX_SENSES = 3
NOTICE = (
    "Derived from Unicode CLDR emoji annotations (common/annotations/fr.xml, en.xml, CLDR {version}). "
    "Copyright © 1991-2022 Unicode, Inc. All rights reserved. Distributed under the Terms of Use in "
    "https://www.unicode.org/copyright.html (Unicode-DFS-2016: permission is granted to deal in the Data Files "
    "without restriction, provided this copyright and permission notice appear with all copies)."
)

FR_STOP = frozenset(
    re.findall(
        r"\S+",
        "le la les l' un une des du d' de à au aux ce cet cette ces mon ma mes ton ta tes son sa ses notre nos votre "
        "vos leur leurs qui que qu' dont est sont et ou avec sans sur sous dans pour entre chez en par se s' ne n' pas "
        "jusqu' très y",
    )
)
EN_STOP = frozenset(
    re.findall(r"\S+", "a an the of with and or in on at by for from to into over under this that its his her their is")
)


def cldr_version(cldr: Path = CLDR) -> str:
    """The installed CLDR's version ("41"), from its LDML DTD ("?" when it cannot be read)."""
    dtd = cldr.parent / "dtd" / "ldml.dtd"
    found = re.search(r'cldrVersion CDATA #FIXED "([^"]+)"', dtd.read_text(encoding="utf-8")) if dtd.is_file() else None
    return found.group(1) if found else "?"


def _key(cp: str) -> str:
    """A code-point sequence without variation selectors (CLDR writes most sequences without U+FE0F)."""
    return cp.replace("\ufe0f", "").replace("\ufe0e", "")


def test_split_emoji() -> set[str]:
    """The emoji (as `_key` strings) of the alignment head's test split (`train_head.test_split_codepoints`, as
    scripts/train_multilingual.py's `cldr_pairs` leaves out)."""
    import train_head as th

    return {_key(cp) for cp in th.test_split_codepoints()}


def read_annotations(lang: str, cldr: Path = CLDR) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(emoji → tts name, emoji → keywords) of one language, emoji as `_key` strings."""
    names: dict[str, str] = {}
    keywords: dict[str, list[str]] = {}
    for node in ET.parse(cldr / f"{lang}.xml").getroot().iter("annotation"):
        cp, text = _key(node.get("cp", "")), unicodedata.normalize("NFC", (node.text or "").strip())
        if not text:
            continue
        if node.get("type") == "tts":
            names[cp] = text
        else:
            keywords[cp] = [k.strip() for k in text.split("|") if k.strip()]
    return names, keywords


def fr_words(text: str) -> list[str]:
    return [w for w in tokens(text) if w not in FR_STOP and not w.isdigit() and len(w) > 1]


def en_words(text: str) -> list[str]:
    return [w for w in tokens(text) if w not in EN_STOP and not w.isdigit() and len(w) > 1]


def _model1(pairs: list[tuple[list[str], list[str]]]) -> dict[str, dict[str, float]]:
    """IBM Model 1: t(e | f), English words generated by French words or a null word."""
    t: dict[str, dict[str, float]] = defaultdict(dict)
    for fs, es in pairs:
        for f in [*fs, None]:
            for e in es:
                t[f][e] = 1.0  # type: ignore[index]
    for f in t:
        n = len(t[f])
        for e in t[f]:
            t[f][e] = 1.0 / n
    for _ in range(ITERATIONS):
        count: dict[str, Counter[str]] = defaultdict(Counter)
        for fs, es in pairs:
            src = [*fs, None]
            for e in es:
                z = sum(t[f][e] for f in src)  # type: ignore[index]
                for f in src:
                    count[f][e] += t[f][e] / z  # type: ignore[index]
        t = defaultdict(dict)
        for f, c in count.items():
            total = sum(c.values())
            t[f] = {e: v / total for e, v in c.items()}  # type: ignore[index]
    return t


def build(
    held: set[str],
    cldr: Path = CLDR,
    *,
    min_prob: float = MIN_PROB,
    min_count: int = MIN_COUNT,
    min_reverse: float = MIN_REVERSE,
) -> list[tuple[str, str, list[str]]]:
    """(French word or phrase, kind "word" | "adj" | "name", English senses) learned from the emoji outside
    `held`."""
    (fr_n, fr_k), (en_n, en_k) = read_annotations("fr", cldr), read_annotations("en", cldr)
    emoji = sorted(cp for cp in fr_n if cp in en_n and cp not in held)
    pairs: list[tuple[list[str], list[str]]] = []
    seen: dict[tuple[str, str], int] = Counter()  # (f, e) → emoji where both occur
    for cp in emoji:
        f_name, e_name = fr_words(fr_n[cp]), en_words(en_n[cp])
        f_all = list(dict.fromkeys(f_name + [w for k in fr_k.get(cp, []) for w in fr_words(k)]))
        e_all = list(dict.fromkeys(e_name + [w for k in en_k.get(cp, []) for w in en_words(k)]))
        if f_name and e_name:
            pairs.append((f_name, e_name))
        if f_all and e_all:
            pairs.append((f_all, e_all))
        for f in f_all:
            for e in e_all:
                seen[f, e] += 1
    t = _model1(pairs)
    r = _model1([(es, fs) for fs, es in pairs]) if min_reverse > 0 else {}
    best: dict[str, list[str]] = {}
    for f in sorted(k for k in t if k is not None):
        senses = sorted(
            (
                e
                for e, p in t[f].items()
                if p >= min_prob and seen[f, e] >= min_count and (not r or r[e].get(f, 0.0) >= min_reverse)
            ),
            key=lambda e: (-t[f][e], e),
        )
        if senses:
            best[f] = senses[:MAX_SENSES]
    # an adjective: after the first word of French names, its English word before the first word's ("visage
    # rieur" ↔ "smiling face"), in most names where both are aligned
    votes: Counter[str] = Counter()
    for cp in emoji:
        fs, es = fr_words(fr_n[cp]), en_words(en_n[cp])
        if len(fs) < 2 or fs[0] not in best or best[fs[0]][0] not in es:
            continue
        head = es.index(best[fs[0]][0])
        for f in fs[1:]:
            if f in best and best[f][0] in es and best[f][0] != best[fs[0]][0]:
                votes[f] += 1 if es.index(best[f][0]) < head else -1
    rows: list[tuple[str, str, list[str]]] = [(f, "adj" if votes[f] >= 2 else "word", v) for f, v in best.items()]
    held_names = {" ".join(tokens(fr_n[cp])) for cp in held if cp in fr_n}
    names: dict[str, str] = {}
    for cp in emoji:
        key = " ".join(tokens(fr_n[cp])).replace("' ", "'")
        if len(fr_words(fr_n[cp])) >= 2 and key not in held_names and " ".join(tokens(fr_n[cp])) not in held_names:
            names.setdefault(key, en_n[cp].lower())
    rows += [(k, "name", [v]) for k, v in sorted(names.items())]
    return rows


def render(
    rows: list[tuple[str, str, list[str]]],
    held: set[str],
    *,
    min_prob: float = MIN_PROB,
    min_count: int = MIN_COUNT,
    min_reverse: float = MIN_REVERSE,
) -> str:
    lines = [
        "# French → English words and emoji names learned from Unicode CLDR annotations "
        "by scripts/build_french_cldr.py",
        f"# {NOTICE.format(version=cldr_version())}",
        f"# parameters: IBM Model 1, {ITERATIONS} iterations, p >= {min_prob}, seen together >= {min_count}, "
        f"reverse p >= {min_reverse}, <= {MAX_SENSES} senses",
        "# left out (the alignment head's test-split emoji, code points without U+FE0F): "
        + " ".join("-".join(f"{ord(c):x}" for c in cp) for cp in sorted(held)),
        "# french<TAB>kind (word, adj: an adjective, name: an emoji's whole name)<TAB>english senses, best first, "
        "separated by |",
    ]
    lines += [f"{f}\t{kind}\t{'|'.join(senses)}" for f, kind, senses in rows]
    return "\n".join(lines) + "\n"


def held_from_table(text: str) -> set[str]:
    """The left-out emoji written in a table's header."""
    for line in text.splitlines():
        if line.startswith("# left out"):
            codes = line.split(":", 1)[1].split()
            return {"".join(chr(int(c, 16)) for c in code.split("-")) for code in codes}
    return set()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="rebuild and compare with the shipped table")
    ap.add_argument("--out", type=Path, default=CLDR_TABLE)
    ap.add_argument("--min-prob", type=float, default=MIN_PROB)
    ap.add_argument("--min-count", type=int, default=MIN_COUNT)
    ap.add_argument("--min-reverse", type=float, default=MIN_REVERSE)
    args = ap.parse_args()
    if not (CLDR / "fr.xml").is_file():
        raise SystemExit(f"{CLDR} is missing: apt-get install -y unicode-cldr-core")
    held = test_split_emoji()
    params = {"min_prob": args.min_prob, "min_count": args.min_count, "min_reverse": args.min_reverse}
    text = render(build(held, **params), held, **params)
    if args.check:
        same = args.out.is_file() and args.out.read_text(encoding="utf-8") == text
        print(f"{args.out}: {'up to date' if same else 'differs from a rebuild'}")
        raise SystemExit(0 if same else 1)
    args.out.write_text(text, encoding="utf-8")
    n_words = sum(1 for line in text.splitlines() if "\tword\t" in line or "\tadj\t" in line)
    n_names = text.count("\tname\t")
    print(f"{args.out}: {n_words} words, {n_names} names ({len(held)} emoji left out)")


if __name__ == "__main__":
    main()
