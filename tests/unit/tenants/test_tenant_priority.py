"""Scarcity by priority at the gateway: a tenant's class picks its downgrade share, and is reported."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from serving.fleet.schema import TelemetryConfig, parse_fleet
from serving.gateway.gateway import Gateway
from serving.gateway.routes import build_fastapi
from serving.gateway.telemetry import RequestTelemetry
from serving.gateway.tenancy import Tenancy
from serving.replica.engines.fake import FakeEngine
from serving.router import artifact as artifacts
from serving.router.build import Router
from serving.router.policies import LearnedPolicy
from serving.router.state import RoutingState, RoutingStateHolder
from serving.router.types import DifficultyPrediction
from serving.tenants.store import MemoryStore
from tests.unit.fakes import FakeModelClient
from tests.unit.tenants.helpers import KEYS, tenant, tenants_fleet

MSG = [{"role": "user", "content": "hello there"}]


class _HardPrompts:
    """Every prompt is worth the strong tier."""

    async def apredict(self, text):
        return DifficultyPrediction(score=0.9, p_weak_ok=0.2, p_strong_ok=0.8)


def test_low_priority_is_downgraded_and_high_keeps_the_strong_tier():
    fleet = parse_fleet(
        tenants_fleet(tenant("alpha", priority="low"), tenant("beta", priority="high"), tenant("gamma")), "t"
    )
    state = RoutingStateHolder(
        RoutingState(
            threshold=0.2, downgrade_share=0.5, downgrade_share_by_priority={"low": 1.0, "normal": 0.5, "high": 0.0}
        )
    )
    client = FakeModelClient({"small": FakeEngine("small", 64), "large": FakeEngine("large", 256)})
    telemetry = RequestTelemetry(TelemetryConfig())
    router = Router.of(LearnedPolicy(artifacts.load(), state), predictor=_HardPrompts(), state=state)
    gw = Gateway(fleet, client, router, telemetry, tenancy=Tenancy(fleet, MemoryStore()))
    got = {}
    with TestClient(build_fastapi(gw)) as http:
        for name in ("alpha", "beta"):
            for i in range(4):
                r = http.post(
                    "/v1/chat/completions",
                    headers={"Authorization": f"Bearer {KEYS[name]}"},
                    json={"model": "auto", "messages": MSG + [{"role": "user", "content": str(i)}], "max_tokens": 2},
                )
                assert r.status_code == 200, r.text
                got.setdefault(name, []).append((r.headers["x-petit-model"], r.headers["x-petit-route-reason"]))
        named = http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {KEYS['alpha']}"},
            json={"model": "large", "messages": MSG, "max_tokens": 2},
        )
        assert named.status_code == 200 and named.headers["x-petit-model"] == "large"  # named: never moved
    assert all(m == "small" and r.endswith(";downgraded:low") for m, r in got["alpha"])
    assert all(m == "large" and "learned:strong" in r for m, r in got["beta"])
    report = telemetry.load.report(time.monotonic())  # what the autoscaler's priority mix reads
    assert report["small"]["movable_by_priority"] == {"low": 4}
    assert report["large"]["movable_by_priority"] == {"high": 4} and report["large"]["requests"] == 5
