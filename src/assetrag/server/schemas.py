"""Request and response bodies (they are what /docs shows)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model

from assetrag.search import SearchHit
from assetrag.search import Understood as _Understood

T = TypeVar("T")

MAX_LIMIT = 200
#: the bounds of a generate request's `timeout_s` (seconds)
MIN_TIMEOUT_S, MAX_TIMEOUT_S = 1, 600


def model_of(cls: type, name: str, doc: str, *, config: ConfigDict | None = None, **extra: Any) -> type[BaseModel]:
    """A pydantic model with the fields of dataclass `cls` (same names, types and defaults) plus `extra`
    (name=(type, default)): the dataclass stays the one place a field is declared."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = Field(default_factory=f.default_factory)
        else:
            default = ...
        fields[f.name] = (hints[f.name], default)
    model = create_model(name, __config__=config, __doc__=doc, __module__=__name__, **fields, **extra)
    return model


#: a stored asset: `search.SearchHit`'s fields, plus the URLs of its image and thumbnail
Asset = model_of(
    SearchHit,
    "Asset",
    """A stored asset. `rank` is its place in the list; `score` its cosine similarity to the query (1.0
    outside a search). Hybrid text searches order by `fused_score` (`vector_rank` / `lexical_rank` say how
    it got its place), or by `rerank_score` with `rerank=scores`, so `score` need not decrease.""",
    config=ConfigDict(extra="allow"),
    image_url=(str, ...),
    thumb_url=(str, ...),
)

#: one filter read from a query (`search.Understood`)
UnderstoodFilter = model_of(_Understood, "UnderstoodFilter", "One collection / tag filter read from the query.")


class AssetDetail(Asset):
    file_available: bool = Field(description="whether the server may serve the file (it exists, inside a root)")
    references: list[dict[str, Any]] = Field(
        default=[], description="for synthetic assets: the stored assets named in the lineage"
    )


class Page(BaseModel, Generic[T]):
    """One page of a list. Ask for the next with `offset=next_offset` (null on the last page)."""

    items: list[T]
    offset: int
    limit: int
    next_offset: int | None
    total: int | None = Field(None, description="the total count when it is cheap to know, else null")


class IngestFolder(BaseModel):
    path: str = Field(description="a folder (or file) inside one of the server's roots")
    collection: str | None = Field(None, max_length=256)
    tags: list[str] = Field(default=[], max_length=64)
    prune: bool = Field(False, description="also remove stored files gone from disk (see the route's description)")
    max_delete: str = Field(
        "10%", pattern=r"^\d+(\.\d+)?%?$", description="prune at most this many assets: N, or P% of the library"
    )
    force: bool = Field(False, description="prune even under a missing/empty folder and beyond max_delete")
    dry_run: bool = Field(False, description="change nothing; list what a prune would remove (result.would_prune)")


class JobProgress(BaseModel):
    total: int | None
    done: int
    fraction: float | None
    description: str


class Job(BaseModel):
    id: str
    kind: str
    status: str = Field(description="queued | running | done | failed")
    params: dict[str, Any]
    progress: JobProgress
    result: Any = None
    error: str | None = None
    created: float
    started: float | None
    finished: float | None
    elapsed_s: float | None


class UploadResult(BaseModel):
    saved: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    job: Job | None


class PlanRequest(BaseModel):
    brief: str = Field(min_length=1, max_length=4000, description="what to make, in words")
    backend: str | None = Field(None, description="generator backend: board (offline), gemini, openai, diffusers")
    max_refs: int | None = Field(None, ge=1, le=64, description="send at most this many references")
    collection: str | None = Field(None, description="retrieve item references from this collection only")
    style_collection: str | None = Field(None, description="brand/style references come from this collection")
    include_synthetic: bool = Field(False, description="let generated images serve as references")


class GenerateRequest(PlanRequest):
    refs: dict[str, list[str]] | None = Field(
        None,
        description="the references to send, as the user edited the plan: brief item → asset ids, in order "
        "('style' for brand/style references, 'whole brief' for whole-brief matches, any other label for "
        "extra references). Omitted: the plan's own choice",
    )
    aspect_ratio: str | None = None
    size: str | None = None
    seed: int | None = None
    timeout_s: float | None = Field(
        None,
        ge=MIN_TIMEOUT_S,
        le=MAX_TIMEOUT_S,
        description="seconds one request to the backend may take (a request that runs past it fails the job and is "
        "not retried); default: the server's ASSETRAG_GENERATION_TIMEOUT (120 unless set)",
    )
    min_fidelity: float | None = Field(None, ge=-1.0, le=1.0, description="flag results below this fidelity")
    store_back: bool | None = Field(
        None, description="add the result to the library as a synthetic asset (default: yes, except for board)"
    )


class Understanding(BaseModel):
    """What query understanding read from the text (`search.Understanding.to_dict()`)."""

    original: str = Field(description="the query as written")
    text: str = Field(description="the words searched for once the names were taken out")
    filters: list[UnderstoodFilter] = Field(  # type: ignore[valid-type]
        description="collection / tag filters found in the query: the words they came from, the field, the "
        "library's value(s)"
    )
    applied: bool = Field(
        description="whether they were used: filters set explicitly (collection=, tag=) win over understood ones"
    )
    description: str = Field(description="the same in one line, as `assetrag search` prints it")


class SearchPage(Page[Asset]):  # type: ignore[valid-type]
    """A page of search results, with how the query was read."""

    mode: str = Field(description="the search mode used: hybrid or vector (image-only searches are vector)")
    understood: Understanding | None = Field(
        None, description="what `understand` read from the text; null when it was off or there was no text"
    )
    notes: list[str] = Field(default_factory=list, description="how the query was read, e.g. the text encoder used")
    lexical_weight: float | None = Field(
        None,
        description="hybrid text searches: the weight of the file-name/tag/caption side, the library's "
        "informativeness (0: names carry no words, e.g. a camera roll, and the order is the vector order; 1: full)",
    )
    lexical: str | None = Field(
        None,
        description="hybrid text searches: which BM25 ran — 'milvus-bm25' (Milvus' full-text search) or "
        "'in-process bm25' (backends without it, e.g. a Milvus server before 2.5); null without a lexical side",
    )
    weak_below: float | None = Field(
        None,
        description="text searches with a calibrated model: the cosine under which hits are weak matches "
        "(docs/quality.md, 'No good match'); null otherwise",
    )
    weak_from: int | None = Field(
        None, description="index in `items` of the first weak hit (every item from there on has weak=true), or null"
    )


class Health(BaseModel):
    status: str
    version: str
    library: str
    exists: bool
    model_loaded: bool
    auth: bool
