"""Search: text → image, image → image, text + image, with metadata filters and scores.

The `Query` object is the same for the CLI, the Python API and the REST API.

Two modes (`Query.mode`):
- `vector`: the top-k by cosine similarity of the query embedding (Milvus does it all);
- `hybrid` (the default for text queries): the vector top-N and the lexical top-N (BM25 over file names,
  tags, collection and sidecar captions; `assetrag.lexical`) fused by reciprocal-rank fusion,
  score(d) = 1/(60 + vector rank) + 1/(60 + lexical rank). A hit's `score` stays its cosine similarity;
  `fused_score`, `vector_rank` and `lexical_rank` say how it got its place. With no word of the query in any
  name, tag or caption, hybrid returns exactly the vector ranking. Image-only queries are vector searches.

`Query.rerank = "scores"` re-ranks the first `rerank_n` of hybrid's fused list by standardised cosine + BM25
scores instead of ranks (`assetrag.rerank`); off by default, measured in docs/quality.md ("Re-ranking").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from assetrag.decode import decode_file, to_rgb
from assetrag.embedding.base import Embedder, l2_normalise
from assetrag.embedding.multilingual import AUTO, LANGUAGES, MULTI, check_lang, text_encoder
from assetrag.errors import QueryError
from assetrag.lexical import Understanding, fetch_rows, lexical_index, tokenize, understand
from assetrag.rerank import DEFAULT_RERANK, DEFAULT_RERANK_N, check_rerank, reorder, score_mix
from assetrag.store import SCALAR_FIELDS, Store, quote

SOURCES = ("ingested", "synthetic")
MODES = ("vector", "hybrid")
LANGS = (AUTO, MULTI, *LANGUAGES)  # `Query.lang` values (auto: detect; multi: the multilingual encoder always)
DEFAULT_MODE = "hybrid"
RRF_K = 60  # reciprocal-rank fusion constant (Cormack et al. 2009)
LEXICAL_WEIGHT = 1.0  # weight of the lexical rank in the fusion (the vector rank has 1.0)
HYBRID_CANDIDATES = 100  # vector and lexical candidates fused (at least k + offset of each)
MAX_K = 16384  # Milvus' limit on k + offset
#: prompt templates for text queries, by name (`Query.templates`); "{}" is the query as written
TEMPLATES: dict[str, tuple[str, ...]] = {
    "none": (),
    "photo": ("a photo of {}.",),
    "ensemble": ("{}", "a photo of {}.", "a product photo of {}.", "a drawing of {}.", "a close-up photo of {}."),
}


@dataclass
class Query:
    """One search. At least one of `text` / `image` / `vector`; filters are ANDed together."""

    text: str | None = None
    image: str | Path | Image.Image | None = None
    vector: np.ndarray | None = None  # a precomputed query embedding ("find similar")
    k: int = 10
    offset: int = 0
    collection: str | Sequence[str] | None = None
    tags: Sequence[str] = ()
    source: str | None = None
    where: str | None = None  # a raw Milvus filter expression, ANDed with the rest
    min_score: float | None = None
    text_weight: float = 0.5  # weight of the text side when both text and image are given
    mode: str = DEFAULT_MODE  # "vector" | "hybrid" (see the module doc); hybrid needs text
    #: prompt templates for the text: a name from `TEMPLATES` or templates with "{}"; the text embedding is
    #: the mean of the filled-in templates. None: the text as written.
    templates: str | Sequence[str] | None = None
    understand: bool = False  # read collection / tag / year names in the text as filters (`assetrag.lexical`)
    any_tags: Sequence[str] = ()  # assets with at least one of these tags
    #: the text's language: None / "auto" (detect), "en", a code like "fr", or "multi". With an offline model a
    #: non-English text goes through the multilingual text side (`assetrag.embedding.multilingual`); other
    #: models always use their own text encoder.
    lang: str | None = None
    #: re-rank the first `rerank_n` candidates of a hybrid search: None (off) or "scores" (standardised cosine +
    #: BM25 instead of ranks; `assetrag.rerank`). Vector and image-only searches and N ≤ 1: no change.
    rerank: str | None = DEFAULT_RERANK
    rerank_n: int = DEFAULT_RERANK_N

    def validate(self) -> None:
        if not (self.text and self.text.strip()) and self.image is None and self.vector is None:
            raise QueryError("give a text query, an image (--image FILE), or both")
        if not 1 <= self.k <= 16384:
            raise QueryError(f"k must be between 1 and 16384, got {self.k}")
        if self.offset < 0:
            raise QueryError(f"offset must be ≥ 0, got {self.offset}")
        if self.source is not None and self.source not in SOURCES:
            raise QueryError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if not 0.0 <= self.text_weight <= 1.0:
            raise QueryError(f"text weight must be within [0, 1], got {self.text_weight}")
        if self.mode not in MODES:
            raise QueryError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        template_list(self.templates)  # raises on an unknown name or a template without "{}"
        check_lang(self.lang)
        check_rerank(self.rerank, self.rerank_n)


@dataclass
class SearchHit:
    """One result: the asset's stored fields and its cosine similarity to the query.

    `rank` is the place in the result list. In hybrid mode the list is ordered by `fused_score` (reciprocal-
    rank fusion of `vector_rank` and `lexical_rank`; a rank is None when the asset was not among that side's
    candidates), so `score` — always the cosine similarity — need not decrease down the list.
    """

    rank: int
    id: str
    score: float
    path: str
    filename: str
    collection: str
    tags: list[str]
    source: str
    width: int
    height: int
    size: int
    paths: list[str] = field(default_factory=list)
    lineage: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    fused_score: float | None = None
    vector_rank: int | None = None
    lexical_rank: int | None = None
    rerank_score: float | None = None  # with `Query.rerank`: the score it was re-ranked by (the first N only)

    @classmethod
    def from_fields(cls, rank: int, rid: str, score: float, f: dict[str, Any]) -> SearchHit:
        return cls(
            rank=rank,
            id=rid,
            score=round(float(score), 6),
            path=f.get("path", ""),
            filename=f.get("filename", ""),
            collection=f.get("collection", ""),
            tags=list(f.get("tags") or []),
            source=f.get("source", ""),
            width=int(f.get("width") or 0),
            height=int(f.get("height") or 0),
            size=int(f.get("size") or 0),
            paths=list(f.get("paths") or []),
            lineage=dict(f.get("lineage") or {}),
            metadata=dict(f.get("metadata") or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_filter(q: Query) -> str:
    """The Milvus boolean expression for the query's filters ('' for none)."""
    parts: list[str] = []
    if q.collection:
        names = [q.collection] if isinstance(q.collection, str) else list(q.collection)
        if len(names) == 1:
            parts.append(f"collection == {quote(names[0])}")
        else:
            parts.append(f"collection in [{', '.join(quote(n) for n in names)}]")
    for tag in q.tags:
        parts.append(f"array_contains(tags, {quote(tag)})")
    if q.any_tags:
        parts.append(f"array_contains_any(tags, [{', '.join(quote(t) for t in q.any_tags)}])")
    if q.source:
        parts.append(f"source == {quote(q.source)}")
    if q.where and q.where.strip():
        parts.append(f"({q.where.strip()})")
    return " and ".join(parts)


def query_vector(embedder: Embedder, q: Query) -> np.ndarray:
    """The query embedding: text, image, or their weighted sum (renormalised)."""
    vecs: list[tuple[float, np.ndarray]] = []
    has_text = bool(q.text and q.text.strip())
    has_image = q.image is not None or q.vector is not None
    if has_text:
        vecs.append((q.text_weight if has_image else 1.0, text_vector(embedder, q.text, q.templates, q.lang)))
    if q.vector is not None:
        v = l2_normalise(np.asarray(q.vector, dtype=np.float32))[0]
        vecs.append(((1.0 - q.text_weight) if has_text else 1.0, v))
    elif q.image is not None:
        img = load_query_image(q.image)
        vecs.append(((1.0 - q.text_weight) if has_text else 1.0, embedder.embed_images([img])[0]))
    combined = sum(w * v for w, v in vecs)
    return l2_normalise(np.asarray(combined, dtype=np.float32))[0]


def template_list(templates: str | Sequence[str] | None) -> tuple[str, ...]:
    """The templates a `Query.templates` value names (() for the text as written)."""
    if templates is None:
        return ()
    if isinstance(templates, str):
        if templates not in TEMPLATES:
            raise QueryError(f"unknown template set {templates!r}; use one of {', '.join(TEMPLATES)}")
        return TEMPLATES[templates]
    out = tuple(templates)
    bad = [t for t in out if "{}" not in t]
    if bad:
        raise QueryError(f"a prompt template needs '{{}}' where the query goes: {bad[0]!r}")
    return out


def text_vector(
    embedder: Embedder, text: str, templates: str | Sequence[str] | None = None, lang: str | None = None
) -> np.ndarray:
    """The embedding of a text query: as written, or the mean over the filled-in prompt templates; `lang` picks
    the text encoder (`Query.lang`)."""
    text = text.strip()
    forms = [t.format(text) for t in template_list(templates)] or [text]
    vecs = text_encoder(embedder, text, lang).embed_texts(forms)
    return l2_normalise(vecs.mean(axis=0))[0]


def load_query_image(image: str | Path | Image.Image) -> Image.Image:
    if isinstance(image, Image.Image):
        return to_rgb(image)
    path = Path(image)
    if not path.is_file():
        raise QueryError(f"query image {path} does not exist")
    try:
        return decode_file(path).image
    except Exception as exc:
        raise QueryError(f"query image {path} cannot be used: {exc}") from exc


def understand_query(store: Store, text: str) -> Understanding:
    """Collection / tag / year names of the library found in `text` (see `assetrag.lexical.understand`)."""
    index = lexical_index(store)
    return understand(text, index.collections, index.tag_names)


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


def search(store: Store, embedder: Embedder, q: Query) -> list[SearchHit]:
    """Run `q` against `store`; hits best first, ranks from offset + 1."""
    q.validate()
    if q.understand and q.text and q.text.strip():
        q = apply_understanding(q, understand_query(store, q.text))
    vec = query_vector(embedder, q)
    if q.mode == "hybrid" and q.text and q.text.strip():
        out = _hybrid(store, vec, q)
    else:
        hits = store.search(vec[None, :], q.k, filter=build_filter(q), fields=SCALAR_FIELDS, offset=q.offset)[0]
        out = [SearchHit.from_fields(q.offset + i + 1, h.id, h.score, h.fields) for i, h in enumerate(hits)]
    if q.min_score is not None:
        out = [h for h in out if h.score >= q.min_score]
    return out


def _hybrid(store: Store, vec: np.ndarray, q: Query) -> list[SearchHit]:
    """Reciprocal-rank fusion of the vector top-N and the lexical top-N (see the module doc)."""
    want = q.k + q.offset
    rerank = q.rerank if q.rerank_n > 1 else None
    n = min(MAX_K, max(want, HYBRID_CANDIDATES, q.rerank_n if rerank else 0))
    flt = build_filter(q)
    vhits = store.search(vec[None, :], n, filter=flt, fields=SCALAR_FIELDS)[0]
    fields = {h.id: h.fields for h in vhits}
    cosine = {h.id: h.score for h in vhits}
    vrank = {h.id: i + 1 for i, h in enumerate(vhits)}

    lexical: list[str] = []
    bm25: dict[str, float] = {}
    terms = tokenize(q.text or "")
    if terms:
        index = lexical_index(store)
        names = [q.collection] if isinstance(q.collection, str) else list(q.collection or [])
        allow = index.allow(names, q.tags, q.any_tags, q.source)
        found_scores = index.search(terms, n, allow=allow)
        bm25 = dict(found_scores)
        found = [rid for rid, _ in found_scores]
        # assets the vector side did not bring: fetched with their vectors, through the full filter
        missing = [rid for rid in found if rid not in fields]
        extra = {r["id"]: r for r in fetch_rows(store, missing, (*SCALAR_FIELDS, "vector"), flt)}
        for rid, row in extra.items():
            v = np.asarray(row.pop("vector"), dtype=np.float32)
            cosine[rid] = float(v @ vec / (np.linalg.norm(v) or 1.0))
            fields[rid] = row
        lexical = [rid for rid in found if rid in fields]  # gone from the store or refused by the filter: out
    lrank = {rid: i + 1 for i, rid in enumerate(lexical)}

    def fused(rid: str) -> float:
        f = 1.0 / (RRF_K + vrank[rid]) if rid in vrank else 0.0
        return f + (LEXICAL_WEIGHT / (RRF_K + lrank[rid]) if rid in lrank else 0.0)

    order = sorted(fields, key=lambda rid: (-fused(rid), -cosine[rid], rid))
    rescored: dict[str, float] = {}
    if rerank:  # re-rank the first rerank_n of the fused list (`assetrag.rerank`)
        head = order[: q.rerank_n]
        scores = score_mix([cosine[r] for r in head], [bm25[r] if r in lrank else 0.0 for r in head])
        rescored = {r: float(s) for r, s in zip(head, scores, strict=True)}
        order = [head[i] for i in reorder(scores)] + order[len(head) :]
    out = []
    for i, rid in enumerate(order[q.offset : want]):
        hit = SearchHit.from_fields(q.offset + i + 1, rid, cosine[rid], fields[rid])
        hit.fused_score = round(fused(rid), 6)
        hit.vector_rank = vrank.get(rid)
        hit.lexical_rank = lrank.get(rid)
        hit.rerank_score = round(rescored[rid], 6) if rid in rescored else None
        out.append(hit)
    return out
