"""Health, stats, facets and the job list."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status

from assetrag.config import __version__
from assetrag.server.routes.common import Paging, paging
from assetrag.server.schemas import Health, Job, Page
from assetrag.server.state import AppState, get_state

router = APIRouter(tags=["system"])


@router.get("/health", response_model=Health)
def health(state: Annotated[AppState, Depends(get_state)]) -> dict:
    return {
        "status": "ok",
        "version": __version__,
        "library": state.library.settings.library,
        "exists": state.exists(),
        "model_loaded": state.model_ready,
        "auth": state.config.api_token is not None,
    }


@router.get("/stats", summary="Count, model, store, per-collection and per-source counts")
def stats(state: Annotated[AppState, Depends(get_state)]) -> dict[str, Any]:
    info = state.library.stats()
    if isinstance(info.get("uri"), str):
        info["uri"] = re.sub(r"//[^/@]*@", "//", info["uri"])  # no credentials in a URL
    return info


@router.get("/facets", summary="Collections, tags and sources with counts (for filter menus)")
def facets(state: Annotated[AppState, Depends(get_state)]) -> dict[str, Any]:
    if not state.exists():
        return {"collections": [], "tags": [], "sources": []}
    return state.facets()


@router.get("/jobs", response_model=Page[Job], summary="Background jobs, newest first")
def list_jobs(p: Annotated[Paging, Depends(paging)], state: Annotated[AppState, Depends(get_state)]) -> dict:
    jobs = state.jobs.list()
    return p.page([j.to_dict() for j in jobs[p.offset : p.offset + p.limit]], total=len(jobs))


@router.get("/jobs/{job_id}", response_model=Job, summary="One job: status, progress, result or error")
def get_job(job_id: str, state: Annotated[AppState, Depends(get_state)]) -> dict:
    job = state.jobs.get(job_id) if re.fullmatch(r"[0-9a-f]{32}", job_id) else None
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id!r} (jobs are kept in memory only)")
    return job.to_dict()
