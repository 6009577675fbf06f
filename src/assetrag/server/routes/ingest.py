"""Ingest a folder on the server, or uploaded files, as a background job."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile, status
from fastapi.responses import JSONResponse

from assetrag.errors import PruneRefused
from assetrag.ingest import IngestReport
from assetrag.server.jobs import Job
from assetrag.server.schemas import IngestFolder, UploadResult
from assetrag.server.schemas import Job as JobOut
from assetrag.server.security import PathRefused, resolve_request_path
from assetrag.server.state import AppState, get_state
from assetrag.server.uploads import discard_unused, safe_name, save_uploads

router = APIRouter(tags=["ingest"])


def start_ingest(
    state: AppState,
    paths: list[str],
    *,
    collection: str | None,
    tags: list[str],
    params: dict,
    prune: bool = False,
    max_delete: int | str | None = None,
    force: bool = False,
    dry_run: bool = False,
    done: Callable[[IngestReport | None], None] | None = None,
    extra: dict[str, Any] | None = None,
) -> Job:
    """An ingest job. Its result is the report with paths named relative to the server's folders; a refused
    prune ends the job `failed` with the reasons as `error` and the report (the rest of the run was done) as
    `result`. `done(report or None)` runs after the ingest, whatever happened; `extra` joins the result."""

    def work(job: Job) -> dict[str, Any]:
        report: IngestReport | None = None
        try:
            state.ensure_model()
            report = state.library.ingest(
                paths,
                collection=collection,
                tags=tags,
                prune=prune,
                progress=job,
                max_delete=max_delete,
                force=force,
                dry_run=dry_run,
            )
        finally:
            state.invalidate()
            if done is not None:
                done(report)
        out = report.to_dict()
        out["errors"] = [
            {"path": state.client_text(e.path), "reason": state.client_text(e.reason)} for e in report.errors
        ]
        for key in ("refused", "would_prune", "held_back", "missing_roots"):
            out[key] = [state.client_text(text) for text in getattr(report, key)]
        out.update(extra or {})
        if report.refused:
            raise PruneRefused("prune refused: " + "; ".join(out["refused"]), result=out)
        return out

    return state.jobs.submit("ingest", work, params)


INGEST_HELP = """Ingest a folder inside the server's roots as a background job; poll `/api/jobs/{id}`.

`prune: true` also removes stored files gone from disk, but only under a folder that could be listed in this
run and that holds images or videos, and at most `max_delete` assets (`N` or `P%` of the library, default 10%). When a
prune is held back (a missing, unreadable or empty folder; too many deletions) the job ends with status
`failed`, `error` says why (and that `force: true` prunes anyway), and `result` is the ingest report — new and
changed files were still ingested; `result.refused` lists the reasons and `result.held_back` the paths kept.
`dry_run: true` changes nothing (it reads new files' bytes, as a real run would, to tell a moved file from a
deleted one) and lists in `result.would_prune` what a prune would remove. Paths in results and errors are
relative to the server's roots."""


@router.post(
    "/ingest",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ingest a folder on the server (a job; poll /api/jobs/{id})",
    description=INGEST_HELP,
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
        max_delete=body.max_delete,
        force=body.force,
        dry_run=body.dry_run,
        params={**body.model_dump(), "path": str(real)},
    )
    return job.to_dict()


UPLOAD_HELP = """Upload images and ingest them as a background job; poll `/api/jobs/{id}`.

Each file is checked before it is saved (size limit, an accepted format, the whole image decodes, not a
decompression bomb). Per file: `saved` (being ingested by `job`) or `rejected` with the reason.

* every file accepted: **202** with the job;
* some rejected: **422**, the same body — the good files are saved and ingested by `job` all the same, the
  rejected ones are not saved; `detail` names them;
* none accepted: **413** (all too large) or **415**, with the reason per file in `detail`.

A saved file the ingest then cannot take is deleted again (no upload stays saved but not in the library); the
job's `result.errors` and `result.discarded` name it. Reasons name the client's own file names; errors in
the job's result name paths relative to the upload folder."""


@router.post(
    "/ingest/uploads",
    response_model=UploadResult,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Upload images (checked, size-limited) and ingest them (a job)",
    description=UPLOAD_HELP,
    responses={422: {"model": UploadResult, "description": "some files were rejected; the others are ingested"}},
)
async def ingest_uploads(
    state: Annotated[AppState, Depends(get_state)],
    files: Annotated[list[UploadFile], File(description="image files")],
    collection: Annotated[str | None, Form(max_length=256)] = None,
    tag: Annotated[list[str] | None, Form()] = None,
) -> Any:
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

    def discard(report: IngestReport | None) -> None:
        failed = {e.path for e in report.errors} if report is not None else None
        ingested = None if failed is None else {s.path for s in saved if s.path not in failed}
        discarded.extend(discard_unused(saved, ingested))

    discarded: list[str] = []
    job = start_ingest(
        state,
        [s.path for s in saved],
        collection=coll,
        tags=tags,
        params={"files": [s.path for s in saved], "collection": coll, "tags": tags},
        done=discard,
        extra={"discarded": discarded},
    )
    out["job"] = job.to_dict()
    if rejected:
        detail = f"{len(rejected)} of {len(files)} file(s) rejected, the others are being ingested: " + "; ".join(
            f"{r.name}: {r.reason}" for r in rejected
        )
        return JSONResponse({**out, "detail": detail, "error": "SomeFilesRejected"}, status_code=422)
    return out
