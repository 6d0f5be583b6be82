"""The gateway with a recording policy: what routing receives, constraints, health and load views."""

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
from tests.unit.fakes import FakeModelClient
from tests.unit.test_gateway import MSG, post


class _RecordingPolicy:
    """Routes like cheapest_fit but remembers what the gateway gave it."""

    name = "recording"

    def __init__(self, degraded=False):
        self.seen = []
        self.degraded, self.degraded_reason = degraded, "artefact missing" if degraded else None

    def choose(self, request, fleet):
        self.seen.append(request)
        return CheapestFitPolicy().choose(request, fleet)


class _FakePredictor:
    def __init__(self):
        self.texts = []

    async def apredict(self, text):
        from serving.router.types import DifficultyPrediction

        self.texts.append(text)
        return DifficultyPrediction(score=0.9, p_weak_ok=0.2, p_strong_ok=0.8)


def _gw(fleet, policy, predictor=None):
    client = FakeModelClient({"small": FakeEngine("small", 64), "large": FakeEngine("large", 256)})
    return Gateway(fleet, client, Router.of(policy, predictor=predictor), RequestTelemetry(TelemetryConfig())), client


def test_auto_passes_prediction_and_constraints_to_the_policy(fleet):
    policy, predictor = _RecordingPolicy(), _FakePredictor()
    gw, client = _gw(fleet, policy, predictor)
    with TestClient(build_fastapi(gw)) as http:
        r = http.post(
            "/v1/chat/completions",
            headers={"x-petit-min-tier": "large"},
            json={"model": "auto", "messages": MSG, "max_tokens": 2, "petit": {"allow_downgrade": False}},
        )
    assert r.status_code == 200
    (req,) = policy.seen
    assert req.prediction.score == 0.9 and predictor.texts == ["hello there"]
    assert req.constraints.min_tier == "large" and req.constraints.allow_downgrade is False
    assert 0 <= req.route_key < 1
    assert "petit" not in client.opened[-1][2]  # Petit's own field is not sent to the engine


@pytest.mark.parametrize(
    "headers, body_extra, param",
    [
        ({"x-petit-min-tier": "huge"}, {}, "x-petit-min-tier"),
        ({}, {"petit": {"max_cost_usd": -1}}, "petit.max_cost_usd"),
        ({}, {"petit": {"colour": "red"}}, "petit.colour"),
        ({}, {"petit": "cheap"}, "petit"),
    ],
)
def test_bad_constraints_are_400_with_param(fleet, headers, body_extra, param):
    gw, _ = _gw(fleet, _RecordingPolicy())
    with TestClient(build_fastapi(gw)) as http:
        r = http.post("/v1/chat/completions", headers=headers, json={"model": "auto", "messages": MSG, **body_extra})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == param and r.json()["error"]["code"] == "invalid_constraint"


def test_health_reports_degraded_routing(fleet):
    gw, _ = _gw(fleet, _RecordingPolicy(degraded=True))
    with TestClient(build_fastapi(gw)) as http:
        body = http.get("/health").json()
    assert body["status"] == "ready"
    assert body["routing"] == {"policy": "recording", "degraded": True, "degraded_reason": "artefact missing"}


def test_snapshot_is_rebuilt_only_when_readiness_changes(fleet):
    client = FakeModelClient({"small": FakeEngine("small", 64), "large": FakeEngine("large", 256)})
    gw = Gateway(fleet, client, Router.of(CheapestFitPolicy()), RequestTelemetry(TelemetryConfig()))
    first = gw.snapshot()
    assert gw.snapshot() is first
    client.ready["large"] = 0
    changed = gw.snapshot()
    assert changed is not first and changed.get("large").ready_replicas == 0


def test_health_tolerates_a_stopped_model_whose_minimum_is_zero(fleet):
    gw, client = _gw(fleet, CheapestFitPolicy())
    data = fleet.model_dump(mode="json")
    data["models"][1]["replicas"] = {"min": 0, "max": 1, "initial": 1}

    gw.fleet = parse_fleet(data, "t")
    client.ready = {"small": 1, "large": 0}
    with TestClient(build_fastapi(gw)) as http:
        assert http.get("/health").status_code == 200  # large may be stopped by the autoscaler
        client.ready = {"small": 0, "large": 0}
        assert http.get("/health").status_code == 503  # nothing can answer
    gw.fleet = fleet  # both min 1: a stopped model means not ready
    client.ready = {"small": 1, "large": 0}
    with TestClient(build_fastapi(gw)) as http:
        assert http.get("/health").status_code == 503


def test_answered_requests_feed_the_load_report(fleet):
    gw, _ = _gw(fleet, CheapestFitPolicy())
    telemetry = gw.telemetry
    http = TestClient(build_fastapi(gw))
    post(http, {"model": "auto", "messages": MSG, "max_tokens": 3})
    post(http, {"model": "small", "messages": MSG, "max_tokens": 2, "stream": True})
    post(http, {"model": "ghost", "messages": MSG})  # a 404 is not load
    report = telemetry.load.report(__import__("time").monotonic())
    assert report["small"]["requests"] == 2 and report["small"]["movable"] == 1
    assert report["small"]["completion_tokens"] == 5
    assert report["small"]["ttft_p95_ms"] is not None  # only the stream has a TTFT


def test_auto_counts_tokens_only_on_tiers_the_routing_state_allows(fleet):
    from serving.router.state import RoutingState, RoutingStateHolder

    client = FakeModelClient({"small": FakeEngine("small", 64), "large": FakeEngine("large", 256)})
    asked = []
    count = client.count_prompt_tokens

    async def recording(mid, kind, body):
        asked.append(mid)
        return await count(mid, kind, body)

    client.count_prompt_tokens = recording
    holder = RoutingStateHolder(RoutingState(allowed_tiers=frozenset({"small"})))
    gw = Gateway(fleet, client, Router.of(CheapestFitPolicy(holder), state=holder), RequestTelemetry(TelemetryConfig()))
    with TestClient(build_fastapi(gw)) as http:
        assert post(http, {"model": "auto", "messages": MSG, "max_tokens": 2}).status_code == 200
        assert asked == ["small"]  # the closed tier (maybe stopping) is not asked
        holder.update(allowed_tiers=None)
        post(http, {"model": "auto", "messages": MSG, "max_tokens": 2})
    assert sorted(asked[1:]) == ["large", "small"]
