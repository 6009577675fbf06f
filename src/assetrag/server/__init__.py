"""The REST API and the web page: `create_app(Settings | Library) -> FastAPI`, and `serve` for the CLI.

from assetrag.server import create_app
app = create_app(Library("assets.db"))      # uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from assetrag.server.app import create_app
from assetrag.server.config import DEFAULT_HOST, DEFAULT_PORT, ServerConfig
from assetrag.server.serve import serve

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ServerConfig", "create_app", "serve"]
