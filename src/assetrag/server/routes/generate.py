"""Generation grounded on the library: plan (brief → items → chosen references), edit, then run as a job.

The RAG loop is `assetrag.rag`; this module calls

    plan = rag.plan(lib, brief, backend=, refs=<cap>, collection=, style_collection=, include_synthetic=)
    result = rag.run(lib, plan, options=GenerationOptions, out=<file>, min_fidelity=, store_back=)

`GenerationOptions.timeout_s` is the request's `timeout_s`, else the server's `generation_timeout_s` setting.

The page lets the user swap or remove references; it sends its choice back as `refs` (brief item →
asset ids). The server re-plans and replaces the plan's chosen references with those assets, each
looked up in the library by id: a client can only ever point at stored assets, never at a file path.

Images of the user's own (a player's photo, an artist's illustration) come as a multipart request: the JSON
body as the form field `request`, each image as a file field `ref` (`GIVEN_FIELD`). They are references for
this generation only, never ingested: `/plan` checks them and removes them after planning; `/generate` keeps
them in the server's generated folder (`given/<sha256 prefix>/<file name>`), where the output's lineage names
them (sha256 as `id`, file name, path). An item of the brief that points at one ("this character", "ce
personnage") is bound to it instead of searched (`rag.plan`'s `given`). An edited `refs` sent with them may name
them by sha256, as the plan did: those stay given references (`apply_choices`), never looked up in the library.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, UploadFile, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from assetrag import rag
from assetrag.errors import QueryError
from assetrag.rag import Plan
from assetrag.server.jobs import Job
from assetrag.server.schemas import GenerateRequest, PlanRequest
from assetrag.server.schemas import Job as JobOut
from assetrag.server.security import ASSET_ID_RE, require_token_or_signature
from assetrag.server.state import AppState, get_state
from assetrag.server.uploads import Saved, save_uploads

router = APIRouter(prefix="/generate", tags=["generate"])
media = APIRouter(prefix="/generate", tags=["generate"], dependencies=[Depends(require_token_or_signature)])

DEFAULT_BACKEND = "board"
M = TypeVar("M", bound=BaseModel)
GIVEN_FIELD = "ref"  # the multipart file field of the user's own reference images
MAX_GIVEN = 8  # of them, per request


def _multipart_doc(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a route that reads JSON or multipart itself (FastAPI cannot declare both). The model's schema
    is inlined: FastAPI adds to `components` only the models its routes declare, so a `$ref` would dangle."""
    ref = model.model_json_schema()
    form = {
        "type": "object",
        "required": ["request"],
        "properties": {
            "request": {"type": "string", "description": f"the {model.__name__} as JSON"},
            GIVEN_FIELD: {"type": "array", "items": {"type": "string", "format": "binary"}},
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ref}, "multipart/form-data": {"schema": form}},
        }
    }


async def read_request(request: Request, model: type[M]) -> tuple[M, list[UploadFile]]:
    """The body (JSON, or multipart: the JSON as field `request` plus `ref` image files) and the files."""
    files: list[UploadFile] = []
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form(max_files=MAX_GIVEN, max_fields=8)
            raw = form.get("request")
            if not isinstance(raw, str):
                raise HTTPException(
                    status.HTTP_400_BAD_REQUEST, "a multipart request needs its JSON as field 'request'"
                )
            body = model.model_validate_json(raw)
            files = [f for f in form.getlist(GIVEN_FIELD) if not isinstance(f, str)]
        else:
            body = model.model_validate(await request.json())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    except json.JSONDecodeError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"the body is not JSON: {exc}") from exc
    return body, files


async def save_given(state: AppState, files: list[UploadFile], dest: Path) -> list[Saved]:
    """Check and save the user's own reference images under `dest/<sha256 prefix>/`; any bad one is a 400."""
    saved: list[Saved] = []
    for f in files:
        data = await f.read(state.config.max_upload_bytes + 1)
        await f.seek(0)
        folder = dest / hashlib.sha256(data).hexdigest()[:16]
        ok, rejected = await save_uploads([f], folder, max_bytes=state.config.max_upload_bytes)
        if rejected:
            code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if rejected[0].too_large else status.HTTP_400_BAD_REQUEST
            raise HTTPException(code, f"reference image {rejected[0].name!r}: {rejected[0].reason}")
        saved += ok
    return saved


def make_plan(state: AppState, body: PlanRequest | GenerateRequest, given: list[Saved] = ()) -> Plan:
    state.ensure_model()
    plan = rag.plan(
        state.library,
        body.brief,
        given=[g.path for g in given],
        backend=body.backend or DEFAULT_BACKEND,
        refs=body.max_refs,
        collection=body.collection or None,
        style_collection=body.style_collection or None,
        include_synthetic=body.include_synthetic,
    )
    refs = getattr(body, "refs", None)
    if refs is not None:
        apply_choices(state, plan, refs, given)  # an unknown id or too many: QueryError → 400
    return plan


def apply_choices(state: AppState, plan: Plan, refs: dict[str, list[str]], given: list[Saved]) -> None:
    """`rag.apply_choices`, where `refs` may also name the images uploaded with this request (by sha256, as the
    plan gave them): those are not in the library, so they stay the plan's given references (first, as the
    planner orders them); one the user left out is dropped like any other reference."""
    own = {g.id for g in given}
    mine = {r.id: r for r in (*plan.dropped, *plan.chosen) if r.role == "given" and r.id in own}
    kept = list({i: mine[i] for ids in refs.values() for i in ids if i in mine}.values())
    stored = {label: [i for i in ids if i not in mine] for label, ids in refs.items()}
    rag.apply_choices(state.library, plan, {label: ids for label, ids in stored.items() if ids})
    kept_ids = {r.id for r in kept}
    for r in kept:
        r.note = ""  # rag.apply_choices marked them "removed by the user": they were not
    plan.dropped = [r for r in plan.dropped if r.id not in kept_ids]
    plan.chosen = kept + plan.chosen
    if len(plan.chosen) > plan.limit:
        raise QueryError(
            f"{len(plan.chosen)} references chosen but the {plan.backend} backend takes at most {plan.limit}; "
            "remove some"
        )


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
def backends(state: Annotated[AppState, Depends(get_state)]) -> dict[str, Any]:
    """`items`: the backend names; `backends`: each one's `available` and, when not, the `reason` (the server
    setting or package it lacks, e.g. "set GEMINI_API_KEY on the server": never a key's value); `uploads`: how
    many of the user's own images (`max_files`) of how many bytes each (`max_bytes`) a request may carry."""
    from assetrag.generation import generator_availability, list_generators

    return {
        "items": list_generators(),
        "default": DEFAULT_BACKEND,
        "backends": generator_availability(),
        "uploads": {"max_files": MAX_GIVEN, "max_bytes": state.config.max_upload_bytes},
    }


@router.post(
    "/plan",
    summary="Plan a generation: the brief's items, candidates and the chosen references",
    openapi_extra=_multipart_doc(PlanRequest),
)
async def plan(request: Request, state: Annotated[AppState, Depends(get_state)]) -> dict[str, Any]:
    body, files = await read_request(request, PlanRequest)
    if not files:
        planned = await run_in_threadpool(make_plan, state, body)
        return state.with_urls(planned.to_dict())
    assert state.config.generated_dir is not None
    Path(state.config.generated_dir).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".plan-", dir=state.config.generated_dir))
    try:  # a plan only looks at them: they are gone when it is answered
        given = await save_given(state, files, scratch)
        planned = await run_in_threadpool(make_plan, state, body, given)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return state.with_urls(_client_paths(planned.to_dict(), given))


def _check_runnable(backend: str) -> None:
    """400 now, with the reason, for a backend this server cannot run (a missing key, package or checkpoint
    setting) — not a job that fails later."""
    from assetrag.generation import why_unavailable

    reason = why_unavailable(backend)
    if reason is not None:
        name = backend.strip().partition(":")[0].lower()
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"the {name} backend cannot run here: {reason}")


def _client_paths(value: Any, given: list[Saved]) -> Any:
    """`value` with the server paths of the given images replaced by the names the client sent."""
    names = {g.path: g.name for g in given}
    if isinstance(value, dict):
        return {
            k: names.get(v, v) if k == "path" and isinstance(v, str) else _client_paths(v, given)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_client_paths(v, given) for v in value]
    return value


@router.post(
    "",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Generate from a brief, with the references the user chose (a job; poll /api/jobs/{id})",
    openapi_extra=_multipart_doc(GenerateRequest),
)
async def generate(request: Request, state: Annotated[AppState, Depends(get_state)]) -> dict:
    body, files = await read_request(request, GenerateRequest)
    _check_refs(body.refs)
    assert state.config.generated_dir is not None
    given = await save_given(state, files, Path(state.config.generated_dir) / "given")
    # a bad choice is a 400 now, not a failed job
    planned = await run_in_threadpool(make_plan, state, body, given)
    _check_runnable(planned.backend)
    from assetrag.generation import GenerationOptions

    opts: dict[str, Any] = {k: v for k, v in (("aspect_ratio", body.aspect_ratio), ("size", body.size)) if v}
    if body.seed is not None:  # 0 is a seed like any other
        opts["seed"] = body.seed
    # the request's timeout, else the server's setting (ASSETRAG_GENERATION_TIMEOUT)
    timeout_s = body.timeout_s if body.timeout_s is not None else state.library.settings.generation_timeout_s
    options = GenerationOptions(timeout_s=timeout_s, **opts)

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
    if given:
        params["given"] = [{"name": g.name, "id": g.id} for g in given]
    return state.jobs.submit("generate", work, params).to_dict()


@media.get("/{job_id}/image", response_class=FileResponse, summary="The image a generate job made")
def generated_image(job_id: str, state: Annotated[AppState, Depends(get_state)]) -> FileResponse:
    if not re.fullmatch(r"[0-9a-f]{32}", job_id):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "not a job id")
    path = _output_path(state, job_id)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no image for this job (yet)")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
