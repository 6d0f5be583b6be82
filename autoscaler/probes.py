"""The autoscaler pod's HTTP port: `/metrics`, `/healthz` (liveness), `/readyz` (readiness).

`probe_status` is pure: liveness holds while the control loop stepped recently
or the Ray link is busy reconnecting (restarting the pod would not help);
readiness needs the link connected and a decision within the last periods.
`ThreadedServer` serves them with the Prometheus registry in a daemon thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

# A decision older than this many periods (plus slack) fails the probes.
LIVE_PERIODS, READY_PERIODS = 6, 3
SLACK_S = 30.0


@dataclass(frozen=True)
class ProbeStatus:
    live: bool
    ready: bool
    detail: dict[str, object]


def probe_status(
    now: float, started_at: float, last_step_at: float | None, period_s: float, ray_state: str
) -> ProbeStatus:
    """Health from times (one clock) and the Ray link's state ("connecting", "connected", "reconnecting").

    Before the first decision the loop counts as live from `started_at`; while Ray is
    (re)connecting the loop waits on purpose, so it stays live but not ready."""
    since = now - (last_step_at if last_step_at is not None else started_at)
    stepping = since <= LIVE_PERIODS * period_s + SLACK_S
    live = stepping or ray_state != "connected"
    ready = ray_state == "connected" and last_step_at is not None and since <= READY_PERIODS * period_s + SLACK_S
    detail: dict[str, object] = {"ray": ray_state, "seconds_since_decision": None if last_step_at is None else since}
    return ProbeStatus(live, ready, detail)


def build_probe_app(registry: CollectorRegistry, status: Callable[[], ProbeStatus]) -> web.Application:
    async def metrics(_req: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), content_type="text/plain", charset="utf-8")

    async def healthz(_req: web.Request) -> web.Response:
        s = status()
        return web.json_response({"live": s.live, **s.detail}, status=200 if s.live else 503)

    async def readyz(_req: web.Request) -> web.Response:
        s = status()
        return web.json_response({"ready": s.ready, **s.detail}, status=200 if s.ready else 503)

    app = web.Application(client_max_size=1024)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


class ThreadedServer:
    """An aiohttp app served on host:port in a daemon thread with its own event loop (probes, admin)."""

    def __init__(self, app: web.Application, host: str = "0.0.0.0", port: int = 9090, name: str = "petit-probes"):
        self.app, self.host, self.port, self._name = app, host, port, name
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None

    def start(self) -> None:
        async def boot() -> None:
            self._runner = web.AppRunner(self.app)
            await self._runner.setup()
            await web.TCPSite(self._runner, self.host, self.port).start()

        self._loop.run_until_complete(boot())
        threading.Thread(target=self._loop.run_forever, daemon=True, name=self._name).start()

    def stop(self) -> None:
        async def down() -> None:
            if self._runner:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(down(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
