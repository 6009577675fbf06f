"""Hybrid search: the vector top-N and the lexical top-N (BM25 over file names, tags, collection and sidecar
captions; `search.lexical`) fused by reciprocal-rank fusion,
score(d) = 1/(60 + vector rank) + w/(60 + lexical rank), where w is the library's lexical weight: how informative
its names, folders and captions are (`LexicalIndex.informativeness`, 0-1). A camera roll or a folder of
content-hashed files has w ≈ 0 and gets the vector ranking back; descriptive names keep w ≈ 1.

A hit's `score` stays its cosine similarity; `fused_score`, `vector_rank` and `lexical_rank` say how it got its
place. With no word of the query in any name, tag or caption, hybrid returns exactly the vector ranking. The
first `rerank_n` of the fused list can then be re-ranked by the scores themselves (`search.rerank`).

Where the BM25 runs (`lexical.lexical_path`): in Milvus, for a library with schema 4's BM25 function on a
server ≥ 2.5 (`Store.text_search`, the same filter expression as the vector side; Lite only when forced, see
`lexical.uses_milvus`), else in the
in-process index (`lexical.lexical_index`, e.g. on a 2.3.5 server). Both score the same terms
(`assetrag.words`) with the same BM25 (k1 1.2, b 0.75), and the fusion, the weight, the re-ranking and what
follows are this module's either way: Milvus' `hybrid_search` would fuse inside the server, but its `RRFRanker`
takes no per-side weight (the library's lexical weight) and its `WeightedRanker` fuses normalised scores, not
ranks, and it returns only the fused score, while the re-ranking and the hits need each side's cosine, BM25
score and rank — so the two sides are two Milvus searches fused here (docs/quality.md, "Lexical search in
Milvus").
"""

from __future__ import annotations

import numpy as np

from assetrag.search.lexical import (
    fetch_rows,
    lexical_index,
    sampled_informativeness,
    tokenize,
    uses_milvus,
)
from assetrag.search.lexical import lexical_weight as weight_of
from assetrag.search.query import Query, SearchHit
from assetrag.search.rerank import BM25_WEIGHT, reorder, score_mix
from assetrag.store import LEXICAL_IN_PROCESS, LEXICAL_MILVUS, MAX_K, SCALAR_FIELDS, Store

RRF_K = 60  # reciprocal-rank fusion constant (Cormack et al. 2009)
RRF_LEXICAL_WEIGHT = 1.0  # weight of the lexical rank in the fusion (the vector rank has 1.0), times the library's w
HYBRID_CANDIDATES = 100  # vector and lexical candidates fused (at least k + offset of each)


def hybrid_search(
    store: Store, vec: np.ndarray, q: Query, text: str | None = None
) -> tuple[list[SearchHit], float | None, str | None]:
    """Reciprocal-rank fusion of the vector top-N and the lexical top-N (see the module doc): the hits, the
    lexical weight used and which BM25 ran (`LEXICAL_MILVUS` / `LEXICAL_IN_PROCESS`; both None when the query
    had no index terms). `text`: what the lexical side searches (default `q.text`; a French query adds its
    English translation)."""
    want = q.k + q.offset
    rerank = q.rerank if q.rerank_n > 1 else None
    n = min(MAX_K, max(want, HYBRID_CANDIDATES, q.rerank_n if rerank else 0))
    flt = q.filter()
    vhits = store.search(vec[None, :], n, filter=flt, fields=SCALAR_FIELDS)[0]
    fields = {h.id: h.fields for h in vhits}
    cosine = {h.id: h.score for h in vhits}
    vrank = {h.id: i + 1 for i, h in enumerate(vhits)}

    lexical: list[str] = []
    bm25: dict[str, float] = {}
    weight: float | None = None  # the library's lexical weight (its informativeness, `search.lexical`)
    path: str | None = None
    terms = tokenize(q.text or "" if text is None else text)
    if terms and uses_milvus(store):
        path, weight = LEXICAL_MILVUS, weight_of(sampled_informativeness(store))
    elif terms:
        index = lexical_index(store)
        path, weight = LEXICAL_IN_PROCESS, index.lexical_weight
    if terms and weight:
        if path == LEXICAL_MILVUS:  # BM25 in Milvus, through the same filter as the vector side
            got = store.text_search(" ".join(terms), n, filter=flt)
            # ties by id, as the in-process index breaks them (it holds the rows in id order)
            found_scores = sorted(((h.id, h.score) for h in got), key=lambda x: (-x[1], x[0]))
        else:
            allow = index.allow(q.collections, q.tags, q.any_tags, q.source)
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
        return f + (RRF_LEXICAL_WEIGHT * (weight or 0.0) / (RRF_K + lrank[rid]) if rid in lrank else 0.0)

    order = sorted(fields, key=lambda rid: (-fused(rid), -cosine[rid], rid))
    rescored: dict[str, float] = {}
    if rerank:  # re-rank the first rerank_n of the fused list (`assetrag.rerank`)
        head = order[: q.rerank_n]
        bm = [bm25[r] if r in lrank else 0.0 for r in head]
        scores = score_mix([cosine[r] for r in head], bm, BM25_WEIGHT * (weight or 0.0))
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
    return out, weight, path
