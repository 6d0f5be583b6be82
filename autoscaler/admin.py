"""The controller's tiny admin HTTP server: `GET/POST /admin/budget` (aiohttp).

POST body: ``{"gpus": N}`` with N >= 0 -> 200 ``{"gpus": N, "unit": U}``; anything else -> 400.
`unit` says what the number counts (`autoscaler.budget_resource`: "gpus", or "cpus"
for a CPU-only fleet); the key stays "gpus" either way.
Runs in its own thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading

from aiohttp import web

from autoscaler.budget import FixedBudget


def build_admin_app(budget: FixedBudget, unit: str = "gpus") -> web.Application:
    async def get_budget(_req: web.Request) -> web.Response:
        return web.json_response({"gpus": budget.get(), "unit": unit})

    async def post_budget(req: web.Request) -> web.Response:
        try:
            body = json.loads(await req.text())
            if not isinstance(body, dict) or "gpus" not in body:
                raise ValueError('expected {"gpus": N}')
            budget.set(body["gpus"])
        except (ValueError, json.JSONDecodeError) as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response({"gpus": budget.get(), "unit": unit})

    app = web.Application()
    app.router.add_get("/admin/budget", get_budget)
    app.router.add_post("/admin/budget", post_budget)
    return app


class AdminServer:
    """Serves `build_admin_app(budget)` on host:port in a daemon thread."""

    def __init__(self, budget: FixedBudget, host: str = "0.0.0.0", port: int = 9091, unit: str = "gpus"):
        self.app, self.host, self.port = build_admin_app(budget, unit), host, port
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None

    def start(self) -> None:
        async def boot() -> None:
            self._runner = web.AppRunner(self.app)
            await self._runner.setup()
            await web.TCPSite(self._runner, self.host, self.port).start()

        self._loop.run_until_complete(boot())
        threading.Thread(target=self._loop.run_forever, daemon=True, name="petit-admin").start()

    def stop(self) -> None:
        async def down() -> None:
            if self._runner:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(down(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
