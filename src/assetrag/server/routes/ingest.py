"""Ingest a folder on the server, or uploaded files, as a background job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile, status

from assetrag.server.jobs import Job
from assetrag.server.schemas import IngestFolder, UploadResult
from assetrag.server.schemas import Job as JobOut
from assetrag.server.security import PathRefused, resolve_request_path
from assetrag.server.state import AppState, get_state
from assetrag.server.uploads import safe_name, save_uploads

router = APIRouter(tags=["ingest"])


def start_ingest(
    state: AppState, paths: list[str], *, collection: str | None, tags: list[str], prune: bool, params: dict
) -> Job:
    def work(job: Job) -> dict[str, Any]:
        state.ensure_model()
        try:
            report = state.library.ingest(paths, collection=collection, tags=tags, prune=prune, progress=job)
        finally:
            state.invalidate()
        return report.to_dict()

    return state.jobs.submit("ingest", work, params)


@router.post(
    "/ingest",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ingest a folder on the server (a job; poll /api/jobs/{id})",
)
def ingest_folder(body: IngestFolder, state: Annotated[AppState, Depends(get_state)]) -> dict:
    try:
        real = resolve_request_path(body.path, state.read_roots)
    except PathRefused as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    job = start_ingest(
        state,
        [str(real)],
        collection=body.collection or None,
        tags=[t for t in body.tags if t.strip()],
        prune=body.prune,
        params={"path": str(real), "collection": body.collection, "tags": body.tags, "prune": body.prune},
    )
    return job.to_dict()


@router.post(
    "/ingest/uploads",
    response_model=UploadResult,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Upload images (checked, size-limited) and ingest them (a job)",
)
async def ingest_uploads(
    state: Annotated[AppState, Depends(get_state)],
    files: Annotated[list[UploadFile], File(description="image files")],
    collection: Annotated[str | None, Form(max_length=256)] = None,
    tag: Annotated[list[str] | None, Form()] = None,
) -> dict:
    if len(files) > state.config.max_upload_files:
        raise HTTPException(
            413,  # (the constant was renamed across Starlette versions)
            f"{len(files)} files in one request; send at most {state.config.max_upload_files}",
        )
    coll = (collection or "").strip() or "uploads"
    assert state.config.upload_dir is not None
    dest = Path(state.config.upload_dir) / safe_name(coll, "uploads")
    saved, rejected = await save_uploads(files, dest, max_bytes=state.config.max_upload_bytes)
    out: dict[str, Any] = {
        "saved": [s.__dict__ for s in saved],
        "rejected": [{"name": r.name, "reason": r.reason} for r in rejected],
        "job": None,
    }
    if not saved:
        code = 413 if all(r.too_large for r in rejected) else status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
        raise HTTPException(code, "no file was accepted: " + "; ".join(f"{r.name}: {r.reason}" for r in rejected))
    tags = ["upload", *[t.strip() for t in tag or [] if t.strip()]]
    job = start_ingest(
        state,
        [s.path for s in saved],
        collection=coll,
        tags=tags,
        prune=False,
        params={"files": [s.path for s in saved], "collection": coll, "tags": tags},
    )
    out["job"] = job.to_dict()
    return out
