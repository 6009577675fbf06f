"""Search by text, by an uploaded image, or both."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile, status
from fastapi import Query as Param
from starlette.concurrency import run_in_threadpool

from assetrag.decode import decode_bytes
from assetrag.search import DEFAULT_MODE, DEFAULT_RERANK, LANGS, MODES, RERANKERS, Query
from assetrag.server.routes.common import Filters, Paging, filters, paging
from assetrag.server.schemas import MAX_LIMIT, SearchPage
from assetrag.server.state import AppState, get_state
from assetrag.server.uploads import check_image, format_mb

router = APIRouter(tags=["search"])

#: the search modes (`search.MODES`); a value outside them is a 422 that names the field and the choices
Mode = Literal[MODES]  # type: ignore[valid-type]
Lang = Literal[LANGS]  # type: ignore[valid-type]
LANG_HELP = (
    "the text's language: auto (detect; with the offline models a non-English text goes through the multilingual "
    "text encoder), en, multi, or a language code; CLIP-family models use their own text tower"
)
Rerank = Literal[("none", *RERANKERS)]  # type: ignore[valid-type]
RERANK_HELP = (
    "re-rank the top 100 of a hybrid search: none, or scores (by cosine and BM25 scores, standardised, instead of "
    "ranks; each hit's rerank_score); see docs/quality.md"
)
MODE_HELP = "hybrid (default for text: meaning fused with file-name/tag/caption matches) or vector (meaning only)"
UNDERSTAND_HELP = (
    "read collection / tag / year names written in the text as filters, e.g. 'a red cape from the lunar-2025 "
    "collection' (as `assetrag search` does; false: search the words as given)"
)


GROUP_HELP = (
    "a video once, at its best moment (its other matching moments in `moments`); default: once per matching "
    "keyframe, each with its `time`"
)


def _search(
    state: AppState,
    text: str | None,
    image: Any,
    f: Filters,
    p: Paging,
    text_weight: float,
    mode: str,
    understand: bool,
    lang: str = "auto",
    rerank: str = DEFAULT_RERANK or "none",
    group_videos: bool = False,
) -> dict:
    state.ensure_model()
    q = Query(
        text=text or None,
        image=image,
        k=p.limit,
        offset=p.offset,
        text_weight=text_weight,
        mode=mode,
        lang=lang,
        rerank=None if rerank == "none" else rerank,
        understand=understand,
        group_videos=group_videos,
        **f.kwargs(),
    )
    result = state.library.query(q)  # the one query path: the CLI prints the same object
    return {
        **p.page([state.hit_dict(h) for h in result]),
        "mode": mode if text and text.strip() else "vector",
        "understood": result.understood_dict(),
        "notes": result.notes,
        "lexical_weight": result.lexical_weight,
        "lexical": result.lexical,
        "weak_below": result.weak_below,
        "weak_from": result.weak_from,
    }


@router.get("/search", response_model=SearchPage, summary="Search by text")
def search_text(
    q: Annotated[str, Param(min_length=1, max_length=1000, description="what to look for, in words")],
    f: Annotated[Filters, Depends(filters)],
    p: Annotated[Paging, Depends(paging)],
    state: Annotated[AppState, Depends(get_state)],
    mode: Annotated[Mode, Param(description=MODE_HELP)] = DEFAULT_MODE,
    understand: Annotated[bool, Param(description=UNDERSTAND_HELP)] = True,
    lang: Annotated[Lang, Param(description=LANG_HELP)] = "auto",
    rerank: Annotated[Rerank, Param(description=RERANK_HELP)] = DEFAULT_RERANK or "none",
    group_videos: Annotated[bool, Param(description=GROUP_HELP)] = False,
) -> dict:
    return _search(state, q, None, f, p, 0.5, mode, understand, lang, rerank, group_videos)


@router.post("/search", response_model=SearchPage, summary="Search by an uploaded image, text, or both")
async def search_image(
    state: Annotated[AppState, Depends(get_state)],
    image: Annotated[UploadFile | None, File(description="query image")] = None,
    q: Annotated[str | None, Form(max_length=1000)] = None,
    collection: Annotated[list[str] | None, Form()] = None,
    tag: Annotated[list[str] | None, Form()] = None,
    source: Annotated[str | None, Form(pattern="^(ingested|synthetic)$")] = None,
    min_score: Annotated[float | None, Form(ge=-1.0, le=1.0)] = None,
    media: Annotated[str | None, Form(pattern="^(image|video_frame)$")] = None,
    text_weight: Annotated[float, Form(ge=0.0, le=1.0, description="text share when both are given")] = 0.5,
    mode: Annotated[Mode, Form(description=MODE_HELP)] = DEFAULT_MODE,
    understand: Annotated[bool, Form(description=UNDERSTAND_HELP)] = True,
    lang: Annotated[Lang, Form(description=LANG_HELP)] = "auto",
    rerank: Annotated[Rerank, Form(description=RERANK_HELP)] = DEFAULT_RERANK or "none",
    group_videos: Annotated[bool, Form(description=GROUP_HELP)] = False,
    offset: Annotated[int, Form(ge=0, le=16000)] = 0,
    limit: Annotated[int, Form(ge=1, le=MAX_LIMIT)] = 24,
) -> dict:
    query_image = None
    if image is not None and (image.filename or image.size):
        limit_bytes = state.config.max_upload_bytes
        data = await image.read(limit_bytes + 1)
        if len(data) > limit_bytes:
            raise HTTPException(
                413,  # (the constant was renamed across Starlette versions)
                f"the query image is larger than the {format_mb(limit_bytes)} upload limit",
            )
        name = image.filename or "query image"
        check_image(data, name)
        query_image = decode_bytes(data, name).image
    if query_image is None and not (q and q.strip()):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "give a text query, an image, or both")
    f = filters(collection, tag, source, min_score, media)
    return await run_in_threadpool(
        _search,
        state,
        q,
        query_image,
        f,
        Paging(offset, limit),
        text_weight,
        mode,
        understand,
        lang,
        rerank,
        group_videos,
    )
