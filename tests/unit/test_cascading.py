"""The cascade run by the gateway, over fake engines with controlled token logprobs."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from serving.fleet.schema import TelemetryConfig
from serving.gateway.gateway import Gateway
from serving.gateway.routes import build_fastapi
from serving.gateway.telemetry import RequestTelemetry
from serving.replica.engines.fake import FakeEngine
from serving.router.build import Router
from serving.router.policies import CascadePolicy, CheapestFitPolicy
from serving.router.state import RoutingStateHolder
from tests.unit.fakes import FakeModelClient

MSG = [{"role": "user", "content": "what is two plus two"}]


def _setup(fleet, small_logprob: float, delay: float = 0.0):
    small = FakeEngine("small", 64, token_logprob=small_logprob, token_delay_s=delay, default_tokens=30)
    large = FakeEngine("large", 256)
    client = FakeModelClient({"small": small, "large": large})
    state = RoutingStateHolder()
    cascade = CascadePolicy(state=state)
    gw = Gateway(
        fleet, client, Router.of(cascade, CheapestFitPolicy(state), state=state), RequestTelemetry(TelemetryConfig())
    )
    return gw, client, small, state


def _chat(http, **extra):
    return http.post("/v1/chat/completions", json={"model": "auto", "messages": MSG, "max_tokens": 20, **extra})


def test_confident_small_answer_is_committed(fleet):
    gw, client, _, _ = _setup(fleet, small_logprob=-0.05)
    with TestClient(build_fastapi(gw)) as http:
        r = _chat(http)
    assert r.status_code == 200
    assert r.headers["x-petit-model"] == "small" and r.headers["x-petit-cascade"] == "committed"
    assert "committed(confident" in r.headers["x-petit-route-reason"]
    assert r.json()["choices"][0].get("logprobs") is None  # not asked for: not shown
    assert client.opened[0][2]["logprobs"] is True  # but the engine was asked
    assert [o[0] for o in client.opened] == ["small"]


def test_unsure_small_answer_escalates_and_both_are_paid(fleet):
    gw, client, _, _ = _setup(fleet, small_logprob=-3.0)
    with TestClient(build_fastapi(gw)) as http:
        r = _chat(http)
    assert r.status_code == 200
    assert r.headers["x-petit-model"] == "large" and r.headers["x-petit-cascade"] == "escalated"
    assert "escalated(mean_logprob=-3.000<-0.8)" in r.headers["x-petit-route-reason"]
    assert [o[0] for o in client.opened] == ["small", "large"]
    snap = gw.snapshot()
    u = r.json()["usage"]
    large_only = snap.get("large").cost(u["prompt_tokens"], u["completion_tokens"])
    small_part = snap.get("small").cost(u["prompt_tokens"] + 0, 20)  # same prompt words on the fake engine
    assert float(r.headers["x-petit-cost-usd"]) == pytest.approx(large_only + small_part, rel=1e-6)


def test_thresholds_come_from_the_routing_state(fleet):
    gw, _, _, state = _setup(fleet, small_logprob=-3.0)
    state.update(cascade_min_mean_logprob=-4.0, cascade_min_token_logprob=-6.0)
    with TestClient(build_fastapi(gw)) as http:
        assert _chat(http).headers["x-petit-cascade"] == "committed"


def test_a_threshold_per_prompt_kind_applies_to_its_kind_only(fleet):
    # Same answer confidence (-3.0): the multiple-choice prompt keeps the small answer (its kind never
    # escalates), the open one escalates on the general threshold.
    gw, client, _, state = _setup(fleet, small_logprob=-3.0)
    state.update(cascade_min_mean_logprob_by_kind={"choice": -10000.0})
    choice = "Which is a colour?\nA. red\nB. seven\nC. Paris\nAnswer with the letter only."
    with TestClient(build_fastapi(gw)) as http:
        r1 = http.post("/v1/chat/completions", json={"model": "auto", "max_tokens": 5,
                                                      "messages": [{"role": "user", "content": choice}]})  # fmt: skip
        r2 = _chat(http)
    assert r1.headers["x-petit-cascade"] == "committed" and r1.headers["x-petit-model"] == "small"
    assert r2.headers["x-petit-cascade"] == "escalated"


def _events(text):
    return [json.loads(line[6:]) for line in text.split("\n\n") if line.startswith("data: {")]


def test_stream_commits_after_the_buffer_and_hides_logprobs(fleet):
    gw, _, _, _ = _setup(fleet, small_logprob=-0.05)
    with TestClient(build_fastapi(gw)) as http:
        r = _chat(http, stream=True, stream_options={"include_usage": True})
    assert r.headers["x-petit-cascade"] == "committed" and r.headers["x-petit-model"] == "small"
    events = _events(r.text)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in events if c["choices"])
    assert text == " ".join(f"word{i}" for i in range(20))  # nothing lost from the buffer
    assert all(c["choices"][0].get("logprobs") is None for c in events if c["choices"])
    assert r.text.rstrip().endswith("data: [DONE]")


def test_stream_escalates_and_cancels_the_small_stream(fleet):
    gw, client, small, _ = _setup(fleet, small_logprob=-3.0, delay=0.001)
    with TestClient(build_fastapi(gw)) as http:
        r = _chat(http, stream=True, max_tokens=40)
    assert r.headers["x-petit-cascade"] == "escalated" and r.headers["x-petit-model"] == "large"
    assert [o[0] for o in client.opened] == ["small", "large"]
    assert client.upstreams[0].cancelled
    events = _events(r.text)
    assert all(c["model"] == "large" for c in events)


def test_unknown_policy_header_is_400(fleet):
    gw, _, _, _ = _setup(fleet, small_logprob=-0.05)
    with TestClient(build_fastapi(gw)) as http:
        r = http.post(
            "/v1/chat/completions", headers={"x-petit-policy": "oracle"}, json={"model": "auto", "messages": MSG}
        )
        assert r.status_code == 400 and r.json()["error"]["param"] == "x-petit-policy"
        ok = http.post(
            "/v1/chat/completions",
            headers={"x-petit-policy": "cheapest_fit"},
            json={"model": "auto", "messages": MSG, "max_tokens": 2},
        )
        assert ok.status_code == 200 and ok.headers["x-petit-route-reason"] == "cheapest_fit"
        assert "x-petit-cascade" not in ok.headers


def test_explicit_model_is_never_cascaded(fleet):
    gw, client, _, _ = _setup(fleet, small_logprob=-3.0)
    with TestClient(build_fastapi(gw)) as http:
        r = http.post("/v1/chat/completions", json={"model": "small", "messages": MSG, "max_tokens": 4})
    assert r.headers["x-petit-model"] == "small" and "x-petit-cascade" not in r.headers
    assert [o[0] for o in client.opened] == ["small"]  # one call, no escalation


@pytest.mark.parametrize("stream", [False, True])
def test_every_cascade_outcome_reaches_the_online_learner_and_a_learned_skip_applies(fleet, stream):
    from serving.router.types import DifficultyPrediction

    class Predictor:
        async def apredict(self, text):
            return DifficultyPrediction(0.7, 0.3, 0.9)

    small = FakeEngine("small", 64, token_logprob=-3.0, default_tokens=30)
    client = FakeModelClient({"small": small, "large": FakeEngine("large", 256)})
    state = RoutingStateHolder()
    seen = []
    gw = Gateway(
        fleet,
        client,
        Router.of(CascadePolicy(state=state), predictor=Predictor(), state=state),
        RequestTelemetry(TelemetryConfig()),
        cascade_observer=lambda score, escalated: seen.append((score, escalated)),
    )
    with TestClient(build_fastapi(gw)) as http:
        assert _chat(http, stream=stream).headers["x-petit-cascade"] == "escalated"
        assert seen == [(0.7, True)]
        state.update(cascade_skip_score=0.5)  # what online learning sets once it has seen enough escalations
        r = _chat(http, stream=stream)
    assert r.headers["x-petit-model"] == "large" and "skip_to_strong" in r.headers["x-petit-route-reason"]
    assert [o[0] for o in client.opened] == ["small", "large", "large"] and len(seen) == 1
