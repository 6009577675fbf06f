"""Search: text → image, image → image, text + image, with metadata filters and scores.

The `Query` object is the same for the CLI, the Python API and the REST API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from assetrag.decode import decode_file, to_rgb
from assetrag.embedding.base import Embedder, l2_normalise
from assetrag.errors import QueryError
from assetrag.store import SCALAR_FIELDS, Store, quote

SOURCES = ("ingested", "synthetic")


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


@dataclass
class SearchHit:
    """One result: the asset's stored fields and its cosine similarity to the query."""

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
        vecs.append((q.text_weight if has_image else 1.0, embedder.embed_texts([q.text.strip()])[0]))
    if q.vector is not None:
        v = l2_normalise(np.asarray(q.vector, dtype=np.float32))[0]
        vecs.append(((1.0 - q.text_weight) if has_text else 1.0, v))
    elif q.image is not None:
        img = load_query_image(q.image)
        vecs.append(((1.0 - q.text_weight) if has_text else 1.0, embedder.embed_images([img])[0]))
    combined = sum(w * v for w, v in vecs)
    return l2_normalise(np.asarray(combined, dtype=np.float32))[0]


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


def search(store: Store, embedder: Embedder, q: Query) -> list[SearchHit]:
    """Run `q` against `store`; hits best first, ranks from offset + 1."""
    q.validate()
    vec = query_vector(embedder, q)
    hits = store.search(vec[None, :], q.k, filter=build_filter(q), fields=SCALAR_FIELDS, offset=q.offset)[0]
    out = [SearchHit.from_fields(q.offset + i + 1, h.id, h.score, h.fields) for i, h in enumerate(hits)]
    if q.min_score is not None:
        out = [h for h in out if h.score >= q.min_score]
    return out
