"""The controller's admin HTTP server: `GET/POST /admin/budget`, `GET /admin/plan` (aiohttp).

POST body (``Content-Type: application/json`` only, else 415): ``{"gpus": N}``
with N a finite number in [0, MAX_BUDGET] -> 200; anything else -> 400. `unit`
says what the number counts (`autoscaler.budget_resource`: "gpus", or "cpus"
for a CPU-only fleet); the key stays "gpus" either way.

Closed by default: it listens on loopback. Beyond loopback it refuses to start
without a bearer token (`PETIT_ADMIN_TOKEN`, e.g. from a Kubernetes Secret),
and then every request must carry ``Authorization: Bearer <token>`` (401).
Every change is logged with its source and time, and GET shows the last one.
`GET /admin/plan` shows the last plan's summary (`{"plan": null}` before the
first decision; an unlimited budget reads null): what a load test charts.
Runs in its own thread with its own event loop.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
import time
from collections.abc import Callable

from aiohttp import web

from autoscaler.budget import FixedBudget
from autoscaler.probes import ThreadedServer

TOKEN_ENV = "PETIT_ADMIN_TOKEN"
MAX_BUDGET = 100_000.0
log = logging.getLogger("petit.autoscaler.admin")


class AdminConfigError(ValueError):
    """The admin endpoint would listen beyond loopback without a token."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _finite(value: object) -> object:
    """JSON-safe: infinite or NaN numbers (an unlimited budget) become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def build_admin_app(
    budget: FixedBudget,
    unit: str = "gpus",
    token: str | None = None,
    plan_of: Callable[[], dict | None] = lambda: None,
) -> web.Application:
    """The app; with `token`, every request needs it as a bearer token. `plan_of()`: the last plan's summary."""
    last: dict[str, object] = {"changed_at": None, "changed_by": None}

    @web.middleware
    async def auth(req: web.Request, handler: web.Handler) -> web.StreamResponse:
        if token is not None:
            scheme, _, given = req.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
                return web.json_response({"error": "missing or invalid admin token"}, status=401)
        return await handler(req)

    async def get_budget(_req: web.Request) -> web.Response:
        return web.json_response({"gpus": budget.get(), "unit": unit, **last})

    async def get_plan(_req: web.Request) -> web.Response:
        return web.json_response({"plan": _finite(plan_of())})

    async def post_budget(req: web.Request) -> web.Response:
        if req.content_type != "application/json":
            return web.json_response({"error": "send Content-Type: application/json"}, status=415)
        try:
            body = json.loads(await req.text())
            if not isinstance(body, dict) or set(body) != {"gpus"}:
                raise ValueError('expected {"gpus": N}')
            value = body["gpus"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"gpus must be a finite number, got {value!r}")
            if not 0 <= value <= MAX_BUDGET:
                raise ValueError(f"gpus must lie in [0, {MAX_BUDGET:g}], got {value!r}")
            before = budget.get()
            budget.set(value)
        except (ValueError, json.JSONDecodeError) as err:
            return web.json_response({"error": str(err)}, status=400)
        source = f"{req.remote or '?'} ({req.headers.get('User-Agent', '?')})"
        last.update(changed_at=time.time(), changed_by=source)
        log.warning("budget changed %s -> %s %s by %s", before, budget.get(), unit, source)
        return web.json_response({"gpus": budget.get(), "unit": unit, **last})

    app = web.Application(middlewares=[auth], client_max_size=4096)
    app.router.add_get("/admin/budget", get_budget)
    app.router.add_post("/admin/budget", post_budget)
    app.router.add_get("/admin/plan", get_plan)
    return app


class AdminServer(ThreadedServer):
    """Serves `build_admin_app(budget)` on host:port in a daemon thread.

    Raises AdminConfigError when `host` is not loopback and no token is given.
    """

    def __init__(
        self,
        budget: FixedBudget,
        host: str = "127.0.0.1",
        port: int = 9091,
        unit: str = "gpus",
        token: str | None = None,
        plan_of: Callable[[], dict | None] = lambda: None,
    ):
        if not is_loopback(host) and not token:
            raise AdminConfigError(
                f"the admin endpoint would listen on {host} without a token: set {TOKEN_ENV} (a Secret), "
                "or listen on 127.0.0.1"
            )
        super().__init__(build_admin_app(budget, unit, token or None, plan_of), host, port, name="petit-admin")
