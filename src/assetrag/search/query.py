"""The query and its answer: `Query` (what to look for, filters, mode), `SearchHit`, `SearchResult` (the hits
plus what was understood and which text encoder and language were used), the filter expression and the query
embedding. The same objects serve the CLI, the Python API and the REST API.
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
from assetrag.embedding.multilingual import AUTO, LANGUAGES, MULTI, check_lang, text_encoder
from assetrag.errors import QueryError
from assetrag.search.rerank import DEFAULT_RERANK, DEFAULT_RERANK_N, check_rerank
from assetrag.store import MAX_K
from assetrag.store import filters as F
from assetrag.store.schema import MEDIA_IMAGE, MEDIA_VIDEO_FRAME
from assetrag.video import moment_label

SOURCES = ("ingested", "synthetic")
MODES = ("vector", "hybrid")
LANGS = (AUTO, MULTI, *LANGUAGES)  # `Query.lang` values (auto: detect; multi: the multilingual encoder always)
DEFAULT_MODE = "hybrid"
MEDIA = (MEDIA_IMAGE, MEDIA_VIDEO_FRAME)  # `Query.media` values
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
    ids: Sequence[str] = ()  # only these assets (e.g. to score a given asset against a text)
    #: the text's language: None / "auto" (detect), "en", a code like "fr", or "multi". With an offline model a
    #: non-English text goes through the multilingual text side (`assetrag.embedding.multilingual`); other
    #: models always use their own text encoder.
    lang: str | None = None
    #: re-rank the first `rerank_n` candidates of a hybrid search: None (off) or "scores" (standardised cosine +
    #: BM25 instead of ranks; `assetrag.rerank`). Vector and image-only searches and N ≤ 1: no change.
    rerank: str | None = DEFAULT_RERANK
    rerank_n: int = DEFAULT_RERANK_N
    #: a video once, at its best moment (its other matching moments in `SearchHit.moments`), instead of once
    #: per matching keyframe
    group_videos: bool = False
    media: str | None = None  # only "image" or only "video_frame" rows

    def validate(self) -> None:
        if not (self.text and self.text.strip()) and self.image is None and self.vector is None:
            raise QueryError("give a text query, an image (--image FILE), or both")
        if not 1 <= self.k <= MAX_K:
            raise QueryError(f"k must be between 1 and {MAX_K}, got {self.k}")
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
        if self.media is not None and self.media not in MEDIA:
            raise QueryError(f"media must be one of {', '.join(MEDIA)}, got {self.media!r}")

    @property
    def collections(self) -> list[str]:
        """`collection` as a list (one name or several)."""
        if not self.collection:
            return []
        return [self.collection] if isinstance(self.collection, str) else list(self.collection)

    def filter(self) -> str:
        """The Milvus boolean expression for the filters ('' for none)."""
        return F.all_of(
            F.one_of("collection", self.collections),
            *(F.has_tag(t) for t in self.tags),
            F.has_any_tag(self.any_tags),
            F.eq("source", self.source) if self.source else "",
            F.eq("media", self.media) if self.media else "",
            F.ids_in(self.ids) if self.ids else "",
            F.raw(self.where),
        )

    @property
    def has_text(self) -> bool:
        return bool(self.text and self.text.strip())


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
    #: a weak match: it and every hit after it score under the model's calibrated cut-off (text queries;
    #: `SearchResult.weak_below`) and no word of the query matched them
    weak: bool = False
    media: str = MEDIA_IMAGE  # "image" | "video_frame"
    time: float | None = None  # a video frame: seconds into the video (`path`); None for a still
    video_id: str | None = None  # a video frame: the sha256 of the video file (its keyframes share it)
    #: with `Query.group_videos`: the times of this video's other matching moments, best first
    moments: list[float] = field(default_factory=list)

    @property
    def is_video(self) -> bool:
        return self.media == MEDIA_VIDEO_FRAME

    @property
    def label(self) -> str:
        """The file name, and for a video frame its time: `video.mp4 @ 12.5s`."""
        return moment_label(self.filename, self.time)

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
            media=f.get("media") or MEDIA_IMAGE,
            time=round(float(f["time"]), 3) if f.get("media") == MEDIA_VIDEO_FRAME else None,
            video_id=f.get("video_id") or None,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def group_by_video(hits: list[SearchHit], k: int) -> list[SearchHit]:
    """`hits` (best first) with each video kept once, at its best moment; the times of its other moments go
    to that hit's `moments`. At most `k`, ranked again from the first hit's rank."""
    out: list[SearchHit] = []
    best: dict[str, SearchHit] = {}
    for h in hits:
        if h.video_id and h.video_id in best:
            if h.time is not None:
                best[h.video_id].moments.append(h.time)
            continue
        if h.video_id:
            best[h.video_id] = h
        out.append(h)
    first = hits[0].rank if hits else 1
    for i, h in enumerate(out[:k]):
        h.rank = first + i
    return out[:k]


def build_filter(q: Query) -> str:
    """The Milvus boolean expression for the query's filters ('' for none)."""
    return q.filter()


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
