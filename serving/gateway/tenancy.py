"""The gateway's tenant hook: API key -> tenant, admission by `serving.tenants.policy`, settling after the response.

Without `tenants` in the fleet, keys are `PETIT_API_KEYS` as before (or none). With
tenants, a key authenticates when its SHA-256 is one of a tenant's `key_sha256`
(PETIT_API_KEYS is then not used). `admit` reserves the request's upper-bound cost in
the store (raising an OpenAI-shaped HTTPError to refuse it) and returns the tier cap to
route under; `finish` settles the reservation with the recorded cost (the
x-petit-cost-usd formula), on a task of its own. A store that fails or answers slower
than `tenant_store.timeout_ms` is handled as `on_unavailable` says, never waited on.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TypeVar

from serving.fleet.schema import AUTO_MODEL, FleetConfig
from serving.fleet.tenants import TenantConfig
from serving.gateway.errors import HTTPError
from serving.gateway.protocol import ChatRequest, CompletionRequest
from serving.gateway.telemetry import RequestRecord
from serving.router.constraints import parse_constraints
from serving.router.types import FleetSnapshot, ModelSnapshot
from serving.tenants.build import build_store, describe_store
from serving.tenants.policy import Admission, TenantRequest, ask_for, decide_admission
from serving.tenants.store import MemoryStore, Reservation, StoreUnavailable, TenantStore

T = TypeVar("T")
DOWNGRADE_HEADER = "x-petit-tenant-downgrade"
PROMPT_BYTES_PER_TOKEN = 3  # the prompt estimate reserved before the count: body bytes / 3 (generous)
log = logging.getLogger("petit.tenants")


def _bound(m: ModelSnapshot, prompt: int, output: int | None) -> tuple[float, int]:
    """(cost, tokens) upper bound of one request on `m`: neither part past its context window."""
    p, o = min(prompt, m.max_model_len), min(output or m.max_model_len, m.max_model_len)
    return m.cost(p, o), min(prompt + (output or m.max_model_len), m.max_model_len)


class Tenancy:
    """Authentication and tenant admission for one ingress replica (the store may be shared)."""

    def __init__(
        self,
        fleet: FleetConfig,
        store: TenantStore | None = None,
        api_keys: frozenset[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fleet, self.clock = fleet, clock
        self.tenants = {h: t for t in fleet.tenants for h in t.key_sha256}
        # Keyed when tenants exist even without PETIT_API_KEYS (routes hide /docs while keyed).
        self.api_keys = api_keys if not fleet.tenants else (api_keys or frozenset())
        self.store: TenantStore = store or MemoryStore(fleet.tenant_store.lease_s)
        self.timeout_s = fleet.tenant_store.timeout_ms / 1e3
        self.store_error: str | None = None  # the last store failure, until a call succeeds again
        self._open: dict[int, tuple[Reservation, str]] = {}  # id(rec) -> its reservation, tenant
        self._settling: set[asyncio.Task[None]] = set()
        if fleet.tenants:
            if api_keys:
                log.warning("tenants are configured: PETIT_API_KEYS is not used, only tenants' key hashes")
            log.info("%d tenant(s); tenant store: %s", len(fleet.tenants), describe_store(self.store))

    def authenticate(self, headers: Mapping[str, str]) -> TenantConfig | None:
        """The caller's tenant (None without tenants). Raises a 401 HTTPError for a missing or unknown key."""
        if self.api_keys is None:
            return None
        scheme, _, key = headers.get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() == "bearer" and key:
            if self.tenants:
                tenant = self.tenants.get(hashlib.sha256(key.encode()).hexdigest())
                if tenant is not None:
                    return tenant
            elif any(hmac.compare_digest(key, k) for k in self.api_keys):
                return None
        raise HTTPError(
            401,
            "missing or invalid API key (send 'Authorization: Bearer KEY')",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )

    def request_of(
        self, tenant: TenantConfig, req: ChatRequest | CompletionRequest, body: dict, headers: Mapping[str, str],
        body_bytes: int, snap: FleetSnapshot,
    ) -> TenantRequest:  # fmt: skip
        """The policy's view of a request: its tier and its upper-bound tokens and cost."""
        prompt, out = body_bytes // PROMPT_BYTES_PER_TOKEN + 1, req.output_budget
        ranks = {m.tier: m.tier_rank for m in snap.models}
        cheapest = min(snap.models, key=lambda m: m.tier_rank).tier
        named = snap.get(req.model) if req.model != AUTO_MODEL else None
        if named is not None:
            cost, tokens = _bound(named, prompt, out)
            return TenantRequest(req.model, named.tier, tokens, cost, cost, cheapest)
        cap = ranks.get(tenant.max_tier, 99) if tenant.max_tier else 99
        full = [_bound(m, prompt, out) for m in snap.models if m.tier_rank <= cap] or [(0.0, 0)]
        low = [_bound(m, prompt, out) for m in snap.models if m.tier == cheapest]
        c = parse_constraints(body, headers, sorted(ranks))
        downgradable = c.allow_downgrade and (c.min_tier is None or ranks.get(c.min_tier, 0) <= ranks[cheapest])
        return TenantRequest(
            req.model,
            None,
            max(t for _, t in full),
            max(x for x, _ in full),
            max(x for x, _ in low),
            cheapest,
            downgradable,
        )

    async def _store(self, call: Callable[[], Awaitable[T]]) -> T:
        """One store call, bounded by the timeout. Raises StoreUnavailable."""
        try:
            out = await asyncio.wait_for(call(), self.timeout_s)
        except (StoreUnavailable, asyncio.TimeoutError, OSError) as err:
            why = f"{type(err).__name__}: {err}" if str(err) else f"no answer within {self.timeout_s * 1e3:g} ms"
            if self.store_error is None:
                log.error("tenant store %s unavailable (%s): %s", self.store.kind, self.on_unavailable, why)
            self.store_error = why
            raise StoreUnavailable(why) from err
        if self.store_error is not None:
            log.warning("tenant store %s answers again", self.store.kind)
            self.store_error = None
        return out

    @property
    def on_unavailable(self) -> str:
        return self.fleet.tenant_store.on_unavailable

    async def admit(
        self, tenant: TenantConfig | None, req: ChatRequest | CompletionRequest, body: dict,
        headers: Mapping[str, str], body_bytes: int, rec: RequestRecord, snap: FleetSnapshot,
    ) -> str | None:  # fmt: skip
        """Admit `tenant`'s request: the tier cap to route under (None: none). Raises HTTPError to refuse it."""
        if tenant is None:
            return None
        rec.tenant, rec.priority = tenant.name, tenant.priority
        treq = self.request_of(tenant, req, body, headers, body_bytes, snap)
        now = self.clock()
        try:
            adm = decide_admission(tenant, await self._store(lambda: self.store.usage(tenant.name, now)), treq, now)
            for _ in range(2):  # a second look when a concurrent request took the room first
                if adm.action == "reject":
                    break
                grant = await self._store(partial(self.store.reserve, tenant.name, ask_for(tenant, adm), now))
                if grant.reservation is not None:
                    return self._admitted(rec, adm, grant.reservation)
                adm = decide_admission(tenant, grant.usage, treq, now)
            if adm.action != "reject":  # refused twice by the store: another request keeps taking the room
                msg = f"tenant '{tenant.name}' is at one of its limits; retry after 1s"
                adm = Admission(
                    "reject", "contention", status=429, code="tenant_rate_limited", message=msg, retry_after_s=1
                )
        except StoreUnavailable:
            if self.on_unavailable == "fail_open":
                return tenant.max_tier
            rec.tenant_rejection = "store_unavailable"
            retry = str(self.fleet.server.retry_after_s)
            msg = f"the tenant store is unavailable; retry after {retry}s"
            raise HTTPError(503, msg, code="tenant_store_unavailable", headers={"Retry-After": retry}) from None
        rec.tenant_rejection = adm.reason
        headers_ = {"Retry-After": str(adm.retry_after_s)} if adm.retry_after_s is not None else None
        raise HTTPError(adm.status, adm.message, "model" if adm.status == 403 else None, adm.code, headers=headers_)

    def _admitted(self, rec: RequestRecord, adm: Admission, reservation: Reservation) -> str | None:
        self._open[id(rec)] = (reservation, adm.reason)
        if adm.action == "downgrade":
            rec.tenant_downgrade = adm.reason
        return adm.max_tier

    def headers(self, rec: RequestRecord) -> dict[str, str]:
        """The tenant's response headers: the downgrade's reason, when there was one."""
        return {DOWNGRADE_HEADER: rec.tenant_downgrade} if rec.tenant_downgrade else {}

    def finish(self, rec: RequestRecord) -> None:
        """Settle `rec`'s reservation with its recorded cost and tokens (on a task; `drain` awaits them)."""
        opened = self._open.pop(id(rec), None)
        if opened is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a stream closed outside the loop (at garbage collection): the lease frees it
            log.warning("tenant %s: a charge of $%.6g was not recorded (no event loop)", opened[0].tenant, rec.cost_usd)
            return
        task = loop.create_task(
            self._settle(opened[0], rec.prompt_tokens + rec.completion_tokens, rec.cost_usd)  # extra included
        )
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle(self, reservation: Reservation, tokens: int, usd: float) -> None:
        try:
            await self._store(lambda: self.store.settle(reservation, tokens, usd, self.clock()))
        except StoreUnavailable:  # logged by _store; the lease frees the reservation, the charge is lost
            log.warning("tenant %s: a charge of $%.6g was not recorded", reservation.tenant, usd)

    async def drain(self) -> None:
        """Wait for the settlements in flight (tests, shutdown)."""
        while self._settling:
            await asyncio.gather(*list(self._settling))

    def health(self) -> dict[str, object]:
        """What /health shows of the tenants: how many, the store, whether it answers."""
        out: dict[str, object] = {
            "tenants": len(self.fleet.tenants),
            "store": describe_store(self.store),
            "on_unavailable": self.on_unavailable,
            "store_ok": self.store_error is None,
        }
        if self.store_error is not None:
            out["store_error"] = self.store_error
        return out


def build_tenancy(fleet: FleetConfig, api_keys: frozenset[str] | None, env: Mapping[str, str]) -> Tenancy:
    """The replica's Tenancy with the store `fleet.tenant_store` names (raises TenantStoreError for redis without URL)."""
    store = build_store(fleet.tenant_store, env) if fleet.tenants else None
    return Tenancy(fleet, store, api_keys)
