"""An in-process ModelClient over ModelServers with FakeEngines (no Ray)."""

from __future__ import annotations

import asyncio

from serving.gateway.upstream import Overloaded
from serving.replica.engines.fake import FakeEngine
from serving.replica.server import ModelServer


class FakeUpstream:
    def __init__(self, agen, overloaded: bool) -> None:
        self._agen = agen
        self._overloaded = overloaded
        self.cancelled = False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._overloaded:
            raise Overloaded()
        return await self._agen.__anext__()

    def cancel(self) -> None:
        self.cancelled = True
        asyncio.get_running_loop().create_task(self._agen.aclose())


class FakeModelClient:
    def __init__(self, engines: dict[str, FakeEngine]) -> None:
        self.engines = engines
        self.servers = {m: ModelServer(m, e) for m, e in engines.items()}
        self.ready = {m: 1 for m in engines}
        self.overloaded: set[str] = set()
        self.opened: list[tuple[str, str, dict]] = []
        self.upstreams: list[FakeUpstream] = []

    def ready_replicas(self):
        return self.ready

    def open(self, model_id, kind, body):
        self.opened.append((model_id, kind, body))
        up = FakeUpstream(self.servers[model_id].serve(kind, body), model_id in self.overloaded)
        self.upstreams.append(up)
        return up

    async def count_prompt_tokens(self, model_id, kind, body):
        if model_id in self.overloaded:
            raise Overloaded()
        return await self.servers[model_id].count_prompt_tokens(kind, body)


class CountingClient(FakeModelClient):
    """A FakeModelClient that records which models were asked to count a prompt."""

    def __init__(self, engines) -> None:
        super().__init__(engines)
        self.counted: list[str] = []

    async def count_prompt_tokens(self, model_id, kind, body):
        self.counted.append(model_id)
        return await super().count_prompt_tokens(model_id, kind, body)
