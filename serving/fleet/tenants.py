"""Tenants in the fleet config: who may call, how much, and what happens over budget.

A tenant is identified by the SHA-256 (hex) of its API keys: the keys themselves come
from the environment or a Kubernetes Secret, never from this file. `check_tenants`
runs at load (from `FleetConfig`) and rejects a key hash shared by two tenants, a
duplicate name, and an allowed model the fleet does not serve.

Pure module: no Ray, vLLM, FastAPI or store imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TierName = Literal["small", "medium", "large"]
TIER_ORDER: tuple[str, ...] = ("small", "medium", "large")  # cheapest first, like schema.Tier
Priority = Literal["high", "normal", "low"]
# The scarcity order: under GPU scarcity the first yields the strong tier first, the last keeps it longest.
PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high")


class _StrictTenant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantLimits(_StrictTenant):
    """Rate limits over a sliding 60-second window, and requests held at once. Unset: no limit."""

    requests_per_min: int | None = Field(None, ge=1, le=10_000_000, description="Requests admitted per 60 s.")
    tokens_per_min: int | None = Field(
        None,
        ge=1,
        le=10_000_000_000,
        description="Prompt + completion tokens per 60 s (reserved as prompt estimate + max_tokens, then settled).",
    )
    concurrent: int | None = Field(None, ge=1, le=1_000_000, description="Requests in flight at once.")


class TenantBudget(_StrictTenant):
    """Dollar budgets per UTC day and UTC month, charged with the x-petit-cost-usd formula. Unset: none."""

    usd_per_day: float | None = Field(None, gt=0, allow_inf_nan=False)
    usd_per_month: float | None = Field(None, gt=0, allow_inf_nan=False)


class TenantConfig(_StrictTenant):
    """One tenant: its key hashes, priority, limits, budgets, what it may call and the over-budget policy."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$", description="Shown in metrics, spans and logs (never the key)."
    )
    key_sha256: list[str] = Field(
        min_length=1,
        description="Hex SHA-256 of each API key of the tenant (`printf %s KEY | sha256sum`); the keys "
        "themselves come from env or a Secret.",
    )
    priority: Priority = Field(
        "normal",
        description="Priority class: under GPU scarcity the autoscaler moves low priority's auto traffic off the "
        "strong tier first, high priority's last.",
    )
    limits: TenantLimits = Field(default_factory=TenantLimits)
    budget: TenantBudget = Field(default_factory=TenantBudget)
    allowed_models: list[str] | None = Field(
        None, description="Model ids the tenant may name (auto is always allowed); unset: every model."
    )
    max_tier: TierName | None = Field(
        None, description="The highest tier the tenant may use (auto is capped to it); unset: every tier."
    )
    over_budget: Literal["reject", "downgrade"] = Field(
        "reject",
        description="Past a budget: reject (429 + Retry-After at the period's end) or downgrade (auto and "
        "downgrade-allowed requests go to the cheapest tier, with x-petit-tenant-downgrade; named models above "
        "it get 402).",
    )
    soft_threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Share of a budget past which auto requests are already downgraded (e.g. 0.8); unset: none.",
    )

    @model_validator(mode="after")
    def _hashes(self) -> TenantConfig:
        norm = [h.strip().lower() for h in self.key_sha256]
        bad = [h for h in norm if len(h) != 64 or any(c not in "0123456789abcdef" for c in h)]
        if bad:
            raise ValueError(f"key_sha256 entries must be 64 hex digits (a SHA-256 of the key), got {bad[0][:16]!r}...")
        if len(set(norm)) != len(norm):
            raise ValueError("a key hash appears twice in key_sha256")
        object.__setattr__(self, "key_sha256", norm)  # frozen model: store the normal form once
        return self


class TenantStoreConfig(_StrictTenant):
    """Where rate counters, reservations and the spend ledger live."""

    kind: Literal["memory", "sqlite", "redis"] = Field(
        "memory",
        description="memory: in this process only (the default; each ingress replica counts alone, lost at "
        "restart); sqlite: a durable file shared by the processes of one node; redis: shared by every replica.",
    )
    sqlite_path: str = Field("~/.cache/petit/tenants.sqlite", description="kind sqlite: the ledger file.")
    redis_url_env: str = Field(
        "PETIT_REDIS_URL",
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="kind redis: the environment variable holding the redis:// URL (it may carry a password).",
    )
    key_prefix: str = Field("petit", pattern=r"^[A-Za-z0-9:_\-]{1,32}$", description="kind redis: key prefix.")
    timeout_ms: float = Field(
        100, gt=0, le=60_000, description="A store call slower than this counts as the store being unreachable."
    )
    on_unavailable: Literal["fail_open", "fail_closed"] = Field(
        "fail_closed",
        description="Store unreachable: fail_open admits without limits or charges (logged, on /health); "
        "fail_closed answers 503 with Retry-After.",
    )
    lease_s: float = Field(
        900, gt=0, le=86_400, description="A reservation never settled (a crashed replica) is released after this."
    )


def check_tenants(tenants: Sequence[TenantConfig], model_ids: Sequence[str]) -> None:
    """Raises ValueError for a duplicate tenant name, a key hash in two tenants, or an unknown allowed model."""
    names: set[str] = set()
    owner: dict[str, str] = {}
    for t in tenants:
        if t.name in names:
            raise ValueError(f"tenant name '{t.name}' appears twice")
        names.add(t.name)
        for h in t.key_sha256:
            if h in owner:
                raise ValueError(
                    f"key hash {h[:12]}... belongs to two tenants, '{owner[h]}' and '{t.name}': a key must "
                    "identify one tenant"
                )
            owner[h] = t.name
        unknown = sorted(set(t.allowed_models or ()) - set(model_ids))
        if unknown:
            raise ValueError(f"tenant '{t.name}': allowed_models {unknown} are not fleet models ({list(model_ids)})")
