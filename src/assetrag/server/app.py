"""`create_app`: the FastAPI application over one Library (REST API under /api, the page at /)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assetrag import errors as E
from assetrag.config import Settings, __version__
from assetrag.errors import AssetragError
from assetrag.library import Library
from assetrag.server.config import ServerConfig
from assetrag.server.routes import assets, generate, ingest, search, system, web
from assetrag.server.security import install_log_redaction, remove_log_redaction, require_token
from assetrag.server.state import AppState
from assetrag.server.uploads import format_mb

log = logging.getLogger("assetrag.server")

DESCRIPTION = """Search a brand image library by meaning and generate new images grounded on it.

When the server runs with `ASSETRAG_API_TOKEN`, every `/api` request needs it (`Authorization: Bearer <token>`
or `X-API-Token: <token>`); image URLs returned by the API carry a signature instead. Lists are pages:
pass `offset` and `limit`, and follow `next_offset`.
"""


def create_app(target: Settings | Library, config: ServerConfig | None = None) -> FastAPI:
    """The app for a Library (used as is, not closed by the app) or Settings (opened and closed by the app)."""
    if isinstance(target, Library):
        library, owns = target, False
    elif isinstance(target, Settings):
        library, owns = Library(settings=target, announce=lambda msg: log.warning("%s", msg)), True
    else:
        raise TypeError(f"create_app takes Settings or a Library, not {type(target).__name__}")
    config = (config or ServerConfig.from_env()).resolved(library.settings)
    state = AppState(library, config, owns_library=owns)
    if config.api_token is not None and len(config.api_token) < 16:
        log.warning("ASSETRAG_API_TOKEN is short; use a long random value (e.g. `openssl rand -hex 32`)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        flt = install_log_redaction(state.redact)
        threading.Thread(target=_warm_up, args=(state,), name="assetrag-warm-up", daemon=True).start()
        try:
            yield
        finally:
            state.close()
            remove_log_redaction(flt)

    app = FastAPI(
        title="assetrag",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.assetrag = state

    api = [search.router, assets.router, ingest.router, generate.router, system.router]
    for router in api:
        app.include_router(router, prefix="/api", dependencies=[Depends(require_token)])
    for media in (assets.media, generate.media):
        app.include_router(media, prefix="/api")  # the token, or a signed URL
    app.include_router(web.router)

    _install_error_handlers(app, state)
    app.add_middleware(_SecurityHeaders)
    app.add_middleware(_SameOriginWrites)
    app.add_middleware(_BodyLimit, max_bytes=config.max_request_bytes)
    if config.allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(config.allowed_hosts))
    return app


def _warm_up(state: AppState) -> None:
    """Load the model in the background so the first search does not wait for it (errors surface later)."""
    try:
        if state.exists():
            state.ensure_model()
    except Exception as exc:  # reported to the request that needs the model
        log.warning("model not loaded at start-up: %s", state.redact(str(exc)))


# -- errors ---------------------------------------------------------------------------------------

_STATUS: list[tuple[type[BaseException], int]] = [
    (E.QueryError, status.HTTP_400_BAD_REQUEST),
    (E.BadImageError, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE),
    (E.ConfigError, status.HTTP_400_BAD_REQUEST),
    (E.ModelMismatchError, status.HTTP_409_CONFLICT),
    (E.ModelUnavailableError, status.HTTP_503_SERVICE_UNAVAILABLE),
    (E.StoreError, status.HTTP_503_SERVICE_UNAVAILABLE),
]


def _generation_status(exc: BaseException) -> int | None:
    try:
        from assetrag.generation import errors as gen
    except ImportError:
        return None
    table = [
        (gen.GenerationOptionsError, status.HTTP_400_BAD_REQUEST),
        (gen.GeneratorSetupError, status.HTTP_400_BAD_REQUEST),
        (gen.GenerationRateLimited, status.HTTP_429_TOO_MANY_REQUESTS),
        (gen.GenerationError, status.HTTP_502_BAD_GATEWAY),
    ]
    return next((code for cls, code in table if isinstance(exc, cls)), None)


def _install_error_handlers(app: FastAPI, state: AppState) -> None:
    def body(detail: Any, kind: str) -> dict[str, Any]:
        if isinstance(detail, str):
            detail = state.redact(detail)
        return {"detail": detail, "error": kind}

    @app.exception_handler(AssetragError)
    async def _assetrag_error(request: Request, exc: AssetragError) -> JSONResponse:
        code = _generation_status(exc) or next(
            (c for cls, c in _STATUS if isinstance(exc, cls)), status.HTTP_400_BAD_REQUEST
        )
        return JSONResponse(body(str(exc), type(exc).__name__), status_code=code)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(body(exc.detail, "HTTPException"), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": state.redact(str(e.get("msg", ""))), "type": e.get("type")}
            for e in exc.errors()
        ]  # the submitted values are left out: they may hold secrets
        return JSONResponse(body(errors, "ValidationError"), status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed: %s", request.method, request.url.path, state.redact(repr(exc)), exc_info=exc)
        return JSONResponse(body("internal error; the server log has the details", type(exc).__name__), status_code=500)


# -- middleware (plain ASGI) -----------------------------------------------------------------------


class _SecurityHeaders:
    """nosniff, no referrer, no framing, on every response."""

    HEADERS = (
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *self.HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _SameOriginWrites:
    """Refuse state-changing requests another site's page makes in the user's browser (CSRF, e.g. a form
    that posts uploads to 127.0.0.1): a cross-site `Sec-Fetch-Site`, or an `Origin` that is not this host."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            origin, host = headers.get("origin"), headers.get("host", "")
            cross = headers.get("sec-fetch-site") == "cross-site"
            # "null" is the opaque origin of sandboxed frames and file:// pages
            if cross or (origin is not None and (origin == "null" or origin.split("://", 1)[-1] != host)):
                response = JSONResponse(
                    {"detail": "cross-site requests are refused", "error": "Forbidden"}, status_code=403
                )
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


class _RequestTooLarge(HTTPException):
    """Raised from `receive`; an HTTPException so FastAPI's body parsing lets it through as a 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body over the {format_mb(max_bytes)} limit")


class _BodyLimit:
    """413 for a request body over `max_bytes` (by Content-Length up front, or while it streams in)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = JSONResponse(
            {"detail": _RequestTooLarge(self.max_bytes).detail, "error": "HTTPException"}, status_code=413
        )
        for k, v in scope["headers"]:
            if k == b"content-length" and v.isdigit() and int(v) > self.max_bytes:
                return await too_large(scope, receive, send)
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _RequestTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _RequestTooLarge:
            if not started:
                await too_large(scope, receive, send)
