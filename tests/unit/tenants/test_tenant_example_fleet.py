"""deploy/fleet.tenants.fast.yaml does what the per-tenant load test expects, in process (no Ray).

alpha's `auto` is answered by the large model (the cascade escalates every fake answer);
beta, over its daily budget from its first request in downgrade mode, is answered by the
small model with `x-petit-tenant-downgrade: budget:day`. The live run measures the same
through Ray Serve (loadtests/examples/tenants.yaml).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.fleet.schema import TelemetryConfig, load_fleet
from serving.gateway.gateway import Gateway
from serving.gateway.routes import build_fastapi
from serving.gateway.telemetry import RequestTelemetry
from serving.gateway.tenancy import DOWNGRADE_HEADER, Tenancy
from serving.replica.engines.fake import FakeEngine
from serving.router.build import Router
from serving.router.policies import CascadePolicy
from serving.router.state import RoutingState, RoutingStateHolder
from serving.tenants.store import MemoryStore
from tests.unit.fakes import FakeModelClient

FLEET = Path(__file__).resolve().parents[3] / "deploy" / "fleet.tenants.fast.yaml"
KEYS = {"alpha": "demo-key-alpha", "beta": "demo-key-beta"}  # the demo keys whose hashes the file holds


@pytest.fixture
def http():
    fleet = load_fleet(FLEET)
    engines = {m.id: FakeEngine(m.id, m.engine.max_model_len, default_tokens=16) for m in fleet.models}
    state = RoutingStateHolder(RoutingState(**fleet.routing.initial_state.model_dump()))
    router = Router.of(CascadePolicy(state=state), state=state)  # no predictor: no skip score in this fleet
    tenancy = Tenancy(fleet, MemoryStore(), clock=time.time)
    gw = Gateway(fleet, FakeModelClient(engines), router, RequestTelemetry(TelemetryConfig()), tenancy=tenancy)
    with TestClient(build_fastapi(gw)) as client:
        yield client


def _auto(http, tenant: str, stream: bool):
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello " * 40}], "max_tokens": 64}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEYS[tenant]}"})


@pytest.mark.parametrize("stream", [False, True])
def test_alpha_escalates_to_large_and_beta_is_downgraded_to_small(http, stream):
    for _ in range(3):
        alpha = _auto(http, "alpha", stream)
        assert alpha.status_code == 200, alpha.text
        assert alpha.headers["x-petit-model"] == "fake-gpu-large"
        assert DOWNGRADE_HEADER not in alpha.headers
        beta = _auto(http, "beta", stream)
        assert beta.status_code == 200, beta.text
        assert beta.headers["x-petit-model"] == "fake-gpu-small"
        assert beta.headers[DOWNGRADE_HEADER] == "budget:day"


def test_beta_naming_the_large_model_is_refused_with_402(http):
    body = {"model": "fake-gpu-large", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 64}
    r = http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEYS['beta']}"})
    assert r.status_code == 402 and r.json()["error"]["code"] == "tenant_budget_exceeded"
