"""Where tenants' rate counters, reservations and spend live: the `TenantStore` protocol and the in-process store.

Every store keeps, per tenant: requests and tokens per second over the sliding
window; live reservations (concurrency, and spend not yet settled), each with a
lease after which a reservation a crashed replica never settled is dropped; and
settled spend per UTC day and month (the ledger). `reserve` checks the caps and
takes the reservation in one atomic step. A reservation is charged to the periods
it was taken in, whatever the settling replica's clock says.

`MemoryStore` is the default: one process only (each ingress replica counts alone)
and lost at restart. `serving.tenants.sqlite_store` is durable and shared by the
processes of one node; `serving.tenants.redis_store` by every replica.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Protocol

from serving.tenants.policy import WINDOW_S, Ask, Usage, period_keys, refusal


class StoreUnavailable(Exception):
    """The store did not answer (down, unreachable, too slow)."""


@dataclass(frozen=True)
class Reservation:
    """A reservation taken at admission: settled once, after the response, with the exact cost."""

    id: str
    tenant: str
    second: int  # the rate window's bucket it was counted in
    day: str
    month: str
    tokens: int
    usd: float


@dataclass(frozen=True)
class Grant:
    """`reserve`'s answer: the reservation, or None with the cap that refused it; the usage before the ask."""

    reservation: Reservation | None
    usage: Usage
    refused: str | None = None


class TenantStore(Protocol):
    """Counters and ledger shared by the ingress replicas that use the same store. Calls may raise StoreUnavailable."""

    kind: str
    shared: bool  # whether other processes see the same counts

    async def usage(self, tenant: str, now: float) -> Usage: ...

    async def reserve(self, tenant: str, ask: Ask, now: float) -> Grant:
        """Take the reservation if `ask`'s caps hold on top of the current usage; atomic."""

    async def settle(self, reservation: Reservation, tokens: int, usd: float, now: float) -> None:
        """Release the reservation; charge `usd` to its periods and correct its tokens to `tokens`."""

    async def spend(self, tenant: str, period: str) -> float:
        """Settled spend of a period key ('2025-01-31' or '2025-01')."""

    async def close(self) -> None: ...


def new_reservation(tenant: str, ask: Ask, now: float) -> Reservation:
    day, month = period_keys(now)
    return Reservation(uuid.uuid4().hex, tenant, int(now), day, month, ask.tokens, ask.usd)


@dataclass
class _Tenant:
    requests: dict[int, int] = field(default_factory=dict)  # second -> admitted
    tokens: dict[int, int] = field(default_factory=dict)  # second -> tokens
    live: dict[str, tuple[float, Reservation]] = field(default_factory=dict)  # id -> (lease end, reservation)
    settled: dict[str, float] = field(default_factory=dict)  # period key -> USD


class MemoryStore:
    """The in-process store (`tenant_store.kind: memory`): exact, atomic on one event loop, not shared or durable."""

    kind = "memory"
    shared = False

    def __init__(self, lease_s: float = 900.0) -> None:
        self.lease_s = lease_s
        self._tenants: dict[str, _Tenant] = {}

    def _state(self, tenant: str, now: float) -> tuple[_Tenant, Usage]:
        t = self._tenants.setdefault(tenant, _Tenant())
        first = int(now) - WINDOW_S + 1
        for sec in [s for s in t.requests if s < first]:
            del t.requests[sec]
            t.tokens.pop(sec, None)
        for rid in [r for r, (end, _) in t.live.items() if end <= now]:
            del t.live[rid]
        day, month = period_keys(now)
        live = [r for _, r in t.live.values()]
        oldest = min(t.requests, default=None)
        usage = Usage(
            sum(t.requests.values()),
            sum(t.tokens.values()),
            len(live),
            t.settled.get(day, 0.0) + sum(r.usd for r in live if r.day == day),
            t.settled.get(month, 0.0) + sum(r.usd for r in live if r.month == month),
            float(WINDOW_S) if oldest is None else oldest + WINDOW_S - now,
        )
        return t, usage

    async def usage(self, tenant: str, now: float) -> Usage:
        return self._state(tenant, now)[1]

    async def reserve(self, tenant: str, ask: Ask, now: float) -> Grant:
        t, usage = self._state(tenant, now)  # no await between the check and the write: atomic on the loop
        refused = refusal(usage, ask)
        if refused is not None:
            return Grant(None, usage, refused)
        r = new_reservation(tenant, ask, now)
        t.requests[r.second] = t.requests.get(r.second, 0) + 1
        t.tokens[r.second] = t.tokens.get(r.second, 0) + r.tokens
        t.live[r.id] = (now + self.lease_s, r)
        return Grant(r, usage)

    async def settle(self, reservation: Reservation, tokens: int, usd: float, now: float) -> None:
        t = self._tenants.setdefault(reservation.tenant, _Tenant())
        t.live.pop(reservation.id, None)
        for period in (reservation.day, reservation.month):
            t.settled[period] = t.settled.get(period, 0.0) + usd
        if reservation.second in t.tokens:
            t.tokens[reservation.second] += tokens - reservation.tokens

    async def spend(self, tenant: str, period: str) -> float:
        return self._tenants.get(tenant, _Tenant()).settled.get(period, 0.0)

    async def close(self) -> None:
        return None
