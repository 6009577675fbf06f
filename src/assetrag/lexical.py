"""The lexical side of search: words in file names, tags, collections and sidecar captions, ranked by BM25.

Hybrid search (see `assetrag.search`) fuses this rank with the vector rank by reciprocal-rank fusion. The
index is built from the store's scalar fields (never from Milvus directly: `Store` is the only Milvus layer),
kept in memory per library, and rebuilt lazily when the collection changes:

- writes made through a `Library` in this process call `invalidate` (Milvus Lite is one process per file,
  so on Lite that sees every write);
- before use, a cheap signature is compared: the row count and the number of rows newer than the newest
  `mtime` indexed (two count queries), at most every `LITE_RECHECK_S` (1 s) on Lite — which catches writes
  made straight through a `Store` — and every `SERVER_RECHECK_S` (10 s) on a server, which also rebuilds an
  index older than `SERVER_MAX_AGE_S` anyway (another process may have moved or re-tagged files without
  changing the count or the mtimes).

Building costs one pass over the scalar fields (~1-2 s per 100k assets on Milvus Lite); a query costs a few
milliseconds. The module also does *query understanding*: collection / tag / year names written in a query
("the red cape from the lunar-2025 collection") are found among the library's own values, fuzzily.
"""

from __future__ import annotations

import difflib
import math
import re
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assetrag.store import Store, quote

#: words that say nothing about what an asset shows (dropped from documents and queries alike)
STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        """a an the of and or with without in on at to for from by into onto over under near this that these
        those is are was were be it its their his her some any one two very my our your me show find give get
        want need looking look like photo photos image images picture pictures pic pics img jpg jpeg png webp
        gif tif tiff bmp dsc copy final""",
    )
)
#: metadata keys whose text describes the image (other keys count too, these are simply read first)
CAPTION_KEYS = ("title", "caption", "description", "alt", "keywords", "subject", "name", "product", "label")
MAX_METADATA_CHARS = 2000
LITE_RECHECK_S = 1.0  # Lite: one process, whose Library writes invalidate at once; raw Store writes: ≤ 1 s
SERVER_RECHECK_S = 10.0
SERVER_MAX_AGE_S = 300.0
BM25_K1 = 1.2
BM25_B = 0.75

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_WORD = re.compile(r"[^\W_]+")
_YEAR = re.compile(r"^(19|20)\d\d$")


# -- words -------------------------------------------------------------------------------------------------


def split_words(text: str) -> list[str]:
    """Lower-case words of `text`: split on anything not a letter or digit (`-`, `_`, `.`, spaces) and on
    camelCase / letter-digit boundaries ("RedCape2025_final.png" → red, cape, 2025, final, png)."""
    text = unicodedata.normalize("NFKC", text or "")
    return [w.casefold() for w in _WORD.findall(_CAMEL.sub(" ", text))]


def stem(word: str) -> str:
    """A light English plural stemmer (S-stemmer): watches → watch, galaxies → galaxy, dress stays."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith(("sses", "ches", "shes", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Index terms of `text`: words, stop words dropped, plurals folded."""
    return [stem(w) for w in split_words(text) if w not in STOPWORDS]


def _strings(value: Any, depth: int = 0) -> Iterable[str]:
    if depth > 3:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v, depth + 1)


def _stem_of(name: str) -> str:
    base = name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def document_terms(row: dict[str, Any]) -> list[str]:
    """The terms of one stored asset: file names (all its copies), tags, collection, sidecar metadata and,
    for generated images, the prompt they were made from."""
    names = dict.fromkeys([row.get("filename") or "", *(_stem_of(p) for p in row.get("paths") or [])])
    parts = [_stem_of(n) for n in names if n]
    tags = list(dict.fromkeys(str(t) for t in row.get("tags") or []))
    collection = str(row.get("collection") or "")
    parts += tags + ([collection] if collection and collection not in tags else [])
    meta = row.get("metadata") or {}
    if isinstance(meta, dict):
        ordered = [meta[k] for k in CAPTION_KEYS if k in meta] + [
            v for k, v in meta.items() if k not in CAPTION_KEYS and k not in ("usage", "source")
        ]
        text = " ".join(_strings(ordered))[:MAX_METADATA_CHARS]
        parts.append(text)
    lineage = row.get("lineage") or {}
    if isinstance(lineage, dict) and isinstance(lineage.get("brief"), str):
        parts.append(lineage["brief"][:MAX_METADATA_CHARS])
    return [t for p in parts for t in tokenize(p)]


# -- the index ---------------------------------------------------------------------------------------------

#: the scalar fields the index reads from the store
INDEX_FIELDS = ("id", "path", "paths", "filename", "tags", "collection", "source", "metadata", "lineage", "mtime")


@dataclass
class LexicalIndex:
    """BM25 over every asset of one library, plus the library's own collection and tag names."""

    ids: list[str]
    collection: list[str]
    tags: list[frozenset[str]]
    source: list[str]
    postings: dict[str, list[tuple[int, int]]]  # term → [(doc, term frequency)]
    lengths: list[int]
    newest_mtime: int = 0
    built_at: float = field(default_factory=time.monotonic)
    checked_at: float = field(default_factory=time.monotonic)

    @classmethod
    def build(cls, rows: Iterable[dict[str, Any]]) -> LexicalIndex:
        ids: list[str] = []
        colls: list[str] = []
        tags: list[frozenset[str]] = []
        sources: list[str] = []
        lengths: list[int] = []
        postings: dict[str, list[tuple[int, int]]] = {}
        newest = 0
        for row in rows:
            doc = len(ids)
            terms = document_terms(row)
            ids.append(str(row["id"]))
            colls.append(str(row.get("collection") or ""))
            tags.append(frozenset(str(t) for t in row.get("tags") or []))
            sources.append(str(row.get("source") or ""))
            lengths.append(len(terms))
            newest = max(newest, int(row.get("mtime") or 0))
            for term, tf in Counter(terms).items():
                postings.setdefault(term, []).append((doc, tf))
        index = cls(ids, colls, tags, sources, postings, lengths, newest)
        index._freeze()
        return index

    def _freeze(self) -> None:
        """Postings as numpy arrays, and each document's BM25 length norm, so a query is a few vector ops."""
        n = len(self.ids)
        lengths = np.asarray(self.lengths, dtype=np.float32)
        avg = float(lengths.mean()) if n else 1.0
        self._norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths / (avg or 1.0))
        self._arrays = {
            term: (np.fromiter((d for d, _ in p), np.int64, len(p)), np.fromiter((t for _, t in p), np.float32, len(p)))
            for term, p in self.postings.items()
        }

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def collections(self) -> list[str]:
        return sorted(set(self.collection) - {""})

    @property
    def tag_names(self) -> list[str]:
        return sorted(set().union(*self.tags)) if self.tags else []

    def search(
        self, terms: Sequence[str], k: int, *, allow: Callable[[int], bool] | None = None
    ) -> list[tuple[str, float]]:
        """The `k` best (id, BM25 score) for the query terms (score > 0 only), best first."""
        n = len(self.ids)
        if not n or not terms:
            return []
        if getattr(self, "_arrays", None) is None:
            self._freeze()
        scores = np.zeros(n, dtype=np.float32)
        for term, qtf in Counter(terms).items():
            posting = self._arrays.get(term)
            if posting is None:
                continue
            docs, tf = posting
            idf = math.log(1.0 + (n - len(docs) + 0.5) / (len(docs) + 0.5))
            scores[docs] += qtf * idf * tf * (BM25_K1 + 1) / (tf + self._norm[docs])
        hits = np.nonzero(scores > 0)[0]
        order = hits[np.lexsort((hits, -scores[hits]))]  # best first; ties in index order
        out: list[tuple[str, float]] = []
        for d in order:
            if allow is None or allow(int(d)):
                out.append((self.ids[d], float(scores[d])))
                if len(out) >= k:
                    break
        return out

    def allow(
        self,
        collections: Sequence[str] = (),
        tags: Sequence[str] = (),
        any_tags: Sequence[str] = (),
        source: str | None = None,
    ) -> Callable[[int], bool] | None:
        """A predicate for the simple filters (collection / tags / source); None when there are none."""
        if not (collections or tags or any_tags or source):
            return None
        colls, need, anyof = set(collections), set(tags), set(any_tags)

        def ok(d: int) -> bool:
            return (
                (not colls or self.collection[d] in colls)
                and need <= self.tags[d]
                and (not anyof or bool(anyof & self.tags[d]))
                and (source is None or self.source[d] == source)
            )

        return ok


# -- the per-library cache ---------------------------------------------------------------------------------

_cache: dict[tuple[str, str, str], LexicalIndex] = {}
_lock = threading.Lock()


def _key(store: Store) -> tuple[str, str, str]:
    return (store.uri, str(getattr(store, "db_name", "") or ""), store.name)


def invalidate(store: Store) -> None:
    """Forget the cached index of `store`'s library (call after writing to it)."""
    with _lock:
        _cache.pop(_key(store), None)


def _signature(store: Store, newest: int) -> tuple[int, int]:
    count = store.count()
    newer = store.query(f"mtime > {int(newest)}", ("count(*)",)) if count else [{"count(*)": 0}]
    return count, int(newer[0]["count(*)"])


def lexical_index(store: Store) -> LexicalIndex:
    """The library's lexical index: cached, rebuilt when the collection changed (see the module doc)."""
    key = _key(store)
    with _lock:
        index = _cache.get(key)
    now = time.monotonic()
    if index is not None:
        if store.is_server and now - index.built_at > SERVER_MAX_AGE_S:
            index = None
        elif now - index.checked_at > (SERVER_RECHECK_S if store.is_server else LITE_RECHECK_S):
            if _signature(store, index.newest_mtime) != (len(index), 0):
                index = None
            else:
                index.checked_at = now
    if index is None:
        index = LexicalIndex.build(store.iterate(INDEX_FIELDS))
        with _lock:
            _cache[key] = index
    return index


def fetch_rows(store: Store, ids: Sequence[str], fields: Sequence[str], where: str = "") -> list[dict[str, Any]]:
    """Rows for `ids` that also pass the Milvus filter `where` (the filter is applied by Milvus)."""
    if not ids:
        return []
    expr = f"id in [{', '.join(quote(i) for i in ids)}]"
    if where:
        expr = f"{expr} and ({where})"
    return store.query(expr, fields, limit=len(ids))


# -- query understanding -----------------------------------------------------------------------------------

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
