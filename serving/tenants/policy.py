"""Tenant admission as pure decisions: a tenant, its usage now and a request in; admit, downgrade or reject out.

`decide_admission` is the whole policy (allowed models and tiers, rate limits, budgets, the
soft threshold, the over-budget choice). The store then takes the reservation
atomically with `ask_for`'s caps, checked by `refusal` (the in-process and SQLite
stores; the Redis store runs the same check in Lua), so two requests that both
passed `decide_admission` cannot both overspend. Budget periods are UTC days and months of
the `now` passed in: nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from serving.fleet.tenants import TIER_ORDER, TenantConfig

WINDOW_S = 60  # the rate limits' sliding window: the current second and the 59 before it


@dataclass(frozen=True)
class Usage:
    """A tenant's usage as the store sees it (spend: settled plus live reservations)."""

    requests: int = 0  # admitted in the window
    tokens: int = 0  # reserved (then settled) in the window
    concurrent: int = 0  # live reservations
    spend_day_usd: float = 0.0  # this UTC day
    spend_month_usd: float = 0.0  # this UTC month
    window_reset_s: float = float(WINDOW_S)  # until the window's oldest second leaves it


@dataclass(frozen=True)
class TenantRequest:
    """What the policy needs to know of one request."""

    model: str  # a fleet model id, or "auto"
    model_tier: str | None  # the named model's tier; None for auto
    tokens: int  # prompt estimate + output bound
    cost_usd: float  # upper bound at the tiers the tenant may use
    downgraded_cost_usd: float  # upper bound on the cheapest tier
    cheapest_tier: str  # where a downgrade sends the request
    allow_downgrade: bool = True  # the request allows it (petit.allow_downgrade, a min_tier above the cheapest)


Action = Literal["admit", "downgrade", "reject"]
Period = Literal["day", "month"]


@dataclass(frozen=True)
class Admission:
    """The policy's answer: an action, a reason (header / metric label) and what to reserve."""

    action: Action
    reason: str
    max_tier: str | None = None  # the tier cap to route under
    reserve_usd: float = 0.0
    tokens: int = 0
    budget_capped: bool = True  # the store must keep spend within the budgets atomically
    status: int = 200
    code: str | None = None
    message: str = ""
    retry_after_s: int | None = None


@dataclass(frozen=True)
class Ask:
    """A reservation request to the store, with the caps it must hold atomically (None: no cap)."""

    tokens: int
    usd: float
    requests_per_min: int | None = None
    tokens_per_min: int | None = None
    concurrent: int | None = None
    usd_per_day: float | None = None
    usd_per_month: float | None = None


def period_keys(now: float) -> tuple[str, str]:
    """The UTC day and month of `now` (epoch seconds): ('2025-01-31', '2025-01')."""
    t = datetime.fromtimestamp(now, tz=timezone.utc)
    return t.strftime("%Y-%m-%d"), t.strftime("%Y-%m")


def seconds_to_reset(period: Period, now: float) -> int:
    """Whole seconds (at least 1) until the UTC day or month of `now` ends."""
    t = datetime.fromtimestamp(now, tz=timezone.utc)
    if period == "day":
        end = datetime(t.year, t.month, t.day, tzinfo=timezone.utc) + timedelta(days=1)
    else:
        end = datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=timezone.utc)
    return max(1, math.ceil(end.timestamp() - now))


def _reject(status: int, code: str, reason: str, message: str, retry: int | None = None) -> Admission:
    return Admission("reject", reason, status=status, code=code, message=message, retry_after_s=retry)


def _rate(tenant: TenantConfig, usage: Usage, req: TenantRequest) -> Admission | None:
    lim, retry = tenant.limits, max(1, math.ceil(usage.window_reset_s))
    if lim.requests_per_min is not None and usage.requests + 1 > lim.requests_per_min:
        msg = f"tenant '{tenant.name}' is at its limit of {lim.requests_per_min} requests per minute"
        return _reject(429, "tenant_rate_limited", "requests_per_min", f"{msg}; retry after {retry}s", retry)
    if lim.tokens_per_min is not None and usage.tokens + req.tokens > lim.tokens_per_min:
        msg = (
            f"tenant '{tenant.name}' would pass its limit of {lim.tokens_per_min} tokens per minute "
            f"(this request may use {req.tokens}: prompt estimate + max_tokens)"
        )
        return _reject(429, "tenant_rate_limited", "tokens_per_min", f"{msg}; retry after {retry}s", retry)
    if lim.concurrent is not None and usage.concurrent + 1 > lim.concurrent:
        msg = f"tenant '{tenant.name}' has {usage.concurrent} requests in flight, its limit; retry after 1s"
        return _reject(429, "tenant_rate_limited", "concurrent", msg, 1)
    return None


def _allowed(tenant: TenantConfig, req: TenantRequest) -> Admission | None:
    if req.model_tier is None:
        return None
    if tenant.allowed_models is not None and req.model not in tenant.allowed_models:
        allowed = ", ".join([*tenant.allowed_models, "auto"])
        msg = f"tenant '{tenant.name}' may not use model '{req.model}' (allowed: {allowed})"
        return _reject(403, "model_not_allowed", "model_not_allowed", msg)
    if tenant.max_tier is not None and TIER_ORDER.index(req.model_tier) > TIER_ORDER.index(tenant.max_tier):
        msg = f"tenant '{tenant.name}' may use tiers up to {tenant.max_tier}; model '{req.model}' is {req.model_tier}"
        return _reject(403, "tier_not_allowed", "tier_not_allowed", msg)
    return None


def _budget_state(tenant: TenantConfig, usage: Usage, cost: float) -> tuple[Period | None, Period | None, float]:
    """(period over the hard limit with `cost` added, period past the soft threshold, its used share)."""
    hard: Period | None = None
    soft: Period | None = None
    share = 0.0
    periods: tuple[tuple[Period, float, float | None], ...] = (
        ("day", usage.spend_day_usd, tenant.budget.usd_per_day),
        ("month", usage.spend_month_usd, tenant.budget.usd_per_month),
    )
    for period, spent, budget in periods:
        if budget is None:
            continue
        if hard is None and spent + cost > budget:
            hard = period
        if tenant.soft_threshold is not None and spent >= tenant.soft_threshold * budget and spent / budget > share:
            soft, share = period, spent / budget
    return hard, soft, share


def decide_admission(tenant: TenantConfig, usage: Usage, req: TenantRequest, now: float) -> Admission:
    """Admit, downgrade (cap the tier at the cheapest) or reject one request of `tenant`.

    In order: a named model the tenant may not use (403); a rate limit (429, Retry-After
    when the window frees); the budgets. Past the soft threshold an `auto` request that
    allows it is downgraded. Past a hard budget (with this request's reservation added):
    `reject` answers 429 with Retry-After at the period's end; `downgrade` sends auto
    requests to the cheapest tier without a budget cap, serves named models of that tier,
    and answers 402 for named models above it.
    """
    refused = _allowed(tenant, req) or _rate(tenant, usage, req)
    if refused is not None:
        return refused
    admit = Admission("admit", "ok", tenant.max_tier, req.cost_usd, req.tokens)
    hard, soft, share = _budget_state(tenant, usage, req.cost_usd)
    downgradable = req.model_tier is None and req.allow_downgrade
    down_tier = req.cheapest_tier
    if hard is None:
        if soft is None or not downgradable:
            return admit
        return Admission(
            "downgrade", f"soft_threshold:{soft}:{share:.0%}", down_tier, req.downgraded_cost_usd, req.tokens
        )
    retry = seconds_to_reset(hard, now)
    why = f"tenant '{tenant.name}' has used its {'daily' if hard == 'day' else 'monthly'} budget"
    if tenant.over_budget == "reject":
        return _reject(429, "tenant_budget_exceeded", f"budget:{hard}", f"{why}; retry after {retry}s", retry)
    if downgradable:
        return Admission("downgrade", f"budget:{hard}", down_tier, req.downgraded_cost_usd, req.tokens, False)
    if req.model_tier == down_tier:
        return Admission("admit", f"budget:{hard}", down_tier, req.cost_usd, req.tokens, False)
    hint = f"send model 'auto' to be served on the {down_tier} tier, or retry after {retry}s"
    if req.model_tier is None:  # auto that forbids the downgrade
        msg = f"{why}; this request does not allow a downgrade to the {down_tier} tier: {hint}"
    else:
        msg = f"{why}; model '{req.model}' is above the {down_tier} tier it is limited to: {hint}"
    return _reject(402, "tenant_budget_exceeded", f"budget:{hard}", msg, retry)


def ask_for(tenant: TenantConfig, admission: Admission) -> Ask:
    """The store's reservation request for an admitted or downgraded request, with the caps to hold."""
    lim, budget = tenant.limits, tenant.budget
    capped = admission.budget_capped
    return Ask(
        admission.tokens,
        admission.reserve_usd,
        lim.requests_per_min,
        lim.tokens_per_min,
        lim.concurrent,
        budget.usd_per_day if capped else None,
        budget.usd_per_month if capped else None,
    )


def refusal(usage: Usage, ask: Ask) -> str | None:
    """The first cap `ask` would break on top of `usage` (a limit's name), or None when it fits."""
    checks = (
        ("requests_per_min", usage.requests + 1, ask.requests_per_min),
        ("tokens_per_min", usage.tokens + ask.tokens, ask.tokens_per_min),
        ("concurrent", usage.concurrent + 1, ask.concurrent),
        ("usd_per_day", usage.spend_day_usd + ask.usd, ask.usd_per_day),
        ("usd_per_month", usage.spend_month_usd + ask.usd, ask.usd_per_month),
    )
    return next((name for name, value, cap in checks if cap is not None and value > cap), None)
