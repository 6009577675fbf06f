"""The web page: one HTML file and its static assets, read from the package (no build step)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
#: the page may load only itself; /docs (Swagger UI from a CDN) is not under this policy
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


@cache
def _files() -> dict[str, bytes]:
    """Every file of assetrag/web by name (a fixed set: a request can only pick one of these)."""
    root = resources.files("assetrag") / "web"
    out: dict[str, bytes] = {}
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if entry.is_file() and suffix in _TYPES:
            out[entry.name] = entry.read_bytes()
    return out


def _respond(name: str) -> Response:
    data = _files().get(name)
    if data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    media = _TYPES["." + name.rsplit(".", 1)[-1]]
    return Response(data, media_type=media, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"})


@router.get("/", response_class=HTMLResponse)
def page() -> Response:
    return _respond("index.html")


@router.get("/static/{name}")
def static(name: str) -> Response:
    return _respond(name)


@router.get("/favicon.ico")
def favicon() -> Response:
    return _respond("favicon.svg")
