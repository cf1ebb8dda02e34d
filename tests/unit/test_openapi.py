"""The OpenAPI document lists every HTTP route the gateway serves, with the right methods."""

from __future__ import annotations

from starlette.routing import Route

from inferencehub.gateway.openapi import OPENAPI
from inferencehub.gateway.rest import create_app


def test_every_route_is_documented_and_nothing_else() -> None:
    app = create_app(dataplane=None, max_request_bytes=1)  # type: ignore[arg-type]
    served = {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or ()) - {"HEAD"}
    }
    documented = {(path, method) for path, item in OPENAPI["paths"].items() for method in item}
    assert served == documented
    assert OPENAPI["openapi"].startswith("3.")
