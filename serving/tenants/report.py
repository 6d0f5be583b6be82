"""`petit tenants report`: spend and limits per tenant, read from the ledger of the fleet's tenant store.

    petit tenants report --fleet FILE [--date YYYY-MM-DD] [--json]

`--fleet -` reads the fleet from stdin (on Kubernetes: the fleet ConfigMap piped into
`kubectl exec -i` on the Ray head, which has the store's URL in its env). The store is
the fleet's `tenant_store`: the SQLite file, or Redis at the URL in the variable
`redis_url_env` names (PETIT_REDIS_URL by default). For each tenant: the spend settled
in the UTC day and month (today, or those of `--date`) against its budgets; for the
current periods also what live reservations hold, the requests in the rate window and
the requests in flight, against its limits. Names only: never a key or a key hash.

The in-process store (`kind: memory`) lives inside each ingress process: there is no
ledger to read from outside, and the command says so.

Exit status: 0 printed; 2 bad fleet or no store to read (memory, a missing SQLite file,
no Redis URL); 3 the store did not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from serving.fleet.schema import FleetConfig, FleetConfigError, load_fleet, parse_fleet
from serving.fleet.tenants import TenantConfig
from serving.tenants.build import TenantStoreError, build_store
from serving.tenants.policy import period_keys
from serving.tenants.store import StoreUnavailable, TenantStore

EXIT_OK, EXIT_INPUT, EXIT_STORE = 0, 2, 3


@dataclass(frozen=True)
class LedgerRow:
    """One tenant's spend in a UTC day and month, its budgets and limits. None: unknown or no limit."""

    tenant: str
    day: str
    month: str
    spent_day_usd: float  # settled
    spent_month_usd: float
    reserved_day_usd: float | None  # held by live reservations (current periods only)
    reserved_month_usd: float | None
    budget_day_usd: float | None
    budget_month_usd: float | None
    over_budget: str
    soft_threshold: float | None
    requests_in_window: int | None  # current periods only
    in_flight: int | None
    requests_per_min: int | None
    tokens_per_min: int | None
    concurrent: int | None

    def used(self, period: str) -> float | None:
        """Share of the period's budget spent (settled + reserved); None without a budget."""
        budget = self.budget_day_usd if period == "day" else self.budget_month_usd
        if budget is None:
            return None
        spent = self.spent_day_usd if period == "day" else self.spent_month_usd
        held = (self.reserved_day_usd if period == "day" else self.reserved_month_usd) or 0.0
        return (spent + held) / budget

    @property
    def status(self) -> str:
        """`over:day (downgrade)` past a budget, `soft:month` past the soft threshold, else `ok`."""
        shares = [(p, s) for p in ("day", "month") if (s := self.used(p)) is not None]
        for period, share in shares:
            if share >= 1:
                return f"over:{period} ({self.over_budget})"
        for period, share in shares:
            if self.soft_threshold is not None and share >= self.soft_threshold:
                return f"soft:{period}"
        return "ok"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "used_day": self.used("day"), "used_month": self.used("month"), "status": self.status}


async def _row(store: TenantStore, t: TenantConfig, now: float, current: bool) -> LedgerRow:
    day, month = period_keys(now)
    spent_day, spent_month = await store.spend(t.name, day), await store.spend(t.name, month)
    usage = await store.usage(t.name, now) if current else None
    return LedgerRow(
        t.name,
        day,
        month,
        spent_day,
        spent_month,
        None if usage is None else max(0.0, usage.spend_day_usd - spent_day),
        None if usage is None else max(0.0, usage.spend_month_usd - spent_month),
        t.budget.usd_per_day,
        t.budget.usd_per_month,
        t.over_budget,
        t.soft_threshold,
        None if usage is None else usage.requests,
        None if usage is None else usage.concurrent,
        t.limits.requests_per_min,
        t.limits.tokens_per_min,
        t.limits.concurrent,
    )


async def read_ledger(
    tenants: Sequence[TenantConfig], store: TenantStore, now: float, current: bool = True
) -> list[LedgerRow]:
    """A row per tenant for the UTC day and month of `now`, in the fleet's order. Raises StoreUnavailable.

    `current`: `now` is the present, so live reservations and the rate window are read too.
    """
    return [await _row(store, t, now, current) for t in tenants]


def open_store(fleet: FleetConfig, env: Mapping[str, str]) -> TenantStore:
    """The fleet's store, to read. Raises TenantStoreError when there is no ledger to read from here."""
    # Not on a request path: wait for a slow or distant store longer than the ingress would.
    config = fleet.tenant_store.model_copy(update={"timeout_ms": max(fleet.tenant_store.timeout_ms, 5000.0)})
    if config.kind == "memory":
        raise TenantStoreError(
            "tenant_store.kind is memory: each ingress process keeps its own counts in memory, so there is no "
            "ledger to read from outside (use kind sqlite or redis to keep one)"
        )
    if config.kind == "sqlite" and not Path(config.sqlite_path).expanduser().exists():
        raise TenantStoreError(f"no ledger at {config.sqlite_path} (the store creates it at the first request)")
    return build_store(config, env)


def _usd(x: float | None) -> str:
    return "-" if x is None else f"{x:.6f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _of(now: int | None, limit: int | None) -> str:
    if now is None:
        return "-" if limit is None else f"- / {limit}"
    return f"{now}" if limit is None else f"{now} / {limit}"


HEADER = (
    "tenant", "day USD", "reserved", "day budget", "used", "month USD", "month budget", "used",
    "req/min", "tokens/min cap", "in flight", "status",
)  # fmt: skip


def ledger_table(rows: Sequence[LedgerRow]) -> str:
    """The rows as an aligned text table (USD as plain decimals; `-`: none or not read)."""
    body = [
        [
            r.tenant,
            _usd(r.spent_day_usd),
            _usd(r.reserved_day_usd),
            _usd(r.budget_day_usd),
            _pct(r.used("day")),
            _usd(r.spent_month_usd),
            _usd(r.budget_month_usd),
            _pct(r.used("month")),
            _of(r.requests_in_window, r.requests_per_min),
            "-" if r.tokens_per_min is None else str(r.tokens_per_min),
            _of(r.in_flight, r.concurrent),
            r.status,
        ]
        for r in rows
    ]
    table = [list(HEADER), *body]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    text = (
        "  ".join(c.ljust(w) if i in (0, len(HEADER) - 1) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        for row in table
    )
    return "\n".join(line.rstrip() for line in text)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="petit tenants report",
        description="Spend and limits per tenant for a UTC day and month, from the fleet's tenant store.",
    )
    p.add_argument("--fleet", required=True, help="fleet YAML with tenants and tenant_store ('-': stdin)")
    p.add_argument("--date", help="report this UTC day and its month (YYYY-MM-DD; default: today)")
    p.add_argument("--json", action="store_true", help="machine output: one JSON object")
    return p


def _load(path: str) -> FleetConfig:
    if path == "-":
        try:
            return parse_fleet(yaml.safe_load(sys.stdin.read()), "<stdin>")
        except yaml.YAMLError as err:
            raise FleetConfigError(f"<stdin>: not valid YAML: {err}") from None
    return load_fleet(path)


def _when(date: str | None) -> tuple[float, bool]:
    """(epoch seconds to report, whether it is now). Raises ValueError for a bad date."""
    now = time.time()
    if date is None or date == period_keys(now)[0]:
        return now, True
    day = datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    return day.timestamp() + 12 * 3600, False


async def _report(fleet: FleetConfig, now: float, current: bool, env: Mapping[str, str]) -> list[LedgerRow]:
    store = open_store(fleet, env)
    try:
        return await read_ledger(fleet.tenants, store, now, current)
    finally:
        await store.close()


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """CLI entry point; returns the exit status (see the module docstring)."""
    args = _parser().parse_args(argv)
    try:
        fleet = _load(args.fleet)
        now, current = _when(args.date)
    except (FleetConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT
    if not fleet.tenants:
        print(f"error: {args.fleet} has no tenants", file=sys.stderr)
        return EXIT_INPUT
    try:
        rows = asyncio.run(_report(fleet, now, current, os.environ if env is None else env))
    except TenantStoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT
    except StoreUnavailable as err:
        print(f"error: the {fleet.tenant_store.kind} tenant store did not answer: {err}", file=sys.stderr)
        return EXIT_STORE
    day, month = period_keys(now)
    if args.json:
        doc = {"store": fleet.tenant_store.kind, "day": day, "month": month, "current": current}
        print(json.dumps({**doc, "tenants": [r.to_dict() for r in rows]}, indent=1))
    else:
        live = "" if current else " (settled only: reservations and rate windows are read for today only)"
        print(f"tenants of {fleet.name}: UTC day {day}, month {month}; {fleet.tenant_store.kind} store{live}")
        print(ledger_table(rows))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
