"""The SQLite store (`tenant_store.kind: sqlite`): a durable ledger shared by the processes of one node.

Each call is one `BEGIN IMMEDIATE` transaction (writers take the file's lock first, so
a check and its reservation are atomic across processes), run on a worker thread so the
event loop never waits on the file. WAL journal; a locked file waits `busy_timeout`, then
raises StoreUnavailable. Tables: `rate` (requests and tokens per second), `live`
(reservations with their lease end), `spend` (settled USD per tenant and period: the ledger).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from serving.tenants.policy import WINDOW_S, Ask, Usage, period_keys, refusal
from serving.tenants.store import Grant, Reservation, StoreUnavailable, new_reservation

T = TypeVar("T")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS rate (tenant TEXT, second INTEGER, requests INTEGER, tokens INTEGER,
                                 PRIMARY KEY (tenant, second));
CREATE TABLE IF NOT EXISTS live (id TEXT PRIMARY KEY, tenant TEXT, lease_end REAL, day TEXT, month TEXT,
                                 usd REAL, tokens INTEGER, second INTEGER);
CREATE INDEX IF NOT EXISTS live_tenant ON live (tenant);
CREATE TABLE IF NOT EXISTS spend (tenant TEXT, period TEXT, usd REAL, PRIMARY KEY (tenant, period));
"""


class SqliteStore:
    """Rate counters, reservations and the spend ledger in one SQLite file."""

    kind = "sqlite"
    shared = True  # by the processes that open the same file

    def __init__(self, path: str | Path, lease_s: float = 900.0, busy_timeout_s: float = 1.0) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lease_s = lease_s
        self._lock = threading.Lock()  # one connection, used by one worker thread at a time
        self._db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def _tx(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    out = work(self._db)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return out
            except sqlite3.Error as err:
                raise StoreUnavailable(f"sqlite store {self.path.name}: {err}") from err

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._tx, work)

    def _usage(self, db: sqlite3.Connection, tenant: str, now: float) -> Usage:
        first = int(now) - WINDOW_S + 1
        db.execute("DELETE FROM rate WHERE tenant = ? AND second < ?", (tenant, first))
        db.execute("DELETE FROM live WHERE tenant = ? AND lease_end <= ?", (tenant, now))
        requests, tokens, oldest = db.execute(
            "SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(tokens), 0), MIN(second) FROM rate WHERE tenant = ?",
            (tenant,),
        ).fetchone()
        day, month = period_keys(now)
        live, res_day, res_month = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN day = ? THEN usd END), 0), "
            "COALESCE(SUM(CASE WHEN month = ? THEN usd END), 0) FROM live WHERE tenant = ?",
            (day, month, tenant),
        ).fetchone()
        settled = dict(
            db.execute("SELECT period, usd FROM spend WHERE tenant = ? AND period IN (?, ?)", (tenant, day, month))
        )
        return Usage(
            int(requests),
            int(tokens),
            int(live),
            settled.get(day, 0.0) + float(res_day),
            settled.get(month, 0.0) + float(res_month),
            float(WINDOW_S) if oldest is None else oldest + WINDOW_S - now,
        )

    async def usage(self, tenant: str, now: float) -> Usage:
        return await self._run(lambda db: self._usage(db, tenant, now))

    async def reserve(self, tenant: str, ask: Ask, now: float) -> Grant:
        def work(db: sqlite3.Connection) -> Grant:
            usage = self._usage(db, tenant, now)
            refused = refusal(usage, ask)
            if refused is not None:
                return Grant(None, usage, refused)
            r = new_reservation(tenant, ask, now)
            db.execute(
                "INSERT INTO rate VALUES (?, ?, 1, ?) ON CONFLICT (tenant, second) DO UPDATE SET "
                "requests = requests + 1, tokens = tokens + excluded.tokens",
                (tenant, r.second, r.tokens),
            )
            db.execute(
                "INSERT INTO live VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (r.id, tenant, now + self.lease_s, r.day, r.month, r.usd, r.tokens, r.second),
            )
            return Grant(r, usage)

        return await self._run(work)

    async def settle(self, reservation: Reservation, tokens: int, usd: float, now: float) -> None:
        r = reservation

        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM live WHERE id = ?", (r.id,))
            for period in (r.day, r.month):
                db.execute(
                    "INSERT INTO spend VALUES (?, ?, ?) ON CONFLICT (tenant, period) DO UPDATE SET usd = usd + ?",
                    (r.tenant, period, usd, usd),
                )
            db.execute(
                "UPDATE rate SET tokens = tokens + ? WHERE tenant = ? AND second = ?",
                (tokens - r.tokens, r.tenant, r.second),
            )

        await self._run(work)

    async def spend(self, tenant: str, period: str) -> float:
        def work(db: sqlite3.Connection) -> float:
            row = db.execute("SELECT usd FROM spend WHERE tenant = ? AND period = ?", (tenant, period)).fetchone()
            return 0.0 if row is None else float(row[0])

        return await self._run(work)

    async def close(self) -> None:
        with self._lock:
            self._db.close()
