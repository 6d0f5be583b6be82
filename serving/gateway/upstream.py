"""What the gateway talks to: a model client, its upstream streams, and the body an engine receives.

`ModelClient` is implemented over Ray Serve handles in `serving.app` and over
in-process fakes in tests. Pure module (no Ray, no FastAPI).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from serving.gateway.errors import HTTPError
from serving.gateway.protocol import ChatRequest, CompletionRequest
from serving.router.constraints import BODY_KEY as CONSTRAINTS_KEY


class Overloaded(Exception):
    """The model's queue is full (Ray Serve back-pressure)."""


class Unassigned(ConnectionError):
    """No replica of the model took the request in time (e.g. its replicas were lost)."""


class Upstream(Protocol):
    def __aiter__(self) -> AsyncIterator[Any]: ...
    async def __anext__(self) -> Any: ...
    def cancel(self) -> None: ...


class ModelClient(Protocol):
    def ready_replicas(self) -> Mapping[str, int]:
        """Ready replicas per model id, as last observed (never blocks)."""

    def open(self, model_id: str, kind: str, body: dict) -> Upstream:
        """Start a request on `model_id`; iterating raises Overloaded when its queue is full."""

    async def count_prompt_tokens(self, model_id: str, kind: str, body: dict) -> dict:
        """`{"tokens": n}` or an error item from the model server."""


def engine_body(body: dict, req: ChatRequest | CompletionRequest, model_id: str) -> dict:
    """The client's body as the model server gets it: the chosen model, usage always on for streams."""
    out = dict(body, model=model_id)
    out.pop(CONSTRAINTS_KEY, None)  # Petit's own field: the engine need not see it
    if req.stream:  # always ask for usage: cost and telemetry need it; dropped later if unasked
        out["stream_options"] = dict(body.get("stream_options") or {}, include_usage=True)
    return out


def sse_events(blob: str) -> list[str]:
    """The SSE events of an upstream item (one event, or several whole ones), each ending in a blank line."""
    if blob.count("\n\n") <= 1:
        return [blob]
    return [e + "\n\n" for e in blob.split("\n\n") if e]


async def first_item(upstream: Upstream) -> dict:
    """The upstream's first item (a response, an error or a stream line). 502 when it ends without one."""
    try:
        item: dict = await upstream.__anext__()
        while item.get("type") == "started":  # a replica took it; the answer follows
            item = await upstream.__anext__()
        return item
    except StopAsyncIteration:
        raise HTTPError(502, "the model server closed the request without answering") from None
