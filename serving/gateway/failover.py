"""Failover before the first byte: another tier answers `auto`; a named model gets 503 + Retry-After.

A model "fails" when opening a request on it raises (its replica died, Ray
lost the actor), it closes without answering, or it answers with a 5xx error
item (its engine died). Nothing has reached the client yet, so an `auto`
request is routed again with that model counted as down, and the answer
carries ``x-petit-failover: <failed models>``. A request that named the
model gets a 503 with ``Retry-After`` (the model is down; the request was
fine). Errors the client caused (4xx items) and back-pressure (`Overloaded`)
pass through unchanged.

`Breaker` is each ingress replica's short memory of failed models: routing
and `/health` count a failed model as down for `hold_s` seconds (or until a
request on it succeeds), which is faster than Serve's health checks. Pure:
no Ray, no FastAPI.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from serving.gateway.errors import HTTPError
from serving.gateway.upstream import Overloaded, Upstream, first_item
from serving.router.types import RouteDecision, RoutingError

FAILOVER_HEADER = "x-petit-failover"
HOLD_S = 5.0
log = logging.getLogger("petit.gateway")


class Breaker:
    """Models that failed in the last `hold_s` seconds (one per ingress replica; injected clock)."""

    def __init__(self, hold_s: float = HOLD_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.hold_s, self._clock = hold_s, clock
        self._until: dict[str, float] = {}

    def failed(self, model_id: str) -> None:
        self._until[model_id] = self._clock() + self.hold_s

    def ok(self, model_id: str) -> None:
        self._until.pop(model_id, None)

    def down(self) -> frozenset[str]:
        now = self._clock()
        return frozenset(m for m, t in self._until.items() if t > now)


def is_upstream_failure(item: dict) -> bool:
    """An error item the model side caused (5xx), as opposed to one about the request (4xx)."""
    return item.get("type") == "error" and int(item.get("status", 500)) >= 500


def unavailable(model_id: str, why: str, retry_after_s: int) -> HTTPError:
    return HTTPError(
        503,
        f"model '{model_id}' failed before answering ({why}); retry after {retry_after_s}s",
        code="model_unavailable",
        headers={"Retry-After": str(retry_after_s)},
    )


async def open_first(open_: Callable[[str], Upstream], model_id: str) -> tuple[Upstream, dict] | str:
    """(upstream, its first item), or why the model failed before answering."""
    try:
        upstream = open_(model_id)
        item = await first_item(upstream)
    except Overloaded:
        raise
    except HTTPError as err:  # closed without answering (502)
        return err.message
    except Exception as err:  # noqa: BLE001 - whatever the transport raised: the replica is gone
        log.warning("model %s failed before answering: %r", model_id, err)
        return type(err).__name__
    if is_upstream_failure(item):
        return str(item.get("message") or item.get("status"))
    return upstream, item


async def first_answer(
    open_: Callable[[str], Upstream],
    decision: RouteDecision,
    breaker: Breaker,
    reroute: Callable[[], Awaitable[RouteDecision]] | None,
    retry_after_s: int,
) -> tuple[Upstream, dict, RouteDecision, dict[str, str]]:
    """Open `decision.model`; on a failure before the first byte, `reroute()` (None: 503) and try again.

    `reroute` routes the request again; the breaker already counts the failed
    models as down, so routing chooses among the others. Raises HTTPError 503
    when no other model may answer.
    """
    failed: list[str] = []
    while True:
        got = await open_first(open_, decision.model)
        if not isinstance(got, str):
            breaker.ok(decision.model)
            headers = {FAILOVER_HEADER: ",".join(failed)} if failed else {}
            return got[0], got[1], decision, headers
        breaker.failed(decision.model)
        failed.append(decision.model)
        if reroute is None:
            raise unavailable(decision.model, got, retry_after_s)
        try:
            again = await reroute()
        except RoutingError:
            raise unavailable(decision.model, got, retry_after_s) from None
        if again.model in failed:
            raise unavailable(decision.model, got, retry_after_s)
        log.warning("failover: %s failed (%s); %s answers instead", decision.model, got, again.model)
        # A plain answer from the other model: no cascade on a failover (its first model may be the failed one).
        decision = replace(again, reason=f"{again.reason};failover(from={','.join(failed)})", escalate_to=None)
