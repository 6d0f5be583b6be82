"""Tenants end to end through the gateway over the fake engine (FastAPI TestClient, no Ray)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from serving.fleet.schema import TelemetryConfig, parse_fleet
from serving.gateway.gateway import Gateway
from serving.gateway.routes import build_fastapi
from serving.gateway.telemetry import RequestTelemetry
from serving.gateway.tenancy import DOWNGRADE_HEADER, Tenancy
from serving.replica.engines.fake import FakeEngine
from serving.router.build import Router
from serving.router.policies import CheapestFitPolicy
from serving.tenants.store import MemoryStore, StoreUnavailable
from tests.unit.conftest import fleet_dict
from tests.unit.fakes import FakeModelClient
from tests.unit.tenants.helpers import EVE, KEYS, Clock, tenant

MSG = [{"role": "user", "content": "hello there"}]
DAY = "2025-01-31"


def _fleet(*tenants, **overrides):
    d = fleet_dict(tenants=list(tenants), **overrides)
    d["models"][1]["price_per_replica_hour"] = 0.01  # large is the cheaper: cheapest_fit sends auto there
    return parse_fleet(d)


@pytest.fixture
def gateway():
    """(fleet tenants...) -> (TestClient, tenancy, spans); closes the clients after the test."""
    opened = []

    def make(*tenants, store=None, **overrides):
        fleet = _fleet(*tenants, **overrides)
        client = FakeModelClient({"small": FakeEngine("small", 64), "large": FakeEngine("large", 256)})
        spans = InMemorySpanExporter()
        tenancy = Tenancy(fleet, store or MemoryStore(), clock=Clock(EVE - 600))
        gw = Gateway(
            fleet, client, Router.of(CheapestFitPolicy()), RequestTelemetry(TelemetryConfig(), spans), tenancy=tenancy
        )
        http = TestClient(build_fastapi(gw)).__enter__()
        opened.append(http)
        return http, tenancy, spans

    yield make
    for http in opened:
        http.__exit__(None, None, None)


def call(http, name=None, key=None, stream=False, **body):
    headers = {"Authorization": f"Bearer {key or KEYS[name]}"} if (name or key) else {}
    payload = {"model": "auto", "messages": MSG, "max_tokens": 4, "stream": stream, **body}
    return http.post("/v1/chat/completions", json=payload, headers=headers)


def spend(http, tenancy, name, period=DAY):
    http.portal.call(tenancy.drain)
    return http.portal.call(tenancy.store.spend, name, period)


def test_keys_identify_tenants(gateway):
    http, _, spans = gateway(tenant("alpha"), tenant("beta"))
    for key in (None, "not-a-key", KEYS["alpha"] + "x"):
        r = call(http, key=key)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert r.headers["www-authenticate"] == "Bearer"
    assert call(http, "alpha").status_code == 200 and call(http, "beta").status_code == 200
    assert http.get("/v1/models").status_code == 401  # keyed even without PETIT_API_KEYS
    assert http.get("/docs").status_code == 404
    assert [s.attributes.get("petit.tenant") for s in spans.get_finished_spans()][-2:] == ["alpha", "beta"]


def test_rate_limit_answers_429_with_retry_after(gateway):
    http, tenancy, _ = gateway(tenant("alpha", limits={"requests_per_min": 2}), tenant("beta"))
    assert [call(http, "alpha").status_code for _ in range(2)] == [200, 200]
    r = call(http, "alpha")
    assert r.status_code == 429 and r.json()["error"]["code"] == "tenant_rate_limited"
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(r.headers["retry-after"]) <= 60 and "2 requests per minute" in r.json()["error"]["message"]
    assert call(http, "beta").status_code == 200  # another tenant is not limited by alpha's traffic
    tenancy.clock.now += 60
    assert call(http, "alpha").status_code == 200  # the window moved on
    text = http.get("/metrics", headers={"Authorization": f"Bearer {KEYS['beta']}"}).text
    assert 'petit_tenant_rejections_total{reason="requests_per_min",tenant="alpha"} 1.0' in text
    assert KEYS["alpha"] not in text and tenancy.fleet.tenants[0].key_sha256[0] not in text  # names only


def test_over_budget_downgrade_serves_auto_on_the_small_model(gateway):
    over = tenant("alpha", budget={"usd_per_day": 1e-9}, over_budget="downgrade")
    http, tenancy, spans = gateway(over, tenant("beta"))
    r = call(http, "beta")  # a tenant within its budget: unchanged, on large (the cheaper here)
    assert r.headers["x-petit-model"] == "large" and DOWNGRADE_HEADER not in r.headers
    r = call(http, "alpha")
    assert r.status_code == 200 and r.headers["x-petit-model"] == "small"
    assert r.headers[DOWNGRADE_HEADER] == "budget:day"
    s = call(http, "alpha", stream=True, stream_options={"include_usage": True})
    assert (
        s.status_code == 200 and s.headers["x-petit-model"] == "small" and s.headers[DOWNGRADE_HEADER] == "budget:day"
    )
    named = call(http, "alpha", model="large")
    assert named.status_code == 402 and named.json()["error"]["code"] == "tenant_budget_exceeded"
    assert (
        "send model 'auto'" in named.json()["error"]["message"] and int(named.headers["retry-after"]) == 660
    )  # to UTC midnight
    assert call(http, "alpha", model="small").status_code == 200  # a named model of the cheapest tier is served
    no_down = call(http, "alpha", petit={"allow_downgrade": False})
    assert no_down.status_code == 402
    text = http.get("/metrics", headers={"Authorization": f"Bearer {KEYS['beta']}"}).text
    assert 'petit_tenant_downgrades_total{reason="budget",tenant="alpha"} 2.0' in text
    assert [s.attributes.get("petit.tenant.downgrade") for s in spans.get_finished_spans()][1] == "budget:day"


def test_soft_threshold_then_reject_at_the_hard_limit(gateway):
    first = call(gateway(tenant("gamma"))[0], "gamma")  # what one request costs on large
    cost = float(first.headers["x-petit-cost-usd"])
    soft = tenant("alpha", budget={"usd_per_day": cost * 40}, soft_threshold=0.5)
    http, tenancy, _ = gateway(soft)
    seen = []
    for _ in range(60):
        r = call(http, "alpha")
        seen.append(
            r.headers.get(DOWNGRADE_HEADER, r.headers.get("x-petit-model")) if r.status_code == 200 else r.status_code
        )
        http.portal.call(tenancy.drain)
    assert seen[0] == "large" and any(str(s).startswith("soft_threshold:day:") for s in seen)
    assert seen[-1] == 429  # past the hard limit with the reject policy
    assert spend(http, tenancy, "alpha") <= cost * 40 * 1.01


def test_spend_is_the_cost_header_settled_after_the_response(gateway):
    http, tenancy, _ = gateway(tenant("alpha", budget={"usd_per_day": 10.0}))
    r = call(http, "alpha")
    s = call(http, "alpha", stream=True, stream_options={"include_usage": True})
    chunks = [line for line in s.text.splitlines() if '"petit"' in line]
    stream_cost = float(chunks[-1].split('"cost_usd":')[1].split("}")[0])
    assert spend(http, tenancy, "alpha") == pytest.approx(float(r.headers["x-petit-cost-usd"]) + stream_cost)
    assert spend(http, tenancy, "alpha", "2025-01") == pytest.approx(spend(http, tenancy, "alpha"))
    usage = http.portal.call(tenancy.store.usage, "alpha", tenancy.clock())
    assert usage.concurrent == 0  # both reservations settled


def test_allowed_models_and_tiers(gateway):
    http, _, _ = gateway(tenant("alpha", allowed_models=["small"], max_tier="small"))
    r = call(http, "alpha", model="large")
    assert (
        r.status_code == 403
        and r.json()["error"]["code"] == "model_not_allowed"
        and r.json()["error"]["param"] == "model"
    )
    r = call(http, "alpha")
    assert r.status_code == 200 and r.headers["x-petit-model"] == "small" and DOWNGRADE_HEADER not in r.headers


class _Hanging(MemoryStore):
    async def usage(self, tenant, now):
        await asyncio.sleep(30)
        raise AssertionError("not reached")


class _Down(MemoryStore):
    async def usage(self, tenant, now):
        raise StoreUnavailable("connection refused")


@pytest.mark.parametrize("store", [_Hanging, _Down])
def test_store_unavailable_fail_closed_and_open(gateway, store):
    t = tenant("alpha")
    http, _, _ = gateway(t, store=store(), tenant_store={"timeout_ms": 50, "on_unavailable": "fail_closed"})
    r = call(http, "alpha")
    assert (
        r.status_code == 503 and r.json()["error"]["code"] == "tenant_store_unavailable" and "retry-after" in r.headers
    )
    health = http.get("/health").json()["tenants"]
    assert health["store_ok"] is False and health["on_unavailable"] == "fail_closed" and health["store_error"]
    http, tenancy, _ = gateway(t, store=store(), tenant_store={"timeout_ms": 50, "on_unavailable": "fail_open"})
    assert call(http, "alpha").status_code == 200  # admitted unmetered
    assert tenancy.store_error is not None


def test_health_says_the_store_is_embedded(gateway):
    http, _, _ = gateway(tenant("alpha"))
    t = http.get("/health").json()["tenants"]
    assert t["tenants"] == 1 and t["store_ok"] is True and "embedded" in t["store"]
