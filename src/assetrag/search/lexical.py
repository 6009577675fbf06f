"""The lexical side of search: words in file names, tags, collections and sidecar captions, ranked by BM25.

Hybrid search (`search.hybrid`) fuses this rank with the vector rank by reciprocal-rank fusion. The
index is built from the store's scalar fields (never from Milvus directly: `Store` is the only Milvus layer),
kept in memory per library, and rebuilt lazily when the collection changes:

- writes made through a `Library` in this process call `invalidate` (Milvus Lite is one process per file,
  so on Lite that sees every write);
- before use, a cheap signature is compared: the row count and the number of rows newer than the newest
  `mtime` indexed (two count queries), at most every `LITE_RECHECK_S` (1 s) on Lite — which catches writes
  made straight through a `Store` — and every `SERVER_RECHECK_S` (10 s) on a server, which also rebuilds an
  index older than `SERVER_MAX_AGE_S` anyway (another process may have moved or re-tagged files without
  changing the count or the mtimes).

When it is built the index also scores how informative the library's words are (`informativeness`, 0-1: the
mean over assets of the share of their distinct terms that look like words rather than hashes, numbers or camera
names; see `is_wordlike`). Hybrid search scales the lexical side's weight by it (`lexical_weight`: 0 up to
0.1, full from 0.5), so a camera roll (`IMG_1234.JPG`, `DCIM/100APPLE`, content hashes) gets the vector ranking
back, and a library with descriptive names keeps the full weight. docs/quality.md, "Hybrid that never hurts",
has the design and the measurements.

Building costs one pass over the scalar fields (~1-2 s per 100k assets on Milvus Lite); a query costs a few
milliseconds. The words it indexes (`split_words`, `stem`, `tokenize`, `document_terms`: `assetrag.words`, which
the full-text `text` field of a library is also written from) are also what query understanding
(`search.understand`) matches against the library's collection and tag names.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assetrag.store import LEXICAL_IN_PROCESS, LEXICAL_MILVUS, Store
from assetrag.store import filters as F
from assetrag.store.schema import BM25_PARAMS
from assetrag.words import (  # noqa: F401 (re-exported: the words are this module's public vocabulary)
    CAPTION_KEYS,
    MAX_METADATA_CHARS,
    STOPWORDS,
    document_terms,
    split_words,
    stem,
    tokenize,
)

#: "in-process" makes hybrid search use the in-process index even where Milvus has full-text search (comparisons,
#: benchmarks); anything else, or unset: Milvus' BM25 where the library has it (`Store.fulltext`)
LEXICAL_ENV = "ASSETRAG_LEXICAL"
INFO_SAMPLE = 2000  # Milvus path: assets whose `text` the library's informativeness is estimated from
INFO_MAX_AGE_S = 60.0  # … re-estimated this often (and after every write through a `Library`)
LITE_RECHECK_S = 1.0  # Lite: one process, whose Library writes invalidate at once; raw Store writes: ≤ 1 s
SERVER_RECHECK_S = 10.0
SERVER_MAX_AGE_S = 300.0
#: words camera apps, phones and scanners put in file and folder names (beside numbers and dates): no content
CAMERA_WORDS = frozenset(
    re.findall(
        r"\w+",
        """dcim dsc dscn dscf img imag mvimg pxl vid mov gopr gopro apple canon nikon sony fuji fujifilm olympus
    panasonic
    lumix msdcf camera roll screenshot screenshots whatsapp signal telegram wechat edited edit burst portrait
    hdr pano panorama cover wp fb insta instagram download downloads picture pictures photo photos upload
    uploads untitled unknown scan scanned file files new tmp temp export exported mobile iphone android pixel
    samsung huawei xiaomi sam jpg jpeg png heic heif webp raw cr2 nef arw dng""",
    )
)
INFO_FLOOR = 0.1  # informativeness at and under which the lexical side gets no weight
INFO_FULL = 0.5  # … and from which it gets its full weight
_VOWELS = frozenset("aeiouy")
_HEX_LETTERS = frozenset("abcdef")
#: BM25 parameters: one pair for both paths (Milvus' sparse index is built with them, `store.schema`)
BM25_K1, BM25_B = BM25_PARAMS["bm25_k1"], BM25_PARAMS["bm25_b"]


# -- words -------------------------------------------------------------------------------------------------


def is_wordlike(term: str) -> bool:
    """True when an index term looks like a word of some language: 3+ Latin letters (no digits), a vowel, no
    run of five consonants, not three letters a-f ("fbe": hex hashes; longer ones, "cafe", "beef", pass), not a
    camera or file-type word (`CAMERA_WORDS`); letters of another script count as a word.
    Numbers, dates, hash and uuid fragments ("1f600" → 1, f, 600), `IMG`/`DSC` codes are not."""
    if not term.isalpha() or term in CAMERA_WORDS:
        return False
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", term) if not unicodedata.combining(ch))
    if not plain.isascii():
        return True  # another script (CJK, Cyrillic, …): take it as a word
    if len(plain) < 3 or (len(plain) == 3 and set(plain) <= _HEX_LETTERS) or not set(plain) & _VOWELS:
        return False
    return re.search(r"[^aeiouy]{5}", plain) is None


def informativeness(documents: Iterable[Sequence[str]]) -> float:
    """How much a library's names, folders and captions say, 0-1: the mean over documents of the share of their
    distinct terms that are word-like (`is_wordlike`); a document without terms counts 0. Descriptive names
    ("red-summer-dress.jpg") score near 1, a camera roll or content hashes near 0."""
    shares = []
    for terms in documents:
        distinct = set(terms)
        shares.append(sum(1 for t in distinct if is_wordlike(t)) / len(distinct) if distinct else 0.0)
    return float(sum(shares) / len(shares)) if shares else 0.0


def lexical_weight(info: float) -> float:
    """The lexical side's weight in hybrid search for a library of informativeness `info`: 0 up to `INFO_FLOOR`
    (what hash and number fragments score by chance: random sha256 names ≈ 0.02-0.03), 1 from `INFO_FULL` (half
    the terms are words: descriptive names), linear between."""
    return float(min(1.0, max(0.0, (info - INFO_FLOOR) / (INFO_FULL - INFO_FLOOR))))


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
    informativeness: float = 1.0  # how informative the words are (0-1, see `informativeness`)
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
        shares: list[float] = []
        for row in rows:
            doc = len(ids)
            terms = document_terms(row)
            shares.append(informativeness([terms]))
            ids.append(str(row["id"]))
            colls.append(str(row.get("collection") or ""))
            tags.append(frozenset(str(t) for t in row.get("tags") or []))
            sources.append(str(row.get("source") or ""))
            lengths.append(len(terms))
            newest = max(newest, int(row.get("mtime") or 0))
            for term, tf in Counter(terms).items():
                postings.setdefault(term, []).append((doc, tf))
        info = float(sum(shares) / len(shares)) if shares else 0.0
        index = cls(ids, colls, tags, sources, postings, lengths, newest, round(info, 4))
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
    def lexical_weight(self) -> float:
        """The weight hybrid search gives the lexical side (1 = as much as the vectors), see `lexical_weight`."""
        return lexical_weight(self.informativeness)

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
        _sampled.pop(_key(store), None)
        _names.pop(_key(store), None)


def _signature(store: Store, newest: int) -> tuple[int, int]:
    count = store.count()
    newer = store.query(F.newer_than("mtime", newest), ("count(*)",)) if count else [{"count(*)": 0}]
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


# -- the Milvus path: BM25 inside Milvus (schema 4 on a full-text backend) ----------------------------------

_sampled: dict[tuple[str, str, str], tuple[float, float]] = {}  # library → (informativeness, when)
_names: dict[tuple[str, str, str], tuple[list[str], list[str], float]] = {}  # → (collections, tags, when)


def uses_milvus(store: Store) -> bool:
    """Whether hybrid search of `store`'s library runs BM25 in Milvus rather than in the in-process index.

    By default on a Milvus server with full text (≥ 2.5), not on Milvus Lite even though its schema has the
    BM25 field: Lite 3.2 keeps BM25 statistics per segment and scores an upserted row against its new, tiny
    segment (a re-ingested "diamond-pendant-necklace" fell from 2.15 to 0.79 for "diamond necklace", below
    rows naming one of the words), and it walks every row in Python per query. `ASSETRAG_LEXICAL=milvus` or
    `in-process` forces one path (comparisons, and Lite once it is fixed)."""
    forced = os.environ.get(LEXICAL_ENV, "").strip().lower()
    if forced == "in-process" or not store.fulltext:
        return False
    return forced == "milvus" or store.is_server


def lexical_path(store: Store) -> str:
    """`LEXICAL_MILVUS` or `LEXICAL_IN_PROCESS`: which BM25 hybrid search uses for this library."""
    return LEXICAL_MILVUS if uses_milvus(store) else LEXICAL_IN_PROCESS


def sampled_informativeness(store: Store) -> float:
    """The library's informativeness (`informativeness`) estimated from the stored `text` of up to
    `INFO_SAMPLE` assets — the first by id, a content hash, so an unbiased sample; every asset of a library up to
    that size, where it equals the in-process index's value. Cached `INFO_MAX_AGE_S`; `invalidate` drops it."""
    key, now = _key(store), time.monotonic()
    with _lock:
        cached = _sampled.get(key)
    if cached is not None and now - cached[1] < INFO_MAX_AGE_S:
        return cached[0]
    rows = store.query("", ("id", "text"), limit=INFO_SAMPLE)
    info = round(informativeness(str(r.get("text") or "").split() for r in rows), 4)
    with _lock:
        _sampled[key] = (info, now)
    return info


def library_names(store: Store) -> tuple[list[str], list[str]]:
    """(collection names, tag names) of the library, for query understanding: the in-process index's on that path
    or when one is built, else a pass over those two fields (cached: `invalidate`, `INFO_MAX_AGE_S`, on a server
    `SERVER_MAX_AGE_S`)."""
    if not uses_milvus(store):  # hybrid search builds the index anyway
        index = lexical_index(store)
        return index.collections, index.tag_names
    key, now = _key(store), time.monotonic()
    with _lock:
        index, names = _cache.get(key), _names.get(key)
    if index is not None:
        return index.collections, index.tag_names
    if names is not None and now - names[2] < (SERVER_MAX_AGE_S if store.is_server else INFO_MAX_AGE_S):
        return names[0], names[1]
    facets = store.facets()
    out = sorted({str(c) for c in facets["collections"]} - {""}), sorted(str(t) for t in facets["tags"])
    with _lock:
        _names[key] = (*out, now)
    return out


def fetch_rows(store: Store, ids: Sequence[str], fields: Sequence[str], where: str = "") -> list[dict[str, Any]]:
    """Rows for `ids` that also pass the Milvus filter `where` (the filter is applied by Milvus)."""
    if not ids:
        return []
    return store.query(F.all_of(F.ids_in(ids), F.raw(where)), fields, limit=len(ids))
