"""The web console: static files shipped in the package (gateway/console/), served by the
gateway itself so that a browser on an offline box needs nothing else.

The files carry no data: the page asks /v1/status, /v1/models and the predict and routing
routes for it, with an API key when keys are on (sent as a Bearer token, never in a URL). So
`/` (for browsers) and `/ui/...` are open, with a strict Content-Security-Policy (no inline
script or style, nothing from elsewhere) and nosniff; everything else keeps its guard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ASSET_DIR: Final = "console"
PAGE: Final = "index.html"
UI_PREFIX: Final = "/ui/"
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
SECURITY_HEADERS: Final = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
# Revalidated every time, by ETag (a 304 from the hub beside the browser is cheap): after an
# upgrade the page and its modules never mix versions.
PAGE_CACHE: Final = "no-cache"
ASSET_CACHE: Final = "no-cache"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Every file of the console, read once: name -> asset."""
    root = resources.files("inferencehub.gateway").joinpath(ASSET_DIR)
    assets = {}
    for item in root.iterdir():
        suffix = "." + item.name.rsplit(".", 1)[-1] if "." in item.name else ""
        if not item.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = item.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[item.name] = Asset(body, CONTENT_TYPES[suffix], etag)
    return assets


def wants_page(scope: Mapping[str, Any]) -> bool:
    """A browser navigating to `/` (a GET asking for HTML); API clients keep the JSON index."""
    if scope["path"] != "/" or scope.get("method") != "GET":
        return False
    accept = next((v for k, v in scope["headers"] if k == b"accept"), b"")
    return b"text/html" in accept


def is_console(scope: Mapping[str, Any]) -> bool:
    """The console's files: open to anyone, since they carry no data (auth.py)."""
    return scope["path"].startswith(UI_PREFIX) or wants_page(scope)


def serve(asset: Asset, request: Request, cache: str) -> Response:
    headers = {**SECURITY_HEADERS, "cache-control": cache, "etag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


def console_routes(assets: dict[str, Asset]) -> list[Route]:
    """`/ui/NAME` for each asset (404 for anything else); `/` is the caller's, via page()."""

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        found = assets.get(name) if name != PAGE else None
        if found is None:
            return Response(
                "not found", status_code=404, media_type="text/plain", headers=SECURITY_HEADERS
            )
        return serve(found, request, ASSET_CACHE)

    return [Route(UI_PREFIX + "{name}", asset, methods=["GET"])]


def page(assets: dict[str, Asset], request: Request) -> Response:
    return serve(assets[PAGE], request, PAGE_CACHE)
