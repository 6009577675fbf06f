"""Generation grounded on the library: plan (brief → items → chosen references), edit, then run as a job.

The RAG loop is `assetrag.rag`; this module calls

    plan = rag.plan(lib, brief, backend=, refs=<cap>, collection=, style_collection=, include_synthetic=)
    result = rag.run(lib, plan, options=GenerationOptions, out=<file>, min_fidelity=, store_back=)

The page lets the user swap or remove references; it sends its choice back as `refs` (brief item →
asset ids). The server re-plans and replaces the plan's chosen references with those assets, each
looked up in the library by id: a client can only ever point at stored assets, never at a file path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from assetrag import rag
from assetrag.rag import Plan
from assetrag.server.jobs import Job
from assetrag.server.schemas import GenerateRequest, PlanRequest
from assetrag.server.schemas import Job as JobOut
from assetrag.server.security import ASSET_ID_RE, require_token_or_signature
from assetrag.server.state import AppState, get_state

router = APIRouter(prefix="/generate", tags=["generate"])
media = APIRouter(prefix="/generate", tags=["generate"], dependencies=[Depends(require_token_or_signature)])

DEFAULT_BACKEND = "board"


def make_plan(state: AppState, body: PlanRequest | GenerateRequest) -> Plan:
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
        rag.apply_choices(state.library, plan, refs)  # an unknown id or too many: QueryError → 400
    return plan


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


@router.get("/backends", summary="Generator backends this server knows, and which of them it can run")
def backends() -> dict[str, Any]:
    """`items`: the backend names; `backends`: each one's `available` and, when not, the `reason` (the server
    setting or package it lacks, e.g. "set GEMINI_API_KEY on the server": never a key's value)."""
    from assetrag.generation import generator_availability, list_generators

    return {"items": list_generators(), "default": DEFAULT_BACKEND, "backends": generator_availability()}


@router.post("/plan", summary="Plan a generation: the brief's items, candidates and the chosen references")
async def plan(body: PlanRequest, state: Annotated[AppState, Depends(get_state)]) -> dict[str, Any]:
    planned = await run_in_threadpool(make_plan, state, body)
    return state.with_urls(planned.to_dict())


@router.post(
    "",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Generate from a brief, with the references the user chose (a job; poll /api/jobs/{id})",
)
async def generate(body: GenerateRequest, state: Annotated[AppState, Depends(get_state)]) -> dict:
    _check_refs(body.refs)
    planned = await run_in_threadpool(make_plan, state, body)  # a bad choice is a 400 now, not a failed job
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
