"""Running a cascade in the gateway: the cheap model first, the strong one when it is unsure.

The decision (from `CascadePolicy`) names the first model and `escalate_to`.
The first model is asked with token logprobs on; `serving.router.cascade`
scores its answer's confidence (mean and minimum token logprob, thresholds in
the routing state) and decides.

- Non-streaming: the whole first answer is scored. Confident: it is returned.
  Not confident: the strong model is asked and its answer returned.
- Streaming: the first `buffer_tokens` content tokens of the first model are
  held back, then scored (or the whole answer, if it ends sooner). Confident:
  the buffer is flushed and the rest streamed (committed: no escalation once
  the client has text). Not confident: the first stream is cancelled and the
  strong model's answer streamed from its start. TTFT includes the buffering.

Both calls are paid: `x-petit-cost-usd` (and the usage chunk's `petit.cost_usd`)
includes the first model's share; `x-petit-cascade` says `committed` or
`escalated`. Logprobs are removed from what the client sees unless it asked.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from serving.errors import HTTPError
from serving.router.cascade import CascadeThresholds, confidence, decide, decide_on_logprobs, stream_logprobs
from serving.routing import RouteDecision

if TYPE_CHECKING:
    from serving.gateway import Gateway
    from serving.telemetry import RequestRecord

CASCADE_HEADER = "x-petit-cascade"


def client_wants_logprobs(kind: str, body: dict) -> bool:
    return bool(body.get("logprobs")) if kind == "chat" else body.get("logprobs") is not None


def with_logprobs(kind: str, body: dict) -> dict:
    """The request with the sampled tokens' logprobs switched on (chat: bool; completions: int)."""
    if client_wants_logprobs(kind, body):
        return body
    return dict(body, logprobs=True) if kind == "chat" else dict(body, logprobs=0)


def without_logprobs(obj: dict) -> dict:
    for choice in obj.get("choices") or []:
        if isinstance(choice, dict) and "logprobs" in choice:
            choice["logprobs"] = None
    return obj


def without_logprobs_line(line: str) -> str:
    if not line.startswith("data: {"):
        return line
    return f"data: {json.dumps(without_logprobs(json.loads(line[6:])), separators=(',', ':'))}\n\n"


def thresholds_from(state: Any) -> CascadeThresholds:
    """Thresholds from a RoutingState (or the defaults when there is none)."""
    if state is None:
        return CascadeThresholds()
    s = state.get()
    return CascadeThresholds(s.cascade_min_mean_logprob, s.cascade_min_token_logprob, s.cascade_buffer_tokens)


class _Chained:
    """Lines already read, then the rest of an upstream; cancel() reaches the upstream."""

    def __init__(self, head: list[str], rest: Any) -> None:
        self._head, self._rest = list(head), rest

    def __aiter__(self) -> "_Chained":
        return self

    async def __anext__(self) -> str:
        if self._head:
            return self._head.pop(0)
        return await self._rest.__anext__()

    def cancel(self) -> None:
        self._rest.cancel()


async def run_cascade(gw: "Gateway", kind: str, body: dict, req: Any, decision: RouteDecision,
                      rec: "RequestRecord", t0: float):
    """Serve one request through the cascade. Raises HTTPError/Overloaded like a plain request."""
    limits = thresholds_from(gw.routing_state)
    engine_body = gw._engine_body(body, req, decision)
    first = gw.client.open(decision.model, kind, with_logprobs(kind, engine_body))
    item = await gw._first(first)
    if item["type"] == "error":
        raise HTTPError.from_item(item)
    strip = not client_wants_logprobs(kind, body)
    if item["type"] == "response":
        return await _complete(gw, kind, body, req, decision, rec, t0, item["body"], limits, strip)
    return await _stream(gw, kind, body, req, decision, rec, t0, first, limits, strip)


def _escalated(decision: RouteDecision, why: str) -> RouteDecision:
    return RouteDecision(decision.escalate_to, f"{decision.reason};escalated({why})",
                         strong_score=decision.strong_score)


async def _ask_strong(gw: "Gateway", kind: str, body: dict, req: Any, second: RouteDecision, rec: "RequestRecord"):
    rec.model, rec.route_reason = second.model, second.reason
    up = gw.client.open(second.model, kind, gw._engine_body(body, req, second))
    item = await gw._first(up)
    if item["type"] == "error":
        raise HTTPError.from_item(item)
    return up, item


async def _complete(gw, kind, body, req, decision, rec, t0, answer: dict, limits, strip: bool):
    verdict = decide_on_logprobs(((answer.get("choices") or [{}])[0]).get("logprobs"), limits)
    if not verdict.escalate:
        committed = RouteDecision(decision.model, f"{decision.reason};committed({verdict.reason})")
        rec.route_reason = committed.reason
        out = without_logprobs(answer) if strip else answer
        return gw._complete(out, committed, rec, t0, {CASCADE_HEADER: "committed"})
    usage = answer.get("usage") or {}
    rec.extra_cost_usd = gw.snapshot().get(decision.model).cost(int(usage.get("prompt_tokens") or 0),
                                                                 int(usage.get("completion_tokens") or 0))
    second = _escalated(decision, verdict.reason)
    _, item = await _ask_strong(gw, kind, body, req, second, rec)
    return gw._complete(item["body"], second, rec, t0, {CASCADE_HEADER: "escalated"})


async def _buffer(first: Any, n_tokens: int) -> tuple[list[str], list[float], int, bool]:
    """Read lines until `n_tokens` content chunks (or the end): (lines, logprobs, tokens, finished)."""
    lines: list[str] = []
    values: list[float] = []
    tokens = 0
    async for line in first:
        lines.append(line)
        if line.startswith("data: [DONE]"):
            return lines, values, tokens, True
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            got = stream_logprobs([chunk])
            values += got
            tokens += len(got)
            if tokens >= n_tokens:
                break
    return lines, values, tokens, False


async def _stream(gw, kind, body, req, decision, rec, t0, first, limits, strip: bool):
    lines, values, tokens, finished = await _buffer(first, limits.buffer_tokens)
    verdict = decide(confidence(values), limits)
    if not verdict.escalate:
        committed = RouteDecision(decision.model, f"{decision.reason};committed({verdict.reason})",
                                  expected_cost_usd=decision.expected_cost_usd)
        rec.route_reason = committed.reason
        return gw._streaming(_Chained(lines, first), committed, rec, t0, req.wants_usage_chunk, req,
                             {CASCADE_HEADER: "committed"}, strip_logprobs=strip)
    if not finished:
        first.cancel()
    # The cancelled stream is paid for the tokens it produced (its prompt's prefill is not counted).
    rec.extra_cost_usd = gw.snapshot().get(decision.model).cost(0, tokens)
    second = _escalated(decision, verdict.reason)
    up, _ = await _ask_strong(gw, kind, body, req, second, rec)
    return gw._streaming(up, second, rec, t0, req.wants_usage_chunk, req, {CASCADE_HEADER: "escalated"})
