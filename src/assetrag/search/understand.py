"""Query understanding: collection / tag / year names written in a query ("the red cape from the lunar-2025
collection") found among the library's own values, fuzzily, and turned into filters."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from assetrag.search.lexical import STOPWORDS, library_names, split_words, stem
from assetrag.search.query import Query
from assetrag.store import Store

_YEAR = re.compile(r"^(19|20)\d\d$")

#: cue words written before / after a collection or tag name ("collection lunar", "the lunar collection")
_CUES_BEFORE = {"collection": ("collection",), "tag": ("tagged", "tag", "tags", "labelled", "labeled")}
_CUES_AFTER = {"collection": ("collection", "collections", "campaign", "season", "folder"), "tag": ("tag", "tags")}


@dataclass
class Understood:
    """One filter read from the query: the words it came from, the field and the library's value(s)."""

    phrase: str
    field: str  # "collection" | "tag"
    values: list[str]
    score: float

    def describe(self) -> str:
        vals = " | ".join(self.values)
        return f"{self.field} = {vals} (from {self.phrase!r})"


@dataclass
class Understanding:
    """What `understand` read from a query: the text left to search for, and the filters found."""

    original: str
    text: str
    found: list[Understood] = field(default_factory=list)

    @property
    def collections(self) -> list[str]:
        return list(dict.fromkeys(v for u in self.found if u.field == "collection" for v in u.values))

    @property
    def tag_groups(self) -> list[list[str]]:
        """One group per phrase read as tags: an asset needs one tag of each group."""
        return [u.values for u in self.found if u.field == "tag"]

    def __bool__(self) -> bool:
        return bool(self.found)

    def describe(self) -> str:
        if not self.found:
            return "no collection, tag or year names found in the query"
        parts = "; ".join(u.describe() for u in self.found)
        return f"understood: {parts}; searching for {self.text!r}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "text": self.text,
            "filters": [
                {"phrase": u.phrase, "field": u.field, "values": u.values, "score": u.score} for u in self.found
            ],
        }


def _similar(a: str, b: str) -> float:
    if a == b or stem(a) == stem(b):
        return 1.0
    if a.isdigit() or b.isdigit() or min(len(a), len(b)) < 4:
        return 0.0
    return difflib.SequenceMatcher(None, a, b).ratio()


def _prefix_match(words: list[str], start: int, value: list[str], fuzz: float) -> tuple[int, float]:
    """How many of `value`'s leading words appear in `words` from `start`, and their mean similarity."""
    total, n = 0.0, 0
    for i, v in enumerate(value):
        if start + i >= len(words):
            break
        s = _similar(words[start + i], v)
        if s < fuzz:
            break
        total += s
        n += 1
    return n, (total / n if n else 0.0)


def understand(text: str, collections: Sequence[str], tags: Sequence[str], *, fuzz: float = 0.8) -> Understanding:
    """Find the library's collection and tag names in `text`.

    A name counts when it is written with a cue ("the lunar-2025 collection", "from collection lunar",
    "tagged summer", "#summer"), or without one when it is specific enough not to be an ordinary word: two or
    more words ("brand-style", "lunar 2025") or a digit in it. A bare year ("from 2024") selects the
    collections / tags whose name holds that year. A single plain word such as "watches" is left to the
    text search (hybrid mode already matches it against tags and collections). Matching ignores case,
    separators and plurals, and tolerates small typos (similarity ≥ `fuzz` per word, words of 4+ letters).
    """
    original = text or ""
    words = split_words(original)
    if not words:
        return Understanding(original, original)
    values: list[tuple[str, str, list[str]]] = [("collection", c, split_words(c)) for c in collections] + [
        ("tag", t, split_words(t)) for t in tags
    ]
    values = [v for v in values if v[2]]
    used = [False] * len(words)
    found: list[Understood] = []

    def take(lo: int, hi: int) -> str:
        for i in range(lo, hi):
            used[i] = True
        return " ".join(words[lo:hi])

    for start in range(len(words)):
        if used[start]:
            continue
        # (words matched, full match, similarity) → the values that reach it, with the phrase's span
        best: tuple[tuple[int, bool, float], int, int, list[tuple[str, str]]] | None = None
        for field_name, value, vwords in values:
            m, score = _prefix_match(words, start, vwords, fuzz)
            if m == 0 or any(used[start : start + m]):
                continue
            full = m == len(vwords)
            pre, post = _CUES_BEFORE[field_name], _CUES_AFTER[field_name]
            before = start - 1 if start > 0 and words[start - 1] in pre and not used[start - 1] else None
            after = start + m if start + m < len(words) and words[start + m] in post else None
            hashed = field_name == "tag" and f"#{words[start]}" in original.casefold()
            specific = len(vwords) >= 2 or any(ch.isdigit() for ch in value)
            cued = before is not None or after is not None or hashed
            if not (cued or (full and specific)):
                continue
            lo = before if before is not None else start
            hi = after + 1 if after is not None else start + m
            key = (m, full, round(score, 6))
            if best is None or key > best[0]:
                best = (key, lo, hi, [(field_name, value)])
            elif key == best[0]:
                best[3].append((field_name, value))
        if best is not None:
            _, lo, hi, matched = best
            phrase = take(lo, hi)
            by_field: dict[str, list[str]] = {}
            for fname, value in matched:
                by_field.setdefault(fname, []).append(value)
            fname = "collection" if "collection" in by_field else "tag"
            found.append(Understood(phrase, fname, sorted(set(by_field[fname])), round(best[0][2], 3)))

    # a bare year: every collection (else tag) whose name holds it
    for i, w in enumerate(words):
        if used[i] or not _YEAR.match(w):
            continue
        for fname, names in (("collection", collections), ("tag", tags)):
            hits = [n for n in names if w in split_words(n)]
            if hits:
                found.append(Understood(take(i, i + 1), fname, hits, 1.0))
                break

    if not found:
        return Understanding(original, original)
    # drop the matched words, and a dangling "from the" / "in" before them
    kept: list[str] = []
    for i, w in enumerate(words):
        if used[i]:
            while kept and kept[-1] in ("from", "in", "the", "of", "our", "my", "a", "an"):
                kept.pop()
            continue
        kept.append(w)
    left = " ".join(kept).strip()
    if not [w for w in kept if w not in STOPWORDS]:
        left = original  # nothing left to look for: keep the words as given
    return Understanding(original, left, found)


def understand_query(store: Store, text: str) -> Understanding:
    """Collection / tag / year names of the library found in `text` (see `understand`)."""
    collections, tags = library_names(store)
    return understand(text, collections, tags)


def apply_understanding(q: Query, u: Understanding) -> Query:
    """`q` with what `u` found as filters; filters the query sets itself win over understood ones."""
    if not u:
        return q
    changes: dict[str, Any] = {"text": u.text, "understand": False}
    if not q.collection and u.collections:
        changes["collection"] = u.collections
    groups = u.tag_groups
    if groups and not q.tags and not q.any_tags:
        changes["tags"] = [g[0] for g in groups if len(g) == 1]
        multi = [g for g in groups if len(g) > 1]
        if multi:
            changes["any_tags"] = multi[0]
    if "collection" not in changes and "tags" not in changes and "any_tags" not in changes:
        return q  # every filter it found was set explicitly: search the words as given
    return replace(q, **changes)
