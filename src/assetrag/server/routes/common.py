"""Parameters and helpers shared by the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query as Param

from assetrag.server.schemas import MAX_LIMIT


@dataclass(frozen=True)
class Paging:
    offset: int
    limit: int

    def page(self, items: list[Any], *, total: int | None = None, more: bool | None = None) -> dict[str, Any]:
        """A page; `more` defaults to "the page is full" (a search cannot know its total)."""
        if more is None:
            more = len(items) >= self.limit if total is None else self.offset + len(items) < total
        return {
            "items": items,
            "offset": self.offset,
            "limit": self.limit,
            "next_offset": self.offset + self.limit if more else None,
            "total": total,
        }


def paging(
    offset: Annotated[int, Param(ge=0, le=16000, description="skip this many")] = 0,
    limit: Annotated[int, Param(ge=1, le=MAX_LIMIT, description="page size")] = 24,
) -> Paging:
    return Paging(offset, limit)


@dataclass(frozen=True)
class Filters:
    collection: list[str]
    tags: list[str]
    source: str | None
    min_score: float | None
    media: str | None = None

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `Library.search` / `Query`."""
        return {
            "collection": self.collection or None,
            "tags": self.tags,
            "source": self.source,
            "min_score": self.min_score,
            "media": self.media,
        }


def filters(
    collection: Annotated[list[str] | None, Param(description="only these collections (repeatable)")] = None,
    tag: Annotated[list[str] | None, Param(description="only assets with all these tags (repeatable)")] = None,
    source: Annotated[str | None, Param(pattern="^(ingested|synthetic)$")] = None,
    min_score: Annotated[float | None, Param(ge=-1.0, le=1.0, description="drop hits below this")] = None,
    media: Annotated[
        str | None, Param(pattern="^(image|video_frame)$", description="only stills (image) or video keyframes")
    ] = None,
) -> Filters:
    return Filters(_clean(collection), _clean(tag), source or None, min_score, media or None)


def _clean(values: list[str] | None) -> list[str]:
    return [v.strip() for v in values or [] if v and v.strip()]
