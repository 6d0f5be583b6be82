"""`petit tenants report`: spend and limits per tenant read from the SQLite and Redis ledgers, names only."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid

import pytest
import yaml

from serving import cli
from serving.fleet.schema import parse_fleet
from serving.tenants.policy import Ask, period_keys
from serving.tenants.redis_store import RedisStore
from serving.tenants.report import EXIT_INPUT, EXIT_OK, EXIT_STORE, LedgerRow, ledger_table, main, read_ledger
from serving.tenants.sqlite_store import SqliteStore
from serving.tenants.store import MemoryStore
from tests.unit.tenants.helpers import EVE, KEYS, sha, tenant, tenants_fleet

ALPHA = tenant(
    "alpha",
    budget={"usd_per_day": 0.10, "usd_per_month": 1.0},
    over_budget="downgrade",
    soft_threshold=0.8,
    limits={"requests_per_min": 60, "concurrent": 4},
)
BETA = tenant("beta", budget={"usd_per_day": 1.0}, limits={"tokens_per_min": 5000})
GAMMA = tenant("gamma")


def _fleet_file(tmp_path, store: dict) -> str:
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(tenants_fleet(ALPHA, BETA, GAMMA, tenant_store=store)))
    return str(path)


async def _spend(store, name: str, usd: float, now: float, settle: bool = True) -> None:
    grant = await store.reserve(name, Ask(10, usd), now)
    assert grant.reservation is not None
    if settle:
        await store.settle(grant.reservation, 10, usd, now)


def _no_secrets(text: str) -> None:
    for name, key in KEYS.items():
        assert key not in text and sha(key) not in text, name


def test_rows_from_the_sqlite_ledger_with_budgets_limits_and_status(tmp_path):
    async def go():
        store = SqliteStore(tmp_path / "ledger.sqlite")
        await _spend(store, "alpha", 0.12, EVE)  # past the 0.10 day budget
        await _spend(store, "alpha", 0.03, EVE - 40 * 86400)  # another month: not counted
        await _spend(store, "beta", 0.5, EVE)
        await _spend(store, "beta", 0.35, EVE, settle=False)  # in flight: reserved, not settled
        fleet = parse_fleet(tenants_fleet(ALPHA, BETA, GAMMA), "t")
        rows = await read_ledger(fleet.tenants, store, EVE + 1)
        await store.close()
        return rows

    alpha, beta, gamma = asyncio.run(go())
    assert (alpha.tenant, alpha.day, alpha.month) == ("alpha", "2025-01-31", "2025-01")
    assert alpha.spent_day_usd == pytest.approx(0.12) and alpha.spent_month_usd == pytest.approx(0.12)
    assert alpha.used("day") == pytest.approx(1.2) and alpha.status == "over:day (downgrade)"
    assert (alpha.requests_in_window, alpha.requests_per_min, alpha.in_flight, alpha.concurrent) == (1, 60, 0, 4)
    assert beta.spent_day_usd == pytest.approx(0.5) and beta.reserved_day_usd == pytest.approx(0.35)
    assert beta.used("day") == pytest.approx(0.85) and beta.in_flight == 1
    assert beta.status == "ok"  # no soft threshold; 85% is under the budget
    assert gamma.spent_day_usd == 0 and gamma.used("day") is None and gamma.status == "ok"
    table = ledger_table([alpha, beta, gamma])
    assert table.splitlines()[0].startswith("tenant")
    assert "0.120000" in table and "120%" in table and "1 / 60" in table and "- / 4" not in table


def test_status_soft_threshold_and_month():
    row = LedgerRow("a", "d", "m", 0.0, 8.5, None, None, None, 10.0, "reject", 0.8, None, None, None, None, None)
    assert row.status == "soft:month"
    assert row.to_dict()["used_month"] == pytest.approx(0.85) and row.to_dict()["status"] == "soft:month"


def test_read_ledger_works_on_the_in_process_store():
    async def go():
        store = MemoryStore()
        await _spend(store, "alpha", 0.02, EVE)
        return await read_ledger(parse_fleet(tenants_fleet(ALPHA), "t").tenants, store, EVE)

    (row,) = asyncio.run(go())
    assert row.spent_day_usd == pytest.approx(0.02) and row.used("day") == pytest.approx(0.2)


def test_cli_reads_a_past_day_from_the_sqlite_file(tmp_path, capsys):
    ledger = tmp_path / "ledger.sqlite"

    async def fill():
        store = SqliteStore(ledger)
        await _spend(store, "alpha", 0.07, EVE)
        await _spend(store, "beta", 0.2, EVE - 86400)  # the day before: in the month only
        await store.close()

    asyncio.run(fill())
    fleet = _fleet_file(tmp_path, {"kind": "sqlite", "sqlite_path": str(ledger)})
    assert main(["--fleet", fleet, "--date", "2025-01-31", "--json"]) == EXIT_OK
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert (doc["store"], doc["day"], doc["month"], doc["current"]) == ("sqlite", "2025-01-31", "2025-01", False)
    rows = {r["tenant"]: r for r in doc["tenants"]}
    assert list(rows) == ["alpha", "beta", "gamma"]
    assert rows["alpha"]["spent_day_usd"] == pytest.approx(0.07) and rows["alpha"]["used_day"] == pytest.approx(0.7)
    assert rows["beta"]["spent_day_usd"] == 0 and rows["beta"]["spent_month_usd"] == pytest.approx(0.2)
    assert rows["alpha"]["reserved_day_usd"] is None and rows["alpha"]["requests_in_window"] is None  # past day
    _no_secrets(out)
    assert main(["--fleet", fleet, "--date", "2025-01-31"]) == EXIT_OK
    text = capsys.readouterr().out
    assert "UTC day 2025-01-31, month 2025-01; sqlite store (settled only" in text
    assert "alpha" in text and "0.070000" in text and "70%" in text
    _no_secrets(text)


def test_cli_today_includes_reservations_and_the_rate_window(tmp_path, capsys):
    ledger = tmp_path / "ledger.sqlite"
    now = time.time()

    async def fill():
        store = SqliteStore(ledger)
        await _spend(store, "alpha", 0.01, now)
        await _spend(store, "alpha", 0.02, now, settle=False)
        await store.close()

    asyncio.run(fill())
    fleet = _fleet_file(tmp_path, {"kind": "sqlite", "sqlite_path": str(ledger)})
    assert main(["--fleet", fleet, "--json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    alpha = doc["tenants"][0]
    assert doc["current"] is True and doc["day"] == period_keys(now)[0]
    assert alpha["spent_day_usd"] == pytest.approx(0.01) and alpha["reserved_day_usd"] == pytest.approx(0.02)
    assert (alpha["requests_in_window"], alpha["in_flight"]) == (2, 1)


def test_cli_through_petit_and_from_stdin(tmp_path, capsys, monkeypatch):
    ledger = tmp_path / "ledger.sqlite"
    asyncio.run(SqliteStore(ledger).close())
    fleet = _fleet_file(tmp_path, {"kind": "sqlite", "sqlite_path": str(ledger)})
    monkeypatch.setattr("sys.stdin", io.StringIO(open(fleet).read()))
    assert cli.main(["tenants", "report", "--fleet", "-", "--date", "2025-01-31"]) == EXIT_OK
    assert "alpha" in capsys.readouterr().out
    assert cli.main(["tenants"]) == 2
    assert "tenants report" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("store", "env", "message"),
    [
        ({"kind": "memory"}, {}, "tenant_store.kind is memory"),
        ({"kind": "sqlite", "sqlite_path": "MISSING"}, {}, "no ledger at"),
        ({"kind": "redis"}, {}, "PETIT_REDIS_URL is not set"),
    ],
    ids=["memory", "sqlite-file-missing", "redis-without-url"],
)
def test_cli_refuses_what_it_cannot_read(tmp_path, capsys, store, env, message):
    if store.get("sqlite_path") == "MISSING":
        store = {**store, "sqlite_path": str(tmp_path / "none" / "ledger.sqlite")}
    assert main(["--fleet", _fleet_file(tmp_path, store)], env=env) == EXIT_INPUT
    assert message in capsys.readouterr().err
    assert not (tmp_path / "none").exists()  # a report never creates a ledger


def test_cli_bad_inputs(tmp_path, capsys):
    no_tenants = tmp_path / "plain.yaml"
    no_tenants.write_text(yaml.safe_dump(tenants_fleet()))
    assert main(["--fleet", str(no_tenants)]) == EXIT_INPUT
    assert "has no tenants" in capsys.readouterr().err
    fleet = _fleet_file(tmp_path, {"kind": "memory"})
    assert main(["--fleet", fleet, "--date", "31/01/2025"]) == EXIT_INPUT
    assert main(["--fleet", str(tmp_path / "missing.yaml")]) == EXIT_INPUT


def test_cli_store_unreachable(tmp_path, capsys):
    fleet = _fleet_file(tmp_path, {"kind": "redis", "timeout_ms": 200})
    env = {"PETIT_REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing listens on port 1
    assert main(["--fleet", fleet], env=env) == EXIT_STORE
    assert "the redis tenant store did not answer" in capsys.readouterr().err


def test_cli_reads_the_redis_ledger(tmp_path, capsys, redis_url):
    prefix = f"r{uuid.uuid4().hex[:8]}"
    now = time.time()

    async def fill():
        store = RedisStore(redis_url, prefix, timeout_s=2.0)
        await _spend(store, "alpha", 0.09, now)
        await _spend(store, "gamma", 0.5, now)
        await _spend(store, "beta", 0.25, now, settle=False)
        await store.close()

    asyncio.run(fill())
    fleet = _fleet_file(tmp_path, {"kind": "redis", "redis_url_env": "LEDGER_URL", "key_prefix": prefix})
    assert main(["--fleet", fleet, "--json"], env={"LEDGER_URL": redis_url}) == EXIT_OK
    out = capsys.readouterr().out
    rows = {r["tenant"]: r for r in json.loads(out)["tenants"]}
    assert rows["alpha"]["spent_day_usd"] == pytest.approx(0.09) and rows["alpha"]["status"] == "soft:day"
    assert rows["beta"]["spent_day_usd"] == 0 and rows["beta"]["reserved_day_usd"] == pytest.approx(0.25)
    assert rows["beta"]["in_flight"] == 1 and rows["gamma"]["spent_month_usd"] == pytest.approx(0.5)
    _no_secrets(out)
    assert redis_url not in out
