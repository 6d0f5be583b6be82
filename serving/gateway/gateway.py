"""The OpenAI-compatible front door: validate, route, forward, account.

`Gateway` is a plain class over an injected `ModelClient` (Ray Serve handles in
production, a fake in unit tests) and a `Router` (the policies, their predictor
and shared routing state, from `serving.router.build`). Its endpoints are
listed once, in `serving.gateway.routes`: `app.py` mounts them on the Ray Serve
ingress, `build_fastapi` serves them without Ray (tests, debugging).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import ClientDisconnect

from serving.fleet.cost import format_cost
from serving.fleet.schema import AUTO_MODEL, FleetConfig
from serving.fleet.tenants import TenantConfig
from serving.gateway.admission import ModelSlots
from serving.gateway.cascade_runner import CascadeRun, without_logprobs_line
from serving.gateway.counting import PromptCounter
from serving.gateway.errors import HTTPError, error_body
from serving.gateway.failover import Breaker, first_answer
from serving.gateway.protocol import ChatRequest, CompletionRequest, WireError, check_sizes, parse_body, validate
from serving.gateway.telemetry import RequestRecord, RequestTelemetry
from serving.gateway.tenancy import Tenancy
from serving.gateway.upstream import ModelClient, Overloaded, Upstream, engine_body, sse_events
from serving.router.build import Router
from serving.router.constraints import ConstraintError, parse_constraints, with_max_tier
from serving.router.policies import route
from serving.router.predictor import DifficultyPredictor, prompt_text
from serving.router.state import RoutingStateHolder
from serving.router.types import FleetSnapshot, ModelSnapshot, RouteDecision, RouteRequest, RoutingError, RoutingPolicy

_CONTENT = re.compile(r'"(?:content|text)":"[^"]')
POLICY_HEADER = "x-petit-policy"


def _response(err: HTTPError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


WireRequest = ChatRequest | CompletionRequest
log = logging.getLogger("petit.gateway")


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, read in chunks; WireError 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise WireError(f"request body of {int(declared)} bytes is over the {limit}-byte limit", status=413)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise WireError(f"request body is over the {limit}-byte limit", status=413)
            chunks.append(chunk)
    except ClientDisconnect:  # a stalled upload the client gave up on: its fault, not an internal error
        raise HTTPError(499, "client disconnected before sending the whole body", code="client_disconnected") from None
    return b"".join(chunks)


class Gateway:
    """The ingress logic. Implements `CascadeHost` for the cascade runner."""

    def __init__(
        self,
        fleet: FleetConfig,
        client: ModelClient,
        router: Router,
        telemetry: RequestTelemetry,
        api_keys: frozenset[str] | None = None,
        cascade_observer: Callable[[float | None, bool], None] | None = None,
        tenancy: Tenancy | None = None,
    ) -> None:
        self.fleet = fleet
        self.router = router  # policies selectable per request with x-petit-policy, their shared state
        self.tenancy = tenancy or Tenancy(fleet, None, api_keys)  # keys -> tenants, their limits and budgets
        self.api_keys = self.tenancy.api_keys
        self.client = client
        self.telemetry = telemetry
        self.cascade_observer = cascade_observer  # online learning's label sink (serving.control.learning)
        self.created = int(time.time())
        self.breaker = Breaker()  # models whose requests just failed count as down for a few seconds
        wait_ms = fleet.server.limits.max_queue_wait_ms or fleet.slo.ttft_p95_ms / 2
        slots = {m.id: m.max_ongoing_requests + m.max_queued_requests for m in fleet.models}
        self.admission = ModelSlots(slots, max_queue_wait_s=wait_ms / 1e3)
        self.counter = PromptCounter(client, self.breaker, fleet.routing.count_prompt_tokens == "always")
        self.inflight = 0  # requests admitted and not yet recorded (streams until their end)
        self._snapshot: FleetSnapshot | None = None
        self._snapshot_key: tuple | None = None

    @property
    def policy(self) -> RoutingPolicy:
        """The default policy for `auto`."""
        return self.router.default

    @property
    def routing_state(self) -> RoutingStateHolder:
        return self.router.state

    @property
    def predictor(self) -> DifficultyPredictor | None:
        return self.router.predictor

    def ready_view(self) -> dict[str, int]:
        """Ready replicas per model as Serve reports them, with models that just failed counted as down."""
        ready = dict(self.client.ready_replicas())
        for m in self.breaker.down():
            ready[m] = 0
        return ready

    def snapshot(self) -> FleetSnapshot:
        """The fleet as routing sees it; rebuilt only when the readiness view changes."""
        key = tuple(sorted(self.ready_view().items()))
        if key != self._snapshot_key:
            self._snapshot, self._snapshot_key = FleetSnapshot.from_config(self.fleet, dict(key)), key
        return self._snapshot

    # ---- endpoints (mounted from serving.gateway.routes) --------------------
    async def chat(self, request: Request) -> Response:
        return await self.handle("chat", request)

    async def completions(self, request: Request) -> Response:
        return await self.handle("completion", request)

    async def handle(self, kind: str, request: Request) -> Response:
        t0 = time.perf_counter()
        rec = RequestRecord(kind=kind, requested_model="?", start_ns=time.time_ns(), stream=False)
        self.inflight += 1
        if self.inflight > self.fleet.server.limits.max_inflight:  # refuse at once: no unbounded queue
            retry = str(self.retry_after_s)
            msg = f"this ingress holds {self.inflight - 1} requests, its limit; retry after {retry}s"
            return self._fail(rec, t0, HTTPError(429, msg, code="ingress_overloaded", headers={"Retry-After": retry}))
        try:
            tenant = self.authorize(request)
            limits = self.fleet.server.limits
            raw = await read_capped(request, limits.max_body_bytes)
            body = parse_body(raw, limits.max_json_depth, request.headers.get("content-type"))
            req = validate(kind, body)
            check_sizes(req, limits.max_messages, limits.max_content_parts)
            rec.requested_model, rec.stream = req.model, req.stream
            if self.telemetry.config.record_prompts:
                rec.prompt_text = json.dumps(body.get("messages") if kind == "chat" else body.get("prompt"))
            cap = await self.tenancy.admit(tenant, req, body, request.headers, len(raw), rec, self.snapshot())
            route_it = lambda: self._route(kind, req, body, request.headers, cap, rec.priority, len(raw))  # noqa: E731
            decision = await route_it()
            rec.model, rec.route_reason = decision.model, decision.reason
            rec.marks.update(start=t0, routed=time.perf_counter())  # per-hop timing (telemetry.HOPS)
            if decision.escalate_to is not None:
                run = CascadeRun(self, kind, body, req, decision, rec, t0, self.routing_state.get())
                return await run.run()
            reroute = route_it if req.model == AUTO_MODEL else None
            open_ = lambda m: self._admit_open(m, kind, engine_body(body, req, m), rec)  # noqa: E731
            got = await first_answer(open_, decision, self.breaker, reroute, self.retry_after_s)
            upstream, first, decision, extra = got
            for m in rec.admitted:
                self.admission.started(m, id(rec))  # answered: out of the queue
            rec.model, rec.route_reason = decision.model, decision.reason
            rec.marks.update(getattr(upstream, "marks", {}))  # the transport's own stamps, when it keeps them
            if first["type"] == "error":
                raise HTTPError.from_item(first)
            if first["type"] == "response":
                return self.respond(first["body"], decision, rec, t0, extra)
            return self.relay(upstream, decision, rec, t0, req, extra, False)
        except WireError as err:
            return self._fail(rec, t0, HTTPError(err.status, err.message, err.param))
        except RoutingError as err:
            retry = {"Retry-After": str(self.retry_after_s)} if err.status in (429, 503) else None
            return self._fail(rec, t0, HTTPError(err.status, err.message, err.param, err.code, headers=retry))
        except ConstraintError as err:
            return self._fail(rec, t0, HTTPError(400, err.message, err.param, "invalid_constraint"))
        except Overloaded:
            retry = str(self.fleet.server.retry_after_s)
            return self._fail(
                rec,
                t0,
                HTTPError(
                    429,
                    f"model '{rec.model}' is overloaded; retry after {retry}s",
                    code="overloaded",
                    headers={"Retry-After": retry},
                ),
            )
        except HTTPError as err:
            return self._fail(rec, t0, err)
        except Exception:  # noqa: BLE001 - the catch-all: an OpenAI-shaped 500, logged and counted, never plain text
            log.exception("unexpected error serving a %s request", kind)
            return self._fail(
                rec, t0, HTTPError(500, "internal error while serving the request", code="internal_error")
            )

    def authorize(self, request: Request) -> TenantConfig | None:
        """The caller's tenant (None without tenants); a 401 HTTPError for a bad key (see `Tenancy.authenticate`)."""
        return self.tenancy.authenticate(request.headers)

    async def metrics(self, request: Request) -> Response:
        return Response(self.telemetry.metrics_text(), media_type="text/plain; version=0.0.4; charset=utf-8")

    # ---- steps -----------------------------------------------------------
    async def _route(
        self, kind: str, req: WireRequest, body: dict, headers: Mapping[str, str], cap: str | None = None,
        priority: str | None = None, body_bytes: int | None = None,
    ) -> RouteDecision:  # fmt: skip
        snap = self.snapshot()
        budget = req.output_budget
        tiers = sorted({m.tier for m in snap.models})
        constraints = with_max_tier(parse_constraints(body, headers, tiers), cap)  # cap: the tenant's tier
        if req.model != AUTO_MODEL:
            decision = route(RouteRequest(req.model, budget or 1), snap, self.policy)
            limit = snap.get(decision.model).max_model_len
            if budget is not None and budget >= limit:
                param = "max_completion_tokens" if getattr(req, "max_completion_tokens", None) else "max_tokens"
                raise HTTPError(
                    400,
                    f"{param} ({budget}) must be below model '{decision.model}''s context window of {limit} tokens",
                    param,
                )
            return decision
        # Count on the ready models routing may use: a tier the autoscaler closed may be stopping
        # right now, and a call to a stopping replica would only wait for the count timeout.
        allowed = self.routing_state.get().allowed_tiers
        ready = [m for m in snap.models if m.ready_replicas > 0 and (allowed is None or m.tier in allowed)]
        assumed = budget or self.fleet.routing.default_max_tokens
        size = len(json.dumps(body)) if body_bytes is None else body_bytes
        counting = self.counter.counts(kind, body, size, ready, assumed)
        if self.predictor is not None:  # the encoder runs on its own thread, beside the token counts
            counts, prediction = await asyncio.gather(counting, self.predictor.apredict(prompt_text(kind, body)))
        else:
            counts, prediction = await counting, None
        route_key = (zlib.crc32(json.dumps(body, sort_keys=True).encode()) & 0xFFFFFFFF) / 2**32
        request = RouteRequest(AUTO_MODEL, assumed, counts, constraints, prediction, route_key, priority)
        return route(request, snap, self._policy_for(headers))

    def _policy_for(self, headers: Mapping[str, str]) -> RoutingPolicy:
        """The default policy, or the one named in `x-petit-policy` (400 for one not enabled here)."""
        name = headers.get(POLICY_HEADER)
        if name is None or name == self.policy.name:
            return self.policy
        if name not in self.router.policies:
            known = ", ".join(sorted(self.router.policies))
            raise HTTPError(400, f"routing policy '{name}' is not enabled here; enabled: {known}", POLICY_HEADER)
        return self.router.policies[name]

    def _admit_open(self, model_id: str, kind: str, body: dict, rec: RequestRecord) -> Upstream:
        """Open `model_id` if it has a free slot at this ingress (raises Overloaded: a 429 at once)."""
        key = id(rec) if rec.stream else None  # streams are timed in the queue (admission.py)
        if not self.admission.take(model_id, self.client.ready_replicas().get(model_id, 0), key, time.monotonic()):
            raise Overloaded()
        rec.admitted.append(model_id)  # given back in _finish
        return self.client.open(model_id, kind, body)

    # ---- CascadeHost ------------------------------------------------------
    def open(self, model_id: str, kind: str, body: dict) -> Upstream:
        return self.client.open(model_id, kind, body)

    def cost(self, model_id: str, prompt_tokens: int, completion_tokens: int) -> float:
        return self._model(model_id).cost(prompt_tokens, completion_tokens)

    @property
    def retry_after_s(self) -> int:
        return self.fleet.server.retry_after_s

    def observe(self, score: float | None, escalated: bool) -> None:
        if self.cascade_observer is not None:
            self.cascade_observer(score, escalated)

    def _model(self, model_id: str) -> ModelSnapshot:
        m = self.snapshot().get(model_id)
        if m is None:  # routing only names fleet models
            raise HTTPError(500, f"model '{model_id}' is not in the fleet", code="internal_error")
        return m

    def _headers(
        self, decision: RouteDecision, cost: float | None, basis: str, extra: dict, rec: RequestRecord
    ) -> dict:
        h = {
            "x-petit-model": decision.model,
            "x-petit-route-reason": decision.reason,
            "x-petit-cost-basis": basis,
            **extra,
            **self.tenancy.headers(rec),
        }
        if cost is not None:
            h["x-petit-cost-usd"] = format_cost(cost)
        return h

    def _account(self, rec: RequestRecord, usage: dict) -> None:
        rec.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        rec.completion_tokens = int(usage.get("completion_tokens") or 0)
        rec.cost_usd = self.cost(rec.model or "", rec.prompt_tokens, rec.completion_tokens) + rec.extra_cost_usd

    def respond(
        self, body: dict, decision: RouteDecision, rec: RequestRecord, t0: float, extra_headers: dict[str, str]
    ) -> Response:
        self._account(rec, body.get("usage") or {})
        rec.duration_s = time.perf_counter() - t0
        self._finish(rec)
        return JSONResponse(body, headers=self._headers(decision, rec.cost_usd, "usage", extra_headers, rec))

    def relay(
        self,
        upstream: Upstream,
        decision: RouteDecision,
        rec: RequestRecord,
        t0: float,
        req: WireRequest,
        extra_headers: dict[str, str],
        strip_logprobs: bool,
    ) -> Response:
        # Headers go out before any token: the cost header is an upper bound (max_tokens
        # generated); the exact cost is in the final usage chunk's "petit" field.
        estimate = decision.expected_cost_usd
        if estimate is None:
            budget = req.output_budget or self.fleet.routing.default_max_tokens
            estimate = self.cost(decision.model, 0, budget)
        headers = self._headers(decision, estimate + rec.extra_cost_usd, "estimate", extra_headers, rec)
        return StreamingResponse(
            self._relay(upstream, rec, t0, req.wants_usage_chunk, strip_logprobs),
            media_type="text/event-stream",
            headers=headers,
        )

    async def _relay(
        self, upstream: Upstream, rec: RequestRecord, t0: float, want_usage: bool, strip_logprobs: bool = False
    ) -> AsyncIterator[str]:
        finished = False
        try:
            async for blob in upstream:  # one SSE event, or several whole ones when the reader is behind
                if rec.ttft_s is None and _CONTENT.search(blob):
                    rec.ttft_s = time.perf_counter() - t0
                if (strip_logprobs and '"logprobs":{' in blob) or '"usage":{' in blob:
                    blob = "".join(self._rewrite(line, rec, want_usage, strip_logprobs) for line in sse_events(blob))
                    if not blob:
                        continue
                yield blob
            finished = True
        except Overloaded:
            rec.status, rec.error = 429, "overloaded"
            yield f"data: {json.dumps(error_body(429, 'model overloaded mid-stream', code='overloaded'))}\n\n"
        except Exception as err:  # noqa: BLE001 - the replica failed mid-stream (a client cancel is not an Exception)
            log.warning("stream from %s failed mid-way: %r", rec.model, err)
            self.breaker.failed(rec.model or "")
            rec.status, rec.error = 502, "upstream_failed"
            body = error_body(502, f"model '{rec.model}' failed mid-stream", code="upstream_failed")
            yield f"data: {json.dumps(body)}\n\ndata: [DONE]\n\n"
        finally:
            if not finished and rec.error is None:
                upstream.cancel()  # client went away: stop the generation upstream
                rec.status, rec.error = 499, "client_disconnected"
            rec.duration_s = time.perf_counter() - t0
            self._finish(rec)

    def _rewrite(self, line: str, rec: RequestRecord, want_usage: bool, strip_logprobs: bool) -> str:
        """One SSE event as the client gets it: logprobs stripped if asked, the usage chunk accounted
        (and dropped when unasked, or marked with Petit's model and cost)."""
        if strip_logprobs and '"logprobs":{' in line:
            line = without_logprobs_line(line)
        if '"usage":{' not in line or not line.startswith("data: {"):
            return line
        chunk = json.loads(line[6:])
        self._account(rec, chunk.get("usage") or {})
        if chunk.get("choices"):  # content with running usage (continuous_usage_stats): keep it
            return line
        if not want_usage:
            return ""
        chunk["petit"] = {"model": rec.model, "cost_usd": rec.cost_usd}
        return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n"

    def _finish(self, rec: RequestRecord) -> None:
        self.inflight -= 1
        for m in rec.admitted:
            self.admission.give(m, id(rec))
        self.tenancy.finish(rec)  # settle its reservation with rec.cost_usd
        self.telemetry.record(rec)

    def _fail(self, rec: RequestRecord, t0: float, err: HTTPError) -> JSONResponse:
        rec.status, rec.error = err.status, err.code or err.type or "error"
        rec.duration_s = time.perf_counter() - t0
        self._finish(rec)
        return _response(err)
