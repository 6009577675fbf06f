"""`serve`: run the app with uvicorn (what `assetrag serve` calls)."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from pathlib import Path

from assetrag.config import Settings
from assetrag.server.config import DEFAULT_HOST, DEFAULT_PORT, ServerConfig

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
log = logging.getLogger("assetrag.server")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    settings: Settings,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    roots: Sequence[Path] = (),
    log_level: str = "info",
) -> None:
    """Serve the library until interrupted. On a loopback address only loopback Host headers are
    accepted (a web page cannot reach the API through DNS rebinding)."""
    import uvicorn

    from assetrag.server.app import create_app

    overrides: dict[str, object] = {"roots": tuple(roots) or None}
    if is_loopback(host):
        overrides["allowed_hosts"] = (*LOOPBACK_NAMES, host)
    config = ServerConfig.from_env(**overrides)
    if not is_loopback(host) and config.api_token is None:
        log.warning(
            "serving on %s without ASSETRAG_API_TOKEN: anyone who can reach it can read and change the library",
            host,
        )
    app = create_app(settings, config)
    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False, proxy_headers=False)
