"""Search: text → image, image → image, text + image, with metadata filters and scores — one query path.

    query.py       `Query`, `SearchHit`, the filter expression, the query embedding
    result.py      `SearchResult`: hits + what was understood + which text encoder and language
    understand.py  collection / tag / year names in the text → filters
    lexical.py     BM25 over names, tags, collection, captions: in Milvus (schema 4, full-text backends) or an
                   in-process index (cached per library)
    hybrid.py      vector top-N + lexical top-N by reciprocal-rank fusion
    rerank.py      the fused top-N re-ranked by standardised scores

Modes (`Query.mode`): `vector` (Milvus does it all) and `hybrid` (the default for text queries, see
`search.hybrid`). Image-only queries are vector searches.
"""

from __future__ import annotations

from dataclasses import replace

from assetrag.embedding.base import Embedder
from assetrag.embedding.calibration import weak_threshold
from assetrag.embedding.multilingual import describe_choice, detect_language, lexical_text, text_encoder
from assetrag.search.hybrid import hybrid_search
from assetrag.search.query import (
    DEFAULT_MODE,
    LANGS,
    MODES,
    SOURCES,
    TEMPLATES,
    Query,
    SearchHit,
    build_filter,
    group_by_video,
    load_query_image,
    query_vector,
    template_list,
    text_vector,
)
from assetrag.search.rerank import DEFAULT_RERANK, DEFAULT_RERANK_N, RERANKERS
from assetrag.search.result import SearchResult
from assetrag.search.understand import Understanding, Understood, apply_understanding, understand_query
from assetrag.store import MAX_K, SCALAR_FIELDS, Store

#: with `Query.group_videos`, candidates fetched per hit wanted (a video's moments collapse into one)
GROUP_FETCH = 5

LOW_LEXICAL_WEIGHT = 0.5  # under it, a hybrid search says that the names carry few words

__all__ = [
    "DEFAULT_MODE",
    "DEFAULT_RERANK",
    "DEFAULT_RERANK_N",
    "LANGS",
    "MODES",
    "RERANKERS",
    "SOURCES",
    "TEMPLATES",
    "Query",
    "SearchHit",
    "SearchResult",
    "Understanding",
    "Understood",
    "apply_understanding",
    "build_filter",
    "detect_language",
    "load_query_image",
    "mark_weak",
    "query_vector",
    "search",
    "template_list",
    "text_vector",
    "understand_query",
]


def search(store: Store, embedder: Embedder, q: Query) -> SearchResult:
    """Run `q` against `store`: hits best first, ranks from offset + 1, with how the query was read."""
    q.validate()
    understood = None
    applied = False
    if q.understand and q.has_text:
        understood = understand_query(store, q.text or "")
        read = apply_understanding(q, understood)
        applied = read is not q
        q = read
    want = q.k
    if q.group_videos:  # fetch more: a video's moments collapse into one hit
        q = replace(q, k=min(q.k * GROUP_FETCH, MAX_K - q.offset))
    vec = query_vector(embedder, q)
    mode = "hybrid" if q.mode == "hybrid" and q.has_text else "vector"
    lexical_weight = lexical = None
    if mode == "hybrid":
        # a French query's lexical side also gets its English translation (`multilingual.lexical_text`)
        text = lexical_text(embedder, q.text or "", q.lang)
        hits, lexical_weight, lexical = hybrid_search(store, vec, q, text)
    else:
        found = store.search(vec[None, :], q.k, filter=q.filter(), fields=SCALAR_FIELDS, offset=q.offset)[0]
        hits = [SearchHit.from_fields(q.offset + i + 1, h.id, h.score, h.fields) for i, h in enumerate(found)]
    if q.min_score is not None:
        hits = [h for h in hits if h.score >= q.min_score]
    if q.group_videos:
        hits = group_by_video(hits, want)
    weak_below = weak_threshold(embedder.name) if q.has_text and q.image is None and q.vector is None else None
    weak_from = mark_weak(hits, weak_below, lexical_weight)
    encoder, lang, notes = None, None, []
    if lexical_weight is not None and lexical_weight < LOW_LEXICAL_WEIGHT:
        notes.append(
            f"this library's file names, folders and captions carry few words (lexical weight {lexical_weight:.2f}):"
            " hybrid search leans on the image vectors"
        )
    if q.has_text:
        text = q.text or ""
        note = describe_choice(embedder, text, q.lang)
        encoder = "model" if text_encoder(embedder, text, q.lang) is embedder else "multilingual"
        lang = q.lang or "auto"
        if note:
            notes.append(note)
    return SearchResult(
        hits,
        mode=mode,
        understood=understood,
        applied=applied,
        encoder=encoder,
        lang=lang,
        notes=notes,
        lexical_weight=lexical_weight,
        lexical=lexical,
        weak_below=weak_below,
        weak_from=weak_from,
        model=embedder.name,
    )


def mark_weak(hits: list[SearchHit], below: float | None, lexical_weight: float | None = None) -> int | None:
    """Mark the tail of `hits` whose cosine is under `below` and that no query word matched (`SearchHit.weak`);
    returns the index of the first weak hit (None when none is, or there is no cut-off)."""
    if below is None:
        return None

    def weak(h: SearchHit) -> bool:
        return h.score < below and not (h.lexical_rank is not None and lexical_weight)

    start = len(hits)
    while start > 0 and weak(hits[start - 1]):
        start -= 1
    for h in hits[start:]:
        h.weak = True
    return start if start < len(hits) else None
