"""Assets: browse, detail, the image, a thumbnail, find-similar."""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi import Query as Param
from fastapi.responses import FileResponse, Response, StreamingResponse

from assetrag import objects
from assetrag.errors import BadImageError, BadVideoError, FileChangedError
from assetrag.library import NEAR_DUPLICATE_DISTANCE
from assetrag.search import SearchHit
from assetrag.server.routes.common import Filters, Paging, filters, paging
from assetrag.server.schemas import Asset, AssetDetail, Page
from assetrag.server.security import ASSET_ID_RE, check_asset_id, require_token_or_signature
from assetrag.server.state import AppState, get_state
from assetrag.video import is_video
from assetrag.video import media_type as video_media_type

router = APIRouter(tags=["assets"])
#: image routes accept a signed URL instead of the token (for <img src>); the rest of /api does not
media = APIRouter(tags=["assets"], dependencies=[Depends(require_token_or_signature)])

AssetId = Annotated[str, Depends(check_asset_id)]


def _get(state: AppState, asset_id: str) -> SearchHit:
    hit = state.library.get(asset_id)
    if hit is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no asset {asset_id} in this library")
    return hit


@router.get("/assets", response_model=Page[Asset], summary="Browse assets (no query), with filters")
def list_assets(
    f: Annotated[Filters, Depends(filters)],
    p: Annotated[Paging, Depends(paging)],
    state: Annotated[AppState, Depends(get_state)],
) -> dict:
    total, hits = state.library.page(
        collection=f.collection or None, tags=f.tags, source=f.source, media=f.media, limit=p.limit, offset=p.offset
    )
    return p.page([state.hit_dict(h) for h in hits], total=total)


@router.get("/assets/{asset_id}", response_model=AssetDetail, summary="One asset: metadata, tags, lineage")
def asset_detail(asset_id: AssetId, state: Annotated[AppState, Depends(get_state)]) -> dict:
    hit = _get(state, asset_id)
    refs = _lineage_references(state, hit.lineage)
    try:
        available = state.asset_file(hit) is not None
    except FileChangedError:
        available = False
    return {**state.hit_dict(hit), "file_available": available, "references": refs}


def _lineage_references(state: AppState, lineage: dict) -> list[dict]:
    """The stored assets a synthetic asset was made from: lineage `references` (rag) or `reference_ids`."""
    entries = [e for e in lineage.get("references") or [] if isinstance(e, dict)]
    entries += [{"id": r} for r in lineage.get("reference_ids") or []]
    out: list[dict] = []
    seen: set[str] = set()
    for e in entries[:64]:
        rid = e.get("id")
        if not isinstance(rid, str) or not ASSET_ID_RE.match(rid) or rid in seen:
            continue
        seen.add(rid)
        ref = state.library.get(rid)
        if ref is not None:
            extra = {k: e[k] for k in ("item", "role", "score") if k in e}
            out.append({"id": rid, "filename": ref.filename, "collection": ref.collection, **extra, **state.urls(rid)})
    return out


@router.get("/assets/{asset_id}/similar", response_model=Page[Asset], summary="Assets most like this one")
def similar(
    asset_id: AssetId,
    f: Annotated[Filters, Depends(filters)],
    p: Annotated[Paging, Depends(paging)],
    state: Annotated[AppState, Depends(get_state)],
) -> dict:
    _get(state, asset_id)
    state.ensure_model()
    hits = state.library.similar(asset_id, k=p.offset + p.limit, **f.kwargs())
    page = hits[p.offset : p.offset + p.limit]
    return p.page([state.hit_dict(h) for h in page], more=len(hits) == p.offset + p.limit)


def _file(state: AppState, asset_id: str):
    hit = _get(state, asset_id)
    try:
        path = state.asset_file(hit)
    except FileChangedError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    if path is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            "the asset's file is missing, or outside the folders this server may serve",
        )
    return hit, path


FILE_HELP = """Served only while the file is still the one that was ingested (its stored size and mtime, or — when
only the mtime differs — its sha256); a file that holds other bytes now answers **409** "changed since ingest:
re-ingest", a missing one (or one outside the server's roots) **404**."""


@media.get(
    "/assets/{asset_id}/image",
    response_class=FileResponse,
    summary="The asset's original file",
    description=FILE_HELP,
)
def asset_image(asset_id: AssetId, state: Annotated[AppState, Depends(get_state)]) -> Response:
    hit, path = _file(state, asset_id)
    if isinstance(path, str):  # an object under a configured bucket prefix: streamed, 1 MiB at a time
        media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        name = (hit.filename or path.rsplit("/", 1)[-1]).encode("ascii", "ignore").decode().replace('"', "")
        return StreamingResponse(
            objects.open_stream(path),
            media_type=media_type,
            headers={"Cache-Control": "private, max-age=3600", "Content-Disposition": f'inline; filename="{name}"'},
        )
    # a video is streamed: Starlette's FileResponse answers Range requests (206), which seeking needs
    media_type = video_media_type(path) if is_video(path) else mimetypes.guess_type(path.name)[0]
    media_type = media_type or "application/octet-stream"
    return FileResponse(
        path,
        media_type=media_type,
        content_disposition_type="inline",
        filename=hit.filename or path.name,
        headers={"Cache-Control": "private, max-age=3600"},
    )


@media.get(
    "/assets/{asset_id}/thumb",
    response_class=FileResponse,
    summary="A JPEG thumbnail (cached)",
    description=FILE_HELP,
)
def asset_thumb(
    asset_id: AssetId,
    state: Annotated[AppState, Depends(get_state)],
    size: Annotated[int, Param(description="long side in pixels: 256, 512 or 1024")] = 256,
) -> FileResponse:
    if size not in state.config.thumb_sizes:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"size must be one of {', '.join(map(str, state.config.thumb_sizes))}",
        )
    hit, source = _file(state, asset_id)  # checked every time, cached thumbnail or not
    try:
        path = state.thumbs.get(asset_id, source, size, hit.time if hit.is_video else None)
    except BadVideoError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"cannot decode the frame: {exc.reason}") from exc
    except BadImageError as exc:  # the reason only: no server path in a response
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"cannot make a thumbnail: {exc.reason}") from exc
    # the id is the content hash, so the thumbnail for this URL never changes
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=604800, immutable"})


@router.get("/duplicates", summary="Copies in the library, as groups: exact, near-duplicate (hash), look-alike")
def duplicates(
    p: Annotated[Paging, Depends(paging)],
    state: Annotated[AppState, Depends(get_state)],
    distance: Annotated[
        int, Param(ge=0, le=32, description="near-duplicates: perceptual-hash bits (of 64) that may differ")
    ] = NEAR_DUPLICATE_DISTANCE,
    threshold: Annotated[
        float | None, Param(ge=0.5, le=1.0, description="look-alikes: cosine (default: the model's calibrated one)")
    ] = None,
    embedding: Annotated[bool, Param(description="list embedding look-alikes too")] = True,
) -> dict:
    """One page of groups, exact copies first, then near-duplicates, then look-alikes. Each group: `kind`,
    `size` and `members` (id, path, filename, image URLs, and `distance` in bits or `score` in cosine to the
    group's first member). `not_hashed` counts assets stored before hashes existed (`assetrag duplicates
    --rehash` hashes them)."""
    found = state.library.duplicates(distance=distance, threshold=threshold, embedding=embedding)
    groups: list[dict] = [
        {"kind": "exact", "size": len(g["paths"]), "members": [{"id": g["id"], "path": path} for path in g["paths"]]}
        for g in found["exact"]
    ]
    groups += [{"kind": "near", **g} for g in found["near"]]
    groups += [{"kind": "similar", **g} for g in found["similar"]]
    for g in groups:
        for m in g["members"]:
            m["path"] = state.client_text(m["path"])
            m.setdefault("filename", m["path"].rsplit("/", 1)[-1])
    page = p.page(state.with_urls(groups[p.offset : p.offset + p.limit]), total=len(groups))
    page.update({k: found[k] for k in ("distance", "threshold", "not_hashed", "similar_note")})
    return page
