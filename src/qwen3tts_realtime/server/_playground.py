"""The playground page at `/`: static files shipped in the package (`playground/`), no build step, no CDN.

The page uses only the server's public routes (`/v1/stats`, `/v1/voices`, the `/v1/stream` websocket), with the API
key the user enters (sent as a header, and as the websocket subprotocol `bearer.<key>`). The files themselves are
public: they hold nothing about the server. `--no-ui` leaves them out.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from starlette.responses import Response

__all__ = ["mount"]

_FILES = {"index.html": "text/html; charset=utf-8", "playground.js": "text/javascript; charset=utf-8",
          "playground.css": "text/css; charset=utf-8"}


def _read(name: str) -> bytes:
    return resources.files(__package__).joinpath("playground", name).read_bytes()


def mount(app: FastAPI) -> None:
    """Serve the page at `/` and its files under `/playground/`."""
    pages = {name: _read(name) for name in _FILES}  # read once: a few kB

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response(pages["index.html"], media_type=_FILES["index.html"])

    @app.get("/playground/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in pages:
            return Response(status_code=404)
        return Response(pages[name], media_type=_FILES[name], headers={"Cache-Control": "no-cache"})
