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

The runner sees the gateway only through `CascadeHost`: open an upstream,
price tokens, and turn an answer or a stream into the HTTP response.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from starlette.responses import Response

from serving.gateway.errors import HTTPError
from serving.gateway.failover import FAILOVER_HEADER, Breaker, first_answer, open_first
from serving.gateway.protocol import ChatRequest, CompletionRequest
from serving.gateway.telemetry import RequestRecord
from serving.gateway.upstream import Upstream, engine_body, sse_events
from serving.router.cascade import confidence, decide_on_logprobs, judge, stream_logprobs
from serving.router.predictor import prompt_text
from serving.router.state import RoutingState, cascade_thresholds
from serving.router.types import RouteDecision

CASCADE_HEADER = "x-petit-cascade"
WireRequest = ChatRequest | CompletionRequest


class CascadeHost(Protocol):
    """What the cascade needs from the gateway."""

    def open(self, model_id: str, kind: str, body: dict) -> Upstream:
        """Start a request on `model_id` with an engine body."""

    def cost(self, model_id: str, prompt_tokens: int, completion_tokens: int) -> float:
        """What `model_id` charges for these tokens (USD)."""

    def observe(self, score: float | None, escalated: bool) -> None:
        """One cascade outcome, for online learning (`score`: the router's, None without a prediction)."""

    @property
    def breaker(self) -> Breaker:
        """The models that just failed (see `serving.gateway.failover`)."""

    @property
    def retry_after_s(self) -> int:
        """Retry-After for a 503 when no model can answer."""

    def respond(
        self, answer: dict, decision: RouteDecision, rec: RequestRecord, t0: float, headers: dict[str, str]
    ) -> Response:
        """A complete (non-streamed) answer as the client's response; records the request."""

    def relay(
        self,
        upstream: Upstream,
        decision: RouteDecision,
        rec: RequestRecord,
        t0: float,
        req: WireRequest,
        headers: dict[str, str],
        strip_logprobs: bool,
    ) -> Response:
        """A stream as the client's SSE response; records the request when it ends."""


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


class _Chained:
    """Lines already read, then the rest of an upstream; cancel() reaches the upstream."""

    def __init__(self, head: list[str], rest: Upstream) -> None:
        self._head, self._rest = list(head), rest

    def __aiter__(self) -> _Chained:
        return self

    async def __anext__(self) -> Any:
        if self._head:
            return self._head.pop(0)
        return await self._rest.__anext__()

    def cancel(self) -> None:
        self._rest.cancel()


class CascadeRun:
    """One request served through the cascade. `run()` raises HTTPError/Overloaded like a plain request."""

    def __init__(
        self,
        host: CascadeHost,
        kind: str,
        body: dict,
        req: WireRequest,
        decision: RouteDecision,
        rec: RequestRecord,
        t0: float,
        state: RoutingState,
    ) -> None:
        self.host, self.kind, self.body, self.req = host, kind, body, req
        self.decision, self.rec, self.t0 = decision, rec, t0
        self.limits = cascade_thresholds(state, prompt_text(kind, body))  # the prompt kind's, when set
        self.strip = not client_wants_logprobs(kind, body)

    async def run(self) -> Response:
        model = self.decision.model
        got = await open_first(
            lambda m: self.host.open(m, self.kind, with_logprobs(self.kind, engine_body(self.body, self.req, m))), model
        )
        if isinstance(got, str):  # the first model failed before answering: the strong one answers alone
            self.host.breaker.failed(model)
            second = self._escalated(f"failover:{got}")
            up, item = await self._ask_strong(second)
            headers = {CASCADE_HEADER: "escalated", FAILOVER_HEADER: model}
            if item["type"] == "response":
                return self.host.respond(item["body"], second, self.rec, self.t0, headers)
            return self.host.relay(up, second, self.rec, self.t0, self.req, headers, False)
        first, item = got
        self.host.breaker.ok(model)
        if item["type"] == "error":
            raise HTTPError.from_item(item)
        if item["type"] == "response":
            return await self._complete(item["body"])
        return await self._stream(first)

    def _committed(self, why: str) -> RouteDecision:
        d = self.decision
        committed = RouteDecision(d.model, f"{d.reason};committed({why})", expected_cost_usd=d.expected_cost_usd)
        self.rec.route_reason = committed.reason
        return committed

    def _escalated(self, why: str) -> RouteDecision:
        d = self.decision
        assert d.escalate_to is not None  # a cascade decision names its second model
        second = RouteDecision(d.escalate_to, f"{d.reason};escalated({why})", strong_score=d.strong_score)
        self.rec.model, self.rec.route_reason = second.model, second.reason
        return second

    async def _ask_strong(self, second: RouteDecision) -> tuple[Upstream, dict]:
        open_ = lambda m: self.host.open(m, self.kind, engine_body(self.body, self.req, m))  # noqa: E731
        up, item, _, _ = await first_answer(open_, second, self.host.breaker, None, self.host.retry_after_s)
        if item["type"] == "error":
            raise HTTPError.from_item(item)
        return up, item

    async def _complete(self, answer: dict) -> Response:
        verdict = decide_on_logprobs(((answer.get("choices") or [{}])[0]).get("logprobs"), self.limits)
        self.host.observe(self.decision.strong_score, verdict.escalate)
        if not verdict.escalate:
            committed = self._committed(verdict.reason)
            out = without_logprobs(answer) if self.strip else answer
            return self.host.respond(out, committed, self.rec, self.t0, {CASCADE_HEADER: "committed"})
        usage = answer.get("usage") or {}
        self.rec.extra_cost_usd = self.host.cost(
            self.decision.model, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        )
        second = self._escalated(verdict.reason)
        _, item = await self._ask_strong(second)
        return self.host.respond(item["body"], second, self.rec, self.t0, {CASCADE_HEADER: "escalated"})

    async def _stream(self, first: Upstream) -> Response:
        lines, values, tokens, finished = await _buffer(first, self.limits.buffer_tokens)
        verdict = judge(confidence(values), self.limits)
        self.host.observe(self.decision.strong_score, verdict.escalate)
        if not verdict.escalate:
            committed = self._committed(verdict.reason)
            return self.host.relay(
                _Chained(lines, first),
                committed,
                self.rec,
                self.t0,
                self.req,
                {CASCADE_HEADER: "committed"},
                self.strip,
            )
        if not finished:
            first.cancel()
        # The cancelled stream is paid for the tokens it produced (its prompt's prefill is not counted).
        self.rec.extra_cost_usd = self.host.cost(self.decision.model, 0, tokens)
        second = self._escalated(verdict.reason)
        up, _ = await self._ask_strong(second)
        return self.host.relay(up, second, self.rec, self.t0, self.req, {CASCADE_HEADER: "escalated"}, False)


async def _buffer(first: Upstream, n_tokens: int) -> tuple[list[str], list[float], int, bool]:
    """Read lines until `n_tokens` content chunks (or the end): (lines, logprobs, tokens, finished)."""
    lines: list[str] = []
    values: list[float] = []
    tokens = 0
    async for blob in first:
        for line in sse_events(blob):
            lines.append(line)
            if tokens >= n_tokens:  # the rest of a blob read past the buffer: kept, not judged
                continue
            if line.startswith("data: [DONE]"):
                return lines, values, tokens, True
            if line.startswith("data: {"):
                got = stream_logprobs([json.loads(line[6:])])
                values += got
                tokens += len(got)
        if tokens >= n_tokens:
            break
    return lines, values, tokens, False
