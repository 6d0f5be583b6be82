"""The route table: every HTTP endpoint Petit serves, listed once.

`add_routes(app, gateway_of)` mounts them on a FastAPI app; `gateway_of()`
returns the `Gateway` that answers (in a Ray Serve replica: the replica's own,
see `serving.app`). `build_fastapi(gateway)` is the app without Ray (tests,
debugging).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.gateway.errors import error_body
from serving.gateway.gateway import Gateway


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[[Gateway, Request], Awaitable[Response]]  # a Gateway method


ROUTES = (
    Route("POST", "/v1/chat/completions", Gateway.chat),
    Route("POST", "/v1/completions", Gateway.completions),
    Route("GET", "/v1/models", Gateway.models),
    Route("GET", "/health", Gateway.health),
    Route("GET", "/metrics", Gateway.metrics),
)


async def not_found(request: Request, exc: Exception) -> Response:
    """OpenAI-shaped body for FastAPI's own HTTP errors (unknown path, wrong method) and anything unhandled."""
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    detail = exc.detail if isinstance(exc, StarletteHTTPException) else "internal error"
    return JSONResponse(error_body(status, f"{request.method} {request.url.path}: {detail}"), status_code=status)


def _endpoint(route: Route, gateway_of: Callable[[], Gateway]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await route.handler(gateway_of(), request)

    endpoint.__name__ = route.handler.__name__
    return endpoint


def add_routes(app: FastAPI, gateway_of: Callable[[], Gateway]) -> FastAPI:
    """Mount every route of `ROUTES` on `app`, answered by `gateway_of()`, and OpenAI-shaped 404/405s."""
    app.add_exception_handler(StarletteHTTPException, not_found)
    app.add_exception_handler(Exception, not_found)  # the last resort: JSON, never Starlette's plain text
    for r in ROUTES:
        app.add_api_route(r.path, _endpoint(r, gateway_of), methods=[r.method])
    return app


def build_fastapi(gateway: Gateway) -> FastAPI:
    """The gateway as a plain FastAPI app (no Ray): for tests and debugging."""
    return add_routes(FastAPI(title="Petit"), lambda: gateway)
