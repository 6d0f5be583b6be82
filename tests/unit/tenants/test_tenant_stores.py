"""Every tenant store against the same contract: windows, reservations, settling, periods, leases, caps."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from serving.fleet.tenants import TenantStoreConfig
from serving.tenants.build import TenantStoreError, build_store, describe_store
from serving.tenants.policy import Ask
from serving.tenants.redis_store import RedisStore
from serving.tenants.sqlite_store import SqliteStore
from serving.tenants.store import MemoryStore, StoreUnavailable
from tests.unit.tenants.helpers import EVE

CAPS = Ask(100, 0.1, requests_per_min=3, tokens_per_min=1000, concurrent=2, usd_per_day=1.0, usd_per_month=5.0)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_store(request, tmp_path):
    """A factory of stores over one backend (two calls: two 'replicas' sharing it)."""
    made = []
    prefix = f"t{uuid.uuid4().hex[:8]}"  # a fresh namespace on the shared redis-server

    def make(lease_s: float = 900.0):
        if request.param == "memory":
            store = made[0] if made else MemoryStore(lease_s)
        elif request.param == "sqlite":
            store = SqliteStore(tmp_path / "ledger.sqlite", lease_s)
        else:
            store = RedisStore(request.getfixturevalue("redis_url"), prefix, lease_s, timeout_s=2.0)
        made.append(store)
        return store

    return make


def run(coro):
    return asyncio.run(coro)


def test_reserve_settle_and_usage(make_store):
    async def go():
        store = make_store()
        g = await store.reserve("acme", CAPS, EVE)
        assert g.reservation is not None and g.refused is None
        u = await store.usage("acme", EVE + 1)
        assert (u.requests, u.tokens, u.concurrent) == (1, 100, 1)
        assert u.spend_day_usd == pytest.approx(0.1) and u.spend_month_usd == pytest.approx(0.1)
        await store.settle(g.reservation, 40, 0.025, EVE + 2)
        u = await store.usage("acme", EVE + 2)
        assert (u.requests, u.tokens, u.concurrent) == (1, 40, 0)  # tokens corrected to the exact count
        assert u.spend_day_usd == pytest.approx(0.025)  # the exact cost replaced the reservation
        assert await store.spend("acme", "2025-01-31") == pytest.approx(0.025)
        assert await store.spend("acme", "2025-01") == pytest.approx(0.025)
        assert (await store.usage("other", EVE)).requests == 0  # tenants are apart
        await store.close()

    run(go())


def test_caps_refuse_atomically_and_say_which(make_store):
    async def go():
        store = make_store()
        a = await store.reserve("acme", CAPS, EVE)
        b = await store.reserve("acme", CAPS, EVE)
        c = await store.reserve("acme", CAPS, EVE)  # a third at once: over `concurrent`
        assert a.reservation and b.reservation and c.reservation is None and c.refused == "concurrent"
        assert c.usage.concurrent == 2
        await store.settle(a.reservation, 100, 0.1, EVE)
        d = await store.reserve("acme", CAPS, EVE + 1)
        e = await store.reserve("acme", CAPS, EVE + 1)  # the fourth request in the minute
        assert d.reservation is not None and e.refused == "requests_per_min"
        f = await store.reserve("acme", Ask(100, 0.1, usd_per_day=0.25), EVE + 1)  # 0.1 + 0.1 + 0.1 > 0.25
        assert f.refused == "usd_per_day"
        await store.close()

    run(go())


def test_the_window_slides_and_leases_end(make_store):
    async def go():
        store = make_store(lease_s=30)
        for i in range(3):
            assert (await store.reserve("acme", Ask(10, 0.0), EVE + i)).reservation
        u = await store.usage("acme", EVE + 10)
        assert u.requests == 3 and u.window_reset_s == pytest.approx(50) and u.concurrent == 3
        assert (await store.usage("acme", EVE + 33)).concurrent == 0  # never settled: the lease freed them
        assert (await store.usage("acme", EVE + 60)).requests == 2  # the first second left the window
        assert (await store.usage("acme", EVE + 62)).requests == 0
        await store.close()

    run(go())


def test_budgets_reset_at_the_utc_boundary_and_charge_the_reservation_period(make_store):
    async def go():
        store = make_store()
        g = await store.reserve("acme", Ask(10, 0.5), EVE + 59)  # 23:59:59 on January 31st
        assert (await store.usage("acme", EVE + 61)).spend_day_usd == 0  # a new day (and month)
        await store.settle(g.reservation, 10, 0.4, EVE + 61)  # settled after midnight, by a skewed clock
        assert await store.spend("acme", "2025-01-31") == pytest.approx(0.4)  # ... charged to its own day
        assert await store.spend("acme", "2025-02-01") == 0
        u = await store.usage("acme", EVE + 61)
        assert u.spend_day_usd == 0 and u.spend_month_usd == 0
        assert (await store.usage("acme", EVE)).spend_day_usd == pytest.approx(0.4)
        await store.close()

    run(go())


def test_sqlite_ledger_survives_a_restart(tmp_path):
    async def go():
        store = SqliteStore(tmp_path / "l.sqlite")
        g = await store.reserve("acme", Ask(10, 0.5), EVE)
        await store.settle(g.reservation, 10, 0.3, EVE)
        await store.close()
        again = SqliteStore(tmp_path / "l.sqlite")
        assert await again.spend("acme", "2025-01") == pytest.approx(0.3)
        assert (await again.usage("acme", EVE)).spend_day_usd == pytest.approx(0.3)
        await again.close()

    run(go())


def test_unreachable_redis_fails_fast():
    async def go():
        with socket_closed() as port:
            store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout_s=0.2)
            t0 = asyncio.get_running_loop().time()
            with pytest.raises(StoreUnavailable, match="redis store"):
                await store.usage("acme", EVE)
            assert asyncio.get_running_loop().time() - t0 < 2
            await store.close()

    run(go())


def socket_closed():
    import contextlib
    import socket

    @contextlib.contextmanager
    def cm():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            yield s.getsockname()[1]  # bound, not listening: connections are refused

    return cm()


def test_build_store(tmp_path):
    assert build_store(TenantStoreConfig(), {}).kind == "memory"
    assert "embedded" in describe_store(MemoryStore())
    sq = build_store(TenantStoreConfig(kind="sqlite", sqlite_path=str(tmp_path / "x.sqlite")), {})
    assert sq.kind == "sqlite" and "shared" in describe_store(sq)
    run(sq.close())
    with pytest.raises(TenantStoreError, match="PETIT_REDIS_URL is not set"):
        build_store(TenantStoreConfig(kind="redis"), {})
    r = build_store(TenantStoreConfig(kind="redis"), {"PETIT_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert r.kind == "redis"
    run(r.close())
