"""The autoscaler pod's probes: liveness and readiness from the loop's and Ray link's state."""

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter

from autoscaler.probes import build_probe_app, probe_status


def test_live_and_ready_while_deciding_on_time():
    s = probe_status(now=100, started_at=0, last_step_at=95, period_s=5, ray_state="connected")
    assert s.live and s.ready and s.detail == {"ray": "connected", "seconds_since_decision": 5}


def test_not_ready_before_the_first_decision_but_live():
    s = probe_status(now=20, started_at=0, last_step_at=None, period_s=5, ray_state="connecting")
    assert s.live and not s.ready


def test_a_stuck_loop_fails_both():
    s = probe_status(now=1000, started_at=0, last_step_at=900, period_s=5, ray_state="connected")
    assert not s.live and not s.ready


def test_reconnecting_to_ray_is_live_but_not_ready():
    s = probe_status(now=1000, started_at=0, last_step_at=100, period_s=5, ray_state="reconnecting")
    assert s.live and not s.ready
    s = probe_status(now=100, started_at=0, last_step_at=99, period_s=5, ray_state="reconnecting")
    assert not s.ready


@pytest.mark.asyncio
async def test_probe_endpoints_and_metrics():
    registry = CollectorRegistry()
    Counter("petit_autoscaler_decisions", "d", registry=registry).inc()
    state = {"ray": "connected", "at": 99.0}
    app = build_probe_app(registry, lambda: probe_status(100, 0, state["at"], 5, state["ray"]))
    async with TestClient(TestServer(app)) as c:
        assert (await c.get("/healthz")).status == 200
        r = await c.get("/readyz")
        assert r.status == 200 and (await r.json())["ray"] == "connected"
        assert "petit_autoscaler_decisions_total 1.0" in await (await c.get("/metrics")).text()
        state["ray"] = "reconnecting"
        assert (await c.get("/readyz")).status == 503
        assert (await c.get("/healthz")).status == 200
