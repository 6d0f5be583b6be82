"""Two ingress replicas sharing one store, driven at 3x a tenant's limits over a simulated minute.

Targets (issue 15): admitted requests within +2% of the rate limit, spend within +1% of the
budget with reservations. Each 'replica' is its own Tenancy (and its own store client);
requests of both run concurrently on one event loop, in bursts, with the clock moving.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid

import pytest

from serving.fleet.schema import parse_fleet
from serving.gateway.errors import HTTPError
from serving.gateway.protocol import validate
from serving.gateway.telemetry import RequestRecord
from serving.gateway.tenancy import Tenancy
from serving.router.types import FleetSnapshot
from serving.tenants.redis_store import RedisStore
from serving.tenants.sqlite_store import SqliteStore
from serving.tenants.store import MemoryStore
from tests.unit.tenants.helpers import EVE, Clock, tenant, tenants_fleet

BODY = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


def _stores(kind, request, tmp_path):
    if kind == "memory":
        shared = MemoryStore()
        return shared, shared
    if kind == "sqlite":
        return SqliteStore(tmp_path / "l.sqlite"), SqliteStore(tmp_path / "l.sqlite")
    url, prefix = request.getfixturevalue("redis_url"), f"c{uuid.uuid4().hex[:8]}"
    return RedisStore(url, prefix, timeout_s=2.0), RedisStore(url, prefix, timeout_s=2.0)


async def _drive(replicas, clock, n, burst, step_s, cost_of):
    """`n` requests in bursts of `burst` (alternating replicas), the clock moving `step_s` per burst.

    Returns (admitted, settled USD). `cost_of(reserved)` is what an admitted request really costs.
    """
    req = validate("chat", BODY)
    snap = FleetSnapshot.from_config(replicas[0].fleet, {"small": 1, "large": 1})
    admitted, spent = 0, 0.0
    raw = len(json.dumps(BODY))

    async def one(i):
        nonlocal admitted, spent
        gw = replicas[i % 2]
        rec = RequestRecord("chat", "auto", 0, False)
        try:
            await gw.admit(gw.fleet.tenants[0], req, BODY, {}, raw, rec, snap)
        except HTTPError as err:
            assert err.status == 429, err.message
            return
        admitted += 1
        reserved = gw._open[id(rec)][0].usd
        rec.cost_usd = cost_of(reserved)
        spent += rec.cost_usd
        await asyncio.sleep(random.random() * 0.002)  # the response takes a while; others run meanwhile
        gw.finish(rec)

    for start in range(0, n, burst):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + burst))))
        clock.now += step_s
    for gw in replicas:
        await gw.drain()
    return admitted, spent


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_rate_limit_holds_across_two_replicas(kind, request, tmp_path):
    limit = 100
    fleet = parse_fleet(
        tenants_fleet(tenant("alpha", limits={"requests_per_min": limit}), tenant_store={"timeout_ms": 5000})
    )
    clock = Clock(EVE - 120)
    a, b = _stores(kind, request, tmp_path)
    replicas = (Tenancy(fleet, a, clock=clock), Tenancy(fleet, b, clock=clock))
    # 3x the limit within one minute: 300 requests, 30 bursts of 10, 2 s apart (58 s in all)
    admitted, _, _ = asyncio.run(_run(replicas, clock, 3 * limit, 10, 2.0, lambda r: 0.0))
    print(f"\n[{kind}] rate: {admitted} admitted of {3 * limit} for a limit of {limit}/min")
    assert limit * 0.98 <= admitted <= limit * 1.02


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_budget_holds_across_two_replicas(kind, request, tmp_path):
    budget = 0.002  # USD per day; each request reserves about 1.5e-6 and really costs 30-100% of that
    fleet = parse_fleet(
        tenants_fleet(tenant("alpha", budget={"usd_per_day": budget}), tenant_store={"timeout_ms": 5000})
    )
    clock = Clock(EVE - 3600)
    a, b = _stores(kind, request, tmp_path)
    replicas = (Tenancy(fleet, a, clock=clock), Tenancy(fleet, b, clock=clock))
    rng = random.Random(7)
    admitted, spent, ledger = asyncio.run(_run(replicas, clock, 3000, 20, 0.5, lambda r: r * rng.uniform(0.3, 1.0)))
    print(
        f"\n[{kind}] budget: {admitted} admitted, spent ${spent:.6f} of ${budget} ({spent / budget:.1%}), ledger ${ledger:.6f}"
    )
    assert ledger == pytest.approx(spent, rel=1e-6)  # every charge reached the ledger, once
    assert spent <= budget * 1.01
    assert spent >= budget * 0.9  # and the budget was used, not refused early


async def _run(replicas, clock, n, burst, step_s, cost_of):
    """`_drive`, then the ledger's day (from the first replica's store); closes the stores on the same loop."""
    try:
        admitted, spent = await _drive(replicas, clock, n, burst, step_s, cost_of)
        return admitted, spent, await replicas[0].store.spend("alpha", "2025-01-31")
    finally:
        for s in {id(r.store): r.store for r in replicas}.values():
            await s.close()
