"""The tenant policy as a table: usage and request in, admit / downgrade / reject out (pure, no store)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from serving.fleet.tenants import TenantConfig
from serving.tenants.policy import (
    Ask,
    TenantRequest,
    Usage,
    ask_for,
    decide_admission,
    period_keys,
    refusal,
    seconds_to_reset,
)
from tests.unit.tenants.helpers import EVE, sha

AUTO = TenantRequest("auto", None, tokens=100, cost_usd=0.10, downgraded_cost_usd=0.01, cheapest_tier="small")
LARGE = TenantRequest("large", "large", tokens=100, cost_usd=0.10, downgraded_cost_usd=0.10, cheapest_tier="small")
SMALL = TenantRequest("small", "small", tokens=100, cost_usd=0.01, downgraded_cost_usd=0.01, cheapest_tier="small")
NO_DOWN = TenantRequest("auto", None, 100, 0.10, 0.01, "small", allow_downgrade=False)


def t(**fields) -> TenantConfig:
    base = {"name": "acme", "key_sha256": [sha("k")], "budget": {"usd_per_day": 1.0, "usd_per_month": 10.0}}
    return TenantConfig.model_validate({**base, **fields})


LIMITS = {"requests_per_min": 10, "tokens_per_min": 1000, "concurrent": 2}
DOWN = {"over_budget": "downgrade", "soft_threshold": 0.8}

# (case, tenant fields, usage, request) -> (action, reason, status, max_tier)
CASES = [
    ("fresh", {}, Usage(), AUTO, ("admit", "ok", 200, None)),
    ("rpm reached", {"limits": LIMITS}, Usage(requests=10, window_reset_s=12.5), AUTO,
     ("reject", "requests_per_min", 429, None)),
    ("rpm one left", {"limits": LIMITS}, Usage(requests=9), AUTO, ("admit", "ok", 200, None)),
    ("tpm would pass", {"limits": LIMITS}, Usage(tokens=901), AUTO, ("reject", "tokens_per_min", 429, None)),
    ("tpm exactly", {"limits": LIMITS}, Usage(tokens=900), AUTO, ("admit", "ok", 200, None)),
    ("concurrent", {"limits": LIMITS}, Usage(concurrent=2), AUTO, ("reject", "concurrent", 429, None)),
    ("model not allowed", {"allowed_models": ["small"]}, Usage(), LARGE, ("reject", "model_not_allowed", 403, None)),
    ("auto always allowed", {"allowed_models": ["small"]}, Usage(), AUTO, ("admit", "ok", 200, None)),
    ("tier above max", {"max_tier": "small"}, Usage(), LARGE, ("reject", "tier_not_allowed", 403, None)),
    ("max tier caps auto", {"max_tier": "small"}, Usage(), AUTO, ("admit", "ok", 200, "small")),
    ("under soft", DOWN, Usage(spend_day_usd=0.79), AUTO, ("admit", "ok", 200, None)),
    ("soft day", DOWN, Usage(spend_day_usd=0.85), AUTO, ("downgrade", "soft_threshold:day:85%", 200, "small")),
    ("soft month wins", DOWN, Usage(spend_day_usd=0.5, spend_month_usd=9.5), AUTO,
     ("downgrade", "soft_threshold:month:95%", 200, "small")),
    ("soft, named", DOWN, Usage(spend_day_usd=0.85), LARGE, ("admit", "ok", 200, None)),
    ("soft, no downgrade", DOWN, Usage(spend_day_usd=0.85), NO_DOWN, ("admit", "ok", 200, None)),
    ("soft with reject policy", {"soft_threshold": 0.8}, Usage(spend_day_usd=0.85), AUTO,
     ("downgrade", "soft_threshold:day:85%", 200, "small")),
    ("hard reject", {}, Usage(spend_day_usd=0.95), AUTO, ("reject", "budget:day", 429, None)),
    ("hard reject month", {}, Usage(spend_month_usd=9.95), AUTO, ("reject", "budget:month", 429, None)),
    ("hard downgrade auto", DOWN, Usage(spend_day_usd=1.2), AUTO, ("downgrade", "budget:day", 200, "small")),
    ("hard downgrade named large", DOWN, Usage(spend_day_usd=1.2), LARGE, ("reject", "budget:day", 402, None)),
    ("hard downgrade named small", DOWN, Usage(spend_day_usd=1.2), SMALL, ("admit", "budget:day", 200, "small")),
    ("hard, auto refusing downgrade", DOWN, Usage(spend_day_usd=1.2), NO_DOWN, ("reject", "budget:day", 402, None)),
    ("no budget", {"budget": {}}, Usage(spend_day_usd=1e6), AUTO, ("admit", "ok", 200, None)),
    ("rate before budget", {"limits": LIMITS, **DOWN}, Usage(requests=10, spend_day_usd=5), AUTO,
     ("reject", "requests_per_min", 429, None)),
]  # fmt: skip


@pytest.mark.parametrize(("case", "fields", "usage", "req", "want"), CASES, ids=[c[0] for c in CASES])
def test_decide(case, fields, usage, req, want):
    a = decide_admission(t(**fields), usage, req, EVE)
    assert (a.action, a.reason, a.status, a.max_tier) == want
    if a.action == "reject":
        assert a.message and a.code and "acme" in a.message
    if a.status == 429:
        assert a.retry_after_s is not None and a.retry_after_s >= 1


def test_retry_after_says_when_the_limit_frees():
    rpm = decide_admission(t(limits=LIMITS), Usage(requests=10, window_reset_s=12.5), AUTO, EVE)
    assert rpm.retry_after_s == 13
    day = decide_admission(t(), Usage(spend_day_usd=0.95), AUTO, EVE)  # 23:59:00 UTC: a minute to midnight
    assert day.retry_after_s == 60 and day.code == "tenant_budget_exceeded"
    named = decide_admission(t(**DOWN), Usage(spend_day_usd=1.2), LARGE, EVE)
    assert named.retry_after_s == 60 and "send model 'auto'" in named.message


def test_reservations_and_caps():
    soft = decide_admission(t(**DOWN), Usage(spend_day_usd=0.85), AUTO, EVE)
    assert soft.reserve_usd == 0.01 and soft.budget_capped  # reserves at the small tier's price, still capped
    hard = decide_admission(t(**DOWN), Usage(spend_day_usd=1.2), AUTO, EVE)
    ask = ask_for(t(**DOWN, limits=LIMITS), hard)
    assert ask == Ask(100, 0.01, 10, 1000, 2, None, None)  # served past the budget: no budget cap
    full = ask_for(t(limits=LIMITS), decide_admission(t(limits=LIMITS), Usage(), AUTO, EVE))
    assert full == Ask(100, 0.10, 10, 1000, 2, 1.0, 10.0)


@pytest.mark.parametrize(
    ("usage", "refused"),
    [
        (Usage(), None),
        (Usage(requests=10), "requests_per_min"),
        (Usage(tokens=901), "tokens_per_min"),
        (Usage(concurrent=2), "concurrent"),
        (Usage(spend_day_usd=0.91), "usd_per_day"),
        (Usage(spend_day_usd=0.90), None),  # exactly the budget is within it
        (Usage(spend_month_usd=9.95), "usd_per_month"),
    ],
)
def test_refusal(usage, refused):
    assert refusal(usage, Ask(100, 0.10, 10, 1000, 2, 1.0, 10.0)) == refused


def test_periods_reset_at_the_utc_boundary():
    assert period_keys(EVE) == ("2025-01-31", "2025-01")
    assert period_keys(EVE + 60) == ("2025-02-01", "2025-02")
    assert seconds_to_reset("day", EVE) == 60 and seconds_to_reset("month", EVE) == 60
    dec = datetime(2024, 12, 15, tzinfo=timezone.utc).timestamp()
    assert seconds_to_reset("month", dec) == 17 * 86400  # December rolls into January
    assert seconds_to_reset("day", EVE + 60) == 86400
