"""The route table: every HTTP endpoint Petit serves, listed once.

`build_api(gateway_of)` is the FastAPI app with them; `gateway_of()` returns
the `Gateway` that answers (in a Ray Serve replica: the replica's own, see
`serving.app`). `build_fastapi(gateway)` is the app without Ray (tests,
debugging). The API description follows the API-key switch: with
`PETIT_API_KEYS` set, `/openapi.json` needs a key and `/docs` is off (404);
FastAPI's own `/docs`, `/redoc` and `/openapi.json` are never mounted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.gateway.errors import HTTPError, error_body
from serving.gateway.gateway import Gateway
from serving.gateway.protocol import openapi_components
from serving.gateway.status import health, models

TITLE, DESCRIPTION = "Petit", "OpenAI-compatible endpoint over a mixed fleet of models"
SCHEMAS = "#/components/schemas/"
# The error answers of a completion endpoint, as published (README: "Errors").
BODY_ERRORS = {
    400: "Invalid request: malformed JSON, a field of the wrong type or range, input over server.limits",
    401: "Missing or invalid API key (when PETIT_API_KEYS is set)",
    404: "Unknown model (the message lists the served ids)",
    413: "Body over server.limits.max_body_bytes",
    415: "Content-Type is not JSON",
    429: "The model's queue is full (Retry-After)",
    503: "No ready replica for the model (Retry-After)",
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[[Gateway, Request], Awaitable[Response]]  # a Gateway method (or one below)
    in_schema: bool = True
    body: str | None = None  # the JSON body's schema: a name from `protocol.openapi_components()`

    def openapi_extra(self) -> dict | None:
        """The request body and error answers for the published schema (the handlers read raw bodies)."""
        if self.body is None:
            return None
        error = {"application/json": {"schema": {"$ref": f"{SCHEMAS}ErrorResponse"}}}
        return {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": SCHEMAS + self.body}}},
            },
            "responses": {str(s): {"description": d, "content": error} for s, d in BODY_ERRORS.items()},
        }


async def openapi(gateway: Gateway, request: Request) -> Response:
    """The OpenAPI schema; needs an API key when keys are configured."""
    try:
        gateway.authorize(request)
    except HTTPError as err:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)
    return JSONResponse(request.app.openapi())


async def docs(gateway: Gateway, request: Request) -> Response:
    """Swagger UI, only while the endpoint is open (a browser cannot send the key with its schema fetch)."""
    if gateway.api_keys is not None:
        return JSONResponse(error_body(404, f"GET {request.url.path}: Not Found"), status_code=404)
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{TITLE} - docs")


ROUTES = (
    Route("POST", "/v1/chat/completions", Gateway.chat, body="ChatRequest"),
    Route("POST", "/v1/completions", Gateway.completions, body="CompletionRequest"),
    Route("GET", "/v1/models", models),
    Route("GET", "/health", health),
    Route("GET", "/metrics", Gateway.metrics),
    Route("GET", "/openapi.json", openapi, in_schema=False),
    Route("GET", "/docs", docs, in_schema=False),
)


async def not_found(request: Request, exc: Exception) -> Response:
    """OpenAI-shaped body for FastAPI's own HTTP errors (unknown path, wrong method) and anything unhandled."""
    http = isinstance(exc, StarletteHTTPException)
    status = exc.status_code if http else 500
    detail = exc.detail if http else "internal error"
    headers = exc.headers if http else None  # e.g. a 405's Allow
    body = error_body(status, f"{request.method} {request.url.path}: {detail}")
    return JSONResponse(body, status_code=status, headers=headers)


def _endpoint(route: Route, gateway_of: Callable[[], Gateway]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await route.handler(gateway_of(), request)

    endpoint.__name__ = route.handler.__name__
    return endpoint


def _with_components(app: FastAPI) -> Callable[[], dict]:
    """`app.openapi` with the request and error bodies' schemas among its components."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(openapi_components(SCHEMAS))
        return app.openapi_schema

    return openapi


def build_api(gateway_of: Callable[[], Gateway]) -> FastAPI:
    """A FastAPI app serving every route of `ROUTES`, answered by `gateway_of()`, with OpenAI-shaped
    404/405s; without FastAPI's own docs routes (ours follow the API-key switch)."""
    app = FastAPI(title=TITLE, description=DESCRIPTION, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(StarletteHTTPException, not_found)
    app.add_exception_handler(Exception, not_found)  # the last resort: JSON, never Starlette's plain text
    for r in ROUTES:
        app.add_api_route(
            r.path,
            _endpoint(r, gateway_of),
            methods=[r.method],
            include_in_schema=r.in_schema,
            openapi_extra=r.openapi_extra(),
        )
    app.openapi = _with_components(app)  # type: ignore[method-assign]  # FastAPI's documented way to extend it
    return app


def build_fastapi(gateway: Gateway) -> FastAPI:
    """The gateway as a plain FastAPI app (no Ray): for tests and debugging."""
    return build_api(lambda: gateway)
