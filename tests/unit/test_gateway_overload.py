"""Overload answers at once: the ingress's in-flight bound (429), counts that fail (503, never a false 400)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.fleet.schema import TelemetryConfig, parse_fleet
from serving.gateway.gateway import Gateway
from serving.gateway.routes import build_fastapi
from serving.gateway.telemetry import RequestTelemetry
from serving.replica.engines.fake import FakeEngine
from serving.router.build import Router
from serving.router.policies import CheapestFitPolicy
from tests.unit.conftest import fleet_dict
from tests.unit.fakes import CountingClient


@pytest.fixture
def gw():
    fleet = parse_fleet(fleet_dict(server={"limits": {"max_inflight": 2}}), "test")
    client = CountingClient({"small": FakeEngine("small", 64), "large": FakeEngine("large", 256)})
    return Gateway(fleet, client, Router.of(CheapestFitPolicy()), RequestTelemetry(TelemetryConfig()))


def _chat(http, model="auto", **extra):
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, **extra}
    return http.post("/v1/chat/completions", json=body)


def test_requests_beyond_the_inflight_bound_get_429_at_once_and_nothing_leaks(gw):
    with TestClient(build_fastapi(gw)) as http:
        for extra in ({}, {"stream": True}, {"max_tokens": 0}):  # plain, streamed, invalid: all released
            _chat(http, **extra)
        assert gw.inflight == 0
        gw.inflight = 2  # two requests in flight (e.g. long streams)
        opened = len(gw.client.opened)
        r = _chat(http)
        assert r.status_code == 429 and r.json()["error"]["code"] == "ingress_overloaded"
        assert r.headers["Retry-After"] == str(gw.fleet.server.retry_after_s)
        assert gw.inflight == 2 and len(gw.client.opened) == opened  # refused before any model was asked
        gw.inflight = 1
        assert _chat(http).status_code == 200 and gw.inflight == 1


def test_counts_that_all_fail_are_a_503_to_retry_not_a_context_400(gw):
    gw.client.overloaded |= {"small", "large"}  # every count refused (queue full)
    with TestClient(build_fastapi(gw)) as http:
        r = _chat(http)
    assert r.status_code == 503 and r.json()["error"]["code"] == "count_unavailable"
    assert r.headers["Retry-After"]


def test_token_id_prompts_are_counted_by_their_length(gw):
    with TestClient(build_fastapi(gw)) as http:
        r = http.post("/v1/completions", json={"model": "auto", "prompt": [1, 2, 3, 4], "max_tokens": 2})
    assert r.status_code == 200, r.text
    assert gw.client.counted == []  # no round trip to any model to count ids


def test_a_model_beyond_its_slots_at_this_ingress_is_refused_at_once_and_slots_come_back(gw):
    # small: max_ongoing 64 + max_queued 64 by default; hold them all as if 128 streams were running.
    slots = gw.admission.slots["small"]
    gw.admission.held["small"] = slots
    with TestClient(build_fastapi(gw)) as http:
        opened = len(gw.client.opened)
        r = _chat(http, model="small")
        assert r.status_code == 429 and r.json()["error"]["code"] == "overloaded" and r.headers["Retry-After"]
        assert len(gw.client.opened) == opened  # refused before the model was asked
        gw.admission.held["small"] = slots - 1
        assert _chat(http, model="small", stream=True).status_code == 200
    assert gw.admission.held["small"] == slots - 1  # the stream's slot came back when it ended


def test_model_slots_scale_with_replicas_and_split_over_ingress_replicas():
    from serving.gateway.admission import ModelSlots

    s = ModelSlots({"m": 6}, ingress_replicas=2)
    assert [s.take("m", 1) for _ in range(4)] == [True, True, True, False]
    assert s.take("m", 2)  # a second model replica: twice the slots
    s.give("m")
    s.give("m")
    assert s.held["m"] == 2


def test_a_model_whose_oldest_queued_stream_waited_too_long_refuses_until_its_queue_moves():
    from serving.gateway.admission import ModelSlots

    s = ModelSlots({"m": 10}, max_queue_wait_s=1.0)
    assert s.take("m", 1, key=1, now=0.0) and s.take("m", 1, key=2, now=0.5)
    assert s.take("m", 1, key=3, now=0.9)  # the oldest (key 1) has waited 0.9 s
    assert not s.take("m", 1, key=4, now=1.2)  # 1.2 s: the queue is not moving
    assert s.take("m", 1, key=None, now=1.2) is False  # plain answers too
    s.started("m", 1)  # key 1 started: the oldest waiting is now key 2 (0.7 s)
    assert s.take("m", 1, key=5, now=1.2)
    s.give("m", 2)
    s.give("m", 3)
    assert s.take("m", 1, key=6, now=5.0) is False  # key 5 waits since 1.2 s
    s.started("m", 5)
    assert s.take("m", 1, key=7, now=5.0) and s.held["m"] == 3  # keys 1, 5 and 7
