"""Traffic per tenant: each tenant an API key (read from an environment variable) and a share of the users.

::

    tenants:
      - {name: alpha, api_key_env: PETIT_KEY_ALPHA, share: 3}
      - {name: beta, api_key_env: PETIT_KEY_BETA, share: 1}

Shares are weights (normalised over the tenants): above, 3 of every 4 users send
alpha's key. Each Locust user belongs to one tenant for its whole life, handed out
in a fixed interleaved order (`TenantAssigner`), so a tenant's concurrency follows
its share. The keys never enter the scenario, the report or the samples: only the
variables' names and the tenants' names do. Pure module (no Locust, no I/O).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from loadtests.config_files import LoadTestInputError

DOWNGRADE_HEADER = "x-petit-tenant-downgrade"  # Petit's reason for capping a tenant's tier (budget, soft threshold)


class TenantTrafficSpec(BaseModel):
    """One tenant's part of the load."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$", description="Shown in the report and the SLA.")
    api_key_env: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="The environment variable holding the tenant's API key."
    )
    share: float = Field(1.0, gt=0, le=1_000_000, description="Weight of the users (normalised over the tenants).")


def check_tenant_traffic(tenants: Sequence[TenantTrafficSpec]) -> None:
    """Raises ValueError for a tenant name or key variable given twice (two tenants, one key)."""
    for attr in ("name", "api_key_env"):
        values = [getattr(t, attr) for t in tenants]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ValueError(f"tenants: {attr} {twice[0]!r} appears twice")


def tenant_keys(tenants: Sequence[TenantTrafficSpec], env: Mapping[str, str]) -> dict[str, str]:
    """Tenant name -> API key from `env`. Raises LoadTestInputError naming every unset variable (never a key)."""
    missing = [f"{t.api_key_env} (tenant {t.name})" for t in tenants if not env.get(t.api_key_env, "").strip()]
    if missing:
        raise LoadTestInputError(
            f"the scenario's tenants need their API keys in the environment: set {', '.join(missing)}"
        )
    return {t.name: env[t.api_key_env].strip() for t in tenants}


class TenantAssigner:
    """Hands out tenants to users in a fixed interleaved order that tracks the shares.

    The n-th user goes to the tenant furthest behind its share of n users (ties: the
    first listed), so after any number of users every count is within one of its share.
    """

    def __init__(self, names: Sequence[str], shares: Sequence[float]) -> None:
        if not names or len(names) != len(shares) or min(shares) <= 0:
            raise ValueError("need one positive share per tenant")
        total = sum(shares)
        self.names = list(names)
        self.weights = [s / total for s in shares]
        self.counts = [0] * len(names)

    def next(self) -> str:
        n = sum(self.counts) + 1
        behind = [w * n - c for w, c in zip(self.weights, self.counts, strict=True)]
        i = max(range(len(behind)), key=lambda k: (behind[k], -k))
        self.counts[i] += 1
        return self.names[i]
