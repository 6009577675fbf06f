"""Optional re-ranking of a hybrid search's top-N candidates (`Query.rerank`, `search.hybrid`), with any embedder.

`scores`: reciprocal-rank fusion keeps only each side's rank; this re-scores the fused top-N by the scores
themselves, z(cosine) + w · BM25_WEIGHT · z(BM25) (w: the library's lexical weight, its informativeness — 0 for a
camera roll, see `search.lexical`), each standardised over the N candidates (BM25 0 for a
candidate the words did not match). Standardising makes it scale-free — a CLIP cosine of 0.3 and an offline
model's 0.6 weigh alike, so it needs no per-model calibration — and it keeps what ranks throw away: how much
better the best name match is than the next, and, among equal name matches, which image is closer. With no
query word in any name, tag or caption it returns the vector ranking. It needs the lexical side: vector and
image-only searches are left as they are.

Measured in docs/quality.md ("Re-ranking"), with the pseudo-relevance feedback that was tried and dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from assetrag.errors import ConfigError, QueryError
from assetrag.store import MAX_K

RERANKERS = ("scores",)
DEFAULT_RERANK: str | None = "scores"  # on: docs/quality.md, "Re-ranking"
DEFAULT_RERANK_N = 100  # candidates re-ranked: the first N of the fused list
BM25_WEIGHT = 1.0  # weight of z(BM25) against z(cosine): equal, not tuned on the labelled sets


#: what turns re-ranking off where a method is named (`--rerank`, evaluate configurations)
OFF = ("", "none", "off", "no", "false")


def parse_rerank(value: str | None) -> str | None:
    """'none' / 'off' / '' → None; a method name as it is (an unknown one: `ConfigError`)."""
    v = (value or "").strip().lower()
    if v in OFF:
        return None
    if v not in RERANKERS:
        raise ConfigError(f"rerank takes none, {', '.join(RERANKERS)} (got {value!r})")
    return v


def check_rerank(method: str | None, n: int) -> None:
    if method is not None and method not in RERANKERS:
        raise QueryError(f"rerank must be one of {', '.join(RERANKERS)} (or none), got {method!r}")
    if not 0 <= n <= MAX_K:
        raise QueryError(f"rerank N must be between 0 and {MAX_K}, got {n}")


def standardise(x: Sequence[float] | np.ndarray) -> np.ndarray:
    """(x - mean) / std over the candidates; all zeros when they are all equal."""
    x = np.asarray(x, dtype=np.float64)
    std = float(x.std()) if x.size else 0.0
    return (x - x.mean()) / std if std > 1e-12 else np.zeros_like(x)


def score_mix(
    cosine: Sequence[float] | np.ndarray, bm25: Sequence[float] | np.ndarray, weight: float = BM25_WEIGHT
) -> np.ndarray:
    """The `scores` re-ranking score of each candidate: z(cosine) + weight · z(BM25)."""
    return standardise(cosine) + weight * standardise(bm25)


def reorder(scores: Sequence[float] | np.ndarray) -> list[int]:
    """Candidate positions best first by `scores`; ties keep the search's order."""
    s = np.asarray(scores, dtype=np.float64)
    return [int(i) for i in np.lexsort((np.arange(len(s)), -s))]
