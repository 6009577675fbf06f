"""Request and response bodies (they are what /docs shows)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

MAX_LIMIT = 200


class Asset(BaseModel):
    """A stored asset. `rank` is its place in the list; `score` its cosine similarity to the query (1.0
    outside a search). Hybrid text searches order by `fused_score`, so `score` need not decrease."""

    model_config = ConfigDict(extra="allow")

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
    paths: list[str] = []
    lineage: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    image_url: str
    thumb_url: str


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
    prune: bool = False


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
    min_fidelity: float | None = Field(None, ge=-1.0, le=1.0, description="flag results below this fidelity")
    store_back: bool | None = Field(
        None, description="add the result to the library as a synthetic asset (default: yes, except for board)"
    )


class Health(BaseModel):
    status: str
    version: str
    library: str
    exists: bool
    model_loaded: bool
    auth: bool
