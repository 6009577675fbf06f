"""Generation grounded on the library: plan (brief → items → chosen references), edit, then run as a job.

The RAG loop is `assetrag.rag`; this module calls

    plan = rag.plan(lib, brief, backend=, refs=<cap>, collection=, style_collection=, include_synthetic=)
    result = rag.run(lib, plan, options=GenerationOptions, out=<file>, min_fidelity=, store_back=)

The page lets the user swap or remove references; it sends its choice back as `refs` (brief item →
asset ids). The server re-plans and replaces the plan's chosen references with those assets, each
looked up in the library by id: a client can only ever point at stored assets, never at a file path.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from assetrag.server.jobs import Job
from assetrag.server.schemas import GenerateRequest, PlanRequest
from assetrag.server.schemas import Job as JobOut
from assetrag.server.security import ASSET_ID_RE, require_token_or_signature
from assetrag.server.state import AppState, get_state
from assetrag.store import quote

router = APIRouter(prefix="/generate", tags=["generate"])
media = APIRouter(prefix="/generate", tags=["generate"], dependencies=[Depends(require_token_or_signature)])

DEFAULT_BACKEND = "board"
#: the labels rag gives references that stand for no brief item (see assetrag.rag.plan)
STYLE, WHOLE_BRIEF = "style", "whole brief"


def load_rag() -> ModuleType:
    """`assetrag.rag`, or 501 when this build has no RAG loop."""
    try:
        rag = importlib.import_module("assetrag.rag")
    except ModuleNotFoundError as exc:
        if exc.name != "assetrag.rag":
            raise
        raise HTTPException(
            status.HTTP_501_NOT_IMPLEMENTED, "generation is not available: this build has no assetrag.rag"
        ) from exc
    missing = [name for name in ("plan", "run") if not callable(getattr(rag, name, None))]
    if missing:
        raise HTTPException(
            status.HTTP_501_NOT_IMPLEMENTED,
            f"generation is not available: assetrag.rag has no {' or '.join(missing)}()",
        )
    return rag


def make_plan(rag: ModuleType, state: AppState, body: PlanRequest | GenerateRequest) -> Any:
    state.ensure_model()
    plan = rag.plan(
        state.library,
        body.brief,
        backend=body.backend or DEFAULT_BACKEND,
        refs=body.max_refs,
        collection=body.collection or None,
        style_collection=body.style_collection or None,
        include_synthetic=body.include_synthetic,
    )
    refs = getattr(body, "refs", None)
    if refs is not None:
        apply_choices(rag, state, plan, refs)
    return plan


def apply_choices(rag: ModuleType, state: AppState, plan: Any, refs: dict[str, list[str]]) -> None:
    """Make the user's references (item label → asset ids, in order) the plan's chosen ones.

    Each keeps the retrieval score the plan gave it for that item; one the plan never saw (picked from a
    search) is scored against the item's words (the whole brief for style and whole-brief references)."""
    items = {ip.item for ip in plan.items}
    known = {(c.item, c.id): c.score for ip in plan.items for c in ip.candidates}
    known.update({(r.item, r.id): r.score for r in (*plan.chosen, *plan.dropped)})
    chosen, seen = [], set()
    for label, ids in refs.items():
        role = "style" if label == STYLE else "brief" if label == WHOLE_BRIEF else "item" if label in items else "given"
        for rid in ids:
            if rid in seen:
                continue
            hit = state.library.get(rid)
            if hit is None:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, f"reference {rid} is not in this library")
            ref = rag.PlannedRef.from_hit(hit, label, role)
            score = known.get((label, rid))
            if score is None:
                text = label if role == "item" else plan.brief
                scored = state.library.search(text, k=1, where=f"id == {quote(rid)}")
                score = round(scored[0].score, 4) if scored else 0.0
            ref.score = score
            chosen.append(ref)
            seen.add(rid)
    if len(chosen) > plan.limit:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"{len(chosen)} references chosen but the {plan.backend} backend takes at most {plan.limit}; remove some",
        )
    removed = [r for r in plan.chosen if r.id not in seen]
    for r in removed:
        r.note = "removed by the user"
    plan.dropped = [r for r in plan.dropped if r.id not in seen] + removed
    plan.chosen = chosen
    plan.notes.append("references chosen by the user")


def _check_refs(refs: dict[str, list[str]] | None) -> None:
    for label, ids in (refs or {}).items():
        if any(not ASSET_ID_RE.match(i) for i in ids):
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, f"references for {label!r} must be asset ids (64 hex characters)"
            )


def _output_path(state: AppState, job_id: str) -> Path:
    assert state.config.generated_dir is not None
    return Path(state.config.generated_dir) / f"{job_id}.png"


def result_dict(state: AppState, job_id: str, result: Any) -> dict[str, Any]:
    """The JSON view of a `GenerationResult` from rag.run (the images themselves are served by URL)."""
    meta = result.metadata
    asset_id = meta.get("asset_id")
    stored = state.library.get(asset_id) if asset_id else None
    return {
        "backend": result.backend,
        "model": result.model,
        "prompt": result.prompt,
        "text": result.text,
        "finish_reason": result.finish_reason,
        "elapsed_s": round(result.elapsed_s, 3),
        "warnings": list(result.warnings),
        "reference_ids": list(result.reference_ids),
        "fidelity": meta.get("fidelity"),
        "flagged": bool(meta.get("flagged")),
        "width": result.image.width,
        "height": result.image.height,
        "output_url": state.signed(f"/api/generate/{job_id}/image"),
        "asset_id": asset_id,
        "asset": state.hit_dict(stored) if stored else None,
    }


@router.get("/backends", summary="Generator backends this server knows")
def backends() -> dict[str, Any]:
    try:
        from assetrag.generation import list_generators

        names = list_generators()
    except ImportError:
        names = []
    return {"items": names, "default": DEFAULT_BACKEND}


@router.post("/plan", summary="Plan a generation: the brief's items, candidates and the chosen references")
async def plan(body: PlanRequest, state: Annotated[AppState, Depends(get_state)]) -> dict[str, Any]:
    rag = load_rag()
    planned = await run_in_threadpool(make_plan, rag, state, body)
    return state.with_urls(planned.to_dict())


@router.post(
    "",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Generate from a brief, with the references the user chose (a job; poll /api/jobs/{id})",
)
async def generate(body: GenerateRequest, state: Annotated[AppState, Depends(get_state)]) -> dict:
    rag = load_rag()
    _check_refs(body.refs)
    planned = await run_in_threadpool(make_plan, rag, state, body)  # a bad choice is a 400 now, not a failed job
    opts = {k: v for k, v in (("aspect_ratio", body.aspect_ratio), ("size", body.size), ("seed", body.seed)) if v}
    options = None
    if opts:
        from assetrag.generation import GenerationOptions

        options = GenerationOptions(**opts)

    def work(job: Job) -> dict[str, Any]:
        job.step(f"generating with {planned.backend}")
        try:
            result = rag.run(
                state.library,
                planned,
                options=options,
                out=_output_path(state, job.id),
                min_fidelity=body.min_fidelity,
                store_back=body.store_back,
            )
        finally:
            state.invalidate()  # the output may have been stored back into the library
        return state.with_urls({"plan": planned.to_dict(), "result": result_dict(state, job.id, result)})

    params = body.model_dump(exclude_none=True)
    return state.jobs.submit("generate", work, params).to_dict()


@media.get("/{job_id}/image", response_class=FileResponse, summary="The image a generate job made")
def generated_image(job_id: str, state: Annotated[AppState, Depends(get_state)]) -> FileResponse:
    if not re.fullmatch(r"[0-9a-f]{32}", job_id):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "not a job id")
    path = _output_path(state, job_id)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no image for this job (yet)")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
