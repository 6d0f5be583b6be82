"""Failover before the first byte: auto moves to another model, a named model is a 503, health sees it."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from serving.fleet.schema import TelemetryConfig
from serving.gateway.failover import FAILOVER_HEADER, Breaker
from serving.gateway.gateway import Gateway
from serving.gateway.routes import build_fastapi
from serving.gateway.telemetry import RequestTelemetry
from serving.replica.engines.fake import FakeEngine
from serving.router.build import Router
from serving.router.policies import CascadePolicy, CheapestFitPolicy
from serving.router.state import RoutingStateHolder
from tests.unit.fakes import FakeModelClient, FakeUpstream


class FailingClient(FakeModelClient):
    """`fail[model]`: "raise" (the replica is gone), "error" (the engine answers 500), "midstream"."""

    def __init__(self, engines) -> None:
        super().__init__(engines)
        self.fail: dict[str, str] = {}

    def open(self, model_id, kind, body):
        how = self.fail.get(model_id)
        if how == "raise":
            self.opened.append((model_id, kind, body))
            raise RuntimeError("ActorDiedError: the replica died")
        if how == "error":
            self.opened.append((model_id, kind, body))

            async def engine_error():
                yield {"type": "error", "status": 500, "message": "EngineCore encountered an issue"}

            return FakeUpstream(engine_error(), False)
        up = super().open(model_id, kind, body)
        if how == "midstream":
            inner = up._agen

            async def dies():
                n = 0
                async for item in inner:
                    yield item
                    n += 1
                    if n == 3:
                        raise RuntimeError("ActorDiedError mid-stream")

            up._agen = dies()
        return up

    async def count_prompt_tokens(self, model_id, kind, body):
        if self.fail.get(model_id) == "raise":
            raise RuntimeError("ActorDiedError")
        return await super().count_prompt_tokens(model_id, kind, body)


def _gw(fleet, cascade: bool = False):
    client = FailingClient({"small": FakeEngine("small", 64), "large": FakeEngine("large", 256)})
    state = RoutingStateHolder()
    policy = CascadePolicy(state=state) if cascade else CheapestFitPolicy(state)
    gw = Gateway(fleet, client, Router.of(policy, state=state), RequestTelemetry(TelemetryConfig()))
    return gw, client


def _ask(http, model="auto", **extra):
    body = {"model": model, "messages": [{"role": "user", "content": "hi there"}], "max_tokens": 5, **extra}
    return http.post("/v1/chat/completions", json=body)


@pytest.mark.parametrize("how", ["raise", "error"])
def test_auto_fails_over_to_another_model_and_routing_skips_the_failed_one(fleet, how):
    gw, client = _gw(fleet)
    client.fail["small"] = how
    with TestClient(build_fastapi(gw)) as http:
        r = _ask(http)
        assert r.status_code == 200, r.text
        assert r.headers["x-petit-model"] == "large"
        if how == "error":  # counting worked, generating failed: routed again
            assert r.headers[FAILOVER_HEADER] == "small"
            assert "failover(from=small)" in r.headers["x-petit-route-reason"]
        else:  # its replica is gone: counting the prompt on it already failed, so routing skipped it
            assert "small" not in [o[0] for o in client.opened]
        # the next request goes straight to the large model: the breaker holds the small one down
        client.opened.clear()
        r2 = _ask(http)
        assert r2.status_code == 200 and [o[0] for o in client.opened] == ["large"]
        assert FAILOVER_HEADER not in r2.headers
        health = http.get("/health")
        assert health.status_code == 503 and health.json()["models"]["small"] == {"ready_replicas": 0, "failing": True}


def test_named_model_that_fails_is_503_with_retry_after(fleet):
    gw, client = _gw(fleet)
    client.fail["small"] = "raise"
    with TestClient(build_fastapi(gw)) as http:
        r = _ask(http, model="small")
        metrics = http.get("/metrics").text
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"
    assert r.headers["Retry-After"] == str(fleet.server.retry_after_s)
    assert "ActorDiedError" in r.json()["error"]["message"] or "RuntimeError" in r.json()["error"]["message"]
    assert 'status="503"' in metrics


def test_no_model_left_is_503(fleet):
    gw, client = _gw(fleet)
    client.fail.update(small="error", large="error")
    with TestClient(build_fastapi(gw)) as http:
        r = _ask(http)
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"
    assert r.headers["Retry-After"]


def test_a_request_error_is_not_a_failover(fleet):
    gw, client = _gw(fleet)
    with TestClient(build_fastapi(gw)) as http:
        r = _ask(http, model="small", max_tokens=10_000)  # over the context window: the client's fault
    assert r.status_code == 400 and [o[0] for o in client.opened] == []


@pytest.mark.parametrize("stream", [False, True])
def test_cascade_whose_first_model_fails_is_answered_by_the_second(fleet, stream):
    gw, client = _gw(fleet, cascade=True)
    client.fail["small"] = "error"  # its engine fails when asked (its count still worked)
    with TestClient(build_fastapi(gw)) as http:
        r = _ask(http, stream=stream)
    assert r.status_code == 200 and r.headers["x-petit-model"] == "large"
    assert r.headers[FAILOVER_HEADER] == "small" and r.headers["x-petit-cascade"] == "escalated"
    if stream:
        assert r.text.rstrip().endswith("data: [DONE]") and '"content"' in r.text


def test_stream_failing_midway_ends_with_an_error_event_and_done_and_is_counted_as_upstream(fleet):
    gw, client = _gw(fleet)
    client.fail["small"] = "midstream"
    with TestClient(build_fastapi(gw)) as http:
        r = _ask(http, model="small", stream=True)
        metrics = http.get("/metrics").text
    events = [line[6:] for line in r.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "upstream_failed"
    assert 'status="502"' in metrics and 'status="499"' not in metrics  # not mistaken for a client cancel


def test_breaker_holds_a_failed_model_down_for_a_while_or_until_it_answers():
    now = [100.0]
    b = Breaker(hold_s=5.0, clock=lambda: now[0])
    b.failed("a")
    assert b.down() == {"a"}
    now[0] += 4.9
    assert b.down() == {"a"}
    now[0] += 0.2
    assert b.down() == frozenset()
    b.failed("a")
    b.ok("a")
    assert b.down() == frozenset()
