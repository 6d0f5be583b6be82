"""One model replica: a plain class around an injected `Engine`.

`app.py` is the only place that turns it into a Ray Serve deployment. Every
request is served through one streaming method, `serve`, whose first item says
what follows, so the ingress makes a single call for both streamed and
non-streamed requests. Its first item is always ``{"type": "started"}`` (a replica took the
request: the ingress times how long none did), then:

- ``{"type": "response", "body": {...}}`` then nothing (non-streaming);
- ``{"type": "stream"}`` then SSE lines (``"data: ...\\n\\n"``) up to ``data: [DONE]``;
- ``{"type": "stream", "url": ...}`` then nothing until the stream ended, when the replica has a
  `StreamRelay`: the lines go over HTTP from that URL (`serving.replica.relay`), and the call stays
  open meanwhile so that Serve counts the request as ongoing (cancelling it stops the stream);
- ``{"type": "error", "status", "message", "param", "code", "error_type"}`` then nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from serving.replica.engines.base import Engine, EngineError, Kind
from serving.replica.relay import StreamRelay

STARTED = {"type": "started"}


def error_item(err: EngineError) -> dict:
    return {
        "type": "error",
        "status": err.status,
        "message": err.message,
        "param": err.param,
        "code": err.code,
        "error_type": err.type,
    }


class ModelServer:
    def __init__(self, model_id: str, engine: Engine, relay: StreamRelay | None = None) -> None:
        self.model_id = model_id
        self.engine = engine
        self.relay = relay

    async def start(self) -> None:
        await self.engine.start()
        if self.relay is not None:
            await self.relay.start()

    async def serve(self, kind: Kind, body: dict) -> AsyncIterator[object]:
        yield STARTED
        try:
            result = await self.engine.generate(kind, body)
        except EngineError as err:
            yield error_item(err)
            return
        if isinstance(result, dict):
            yield {"type": "response", "body": result}
            return
        if self.relay is not None:
            ticket, url = self.relay.offer(result)
            yield {"type": "stream", "url": url}
            await self.relay.wait(ticket)
            return
        yield {"type": "stream"}
        async for line in result:  # cancellation here closes the engine's generator, which aborts
            yield line

    async def count_prompt_tokens(self, kind: Kind, body: dict) -> dict:
        """`{"tokens": n}` or an error item (never raises for a bad request)."""
        try:
            return {"tokens": await self.engine.count_prompt_tokens(kind, body)}
        except EngineError as err:
            return error_item(err)

    def inflight(self) -> int:
        return self.engine.load().running

    async def check_health(self) -> None:
        await self.engine.check_health()

    def shutdown(self) -> None:
        self.engine.shutdown()
