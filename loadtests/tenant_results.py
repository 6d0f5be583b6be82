"""A run's numbers per tenant: latency, spend, downgrades and which model answered. Pure module.

Over the measured samples (finished, after the warm-up) that carry a tenant, i.e. runs
whose scenario has `tenants:`; a run without tenants has no rows. The downgrade share
counts successful requests that came back with Petit's `x-petit-tenant-downgrade`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from loadtests.metrics import RequestSample, percentile
from loadtests.units import fmt_count, fmt_ms, fmt_pct, fmt_usd


@dataclass(frozen=True)
class TenantLoadRow:
    """One tenant's part of the run."""

    tenant: str
    requests: int
    ok: int
    error_rate: float | None
    errors_by_type: dict[str, int]
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    e2e_p95_ms: float | None
    output_tokens: int
    requests_per_s: float | None
    cost_usd: float
    cost_per_1m_output_tokens_usd: float | None
    downgraded: int
    downgrade_share: float | None  # of the successful requests
    downgrade_reasons: dict[str, int]
    models: dict[str, int]  # the model that answered -> successful requests

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ms(values: list[float], q: float) -> float | None:
    p = percentile(values, q)
    return None if p is None else p * 1000


def tenant_row(tenant: str, samples: Sequence[RequestSample], window_s: float) -> TenantLoadRow:
    """The row of `tenant` over `samples` (already only its own)."""
    ok = [s for s in samples if s.ok]
    ttft = [s.ttft_s for s in ok if s.ttft_s is not None]
    e2e = [s.e2e_s for s in ok if s.e2e_s is not None]
    out_tokens = sum(s.output_tokens or 0 for s in ok)
    priced = [s for s in ok if s.cost_usd is not None]
    cost = sum(s.cost_usd or 0.0 for s in priced)
    priced_tokens = sum(s.output_tokens or 0 for s in priced)
    down = [s for s in ok if s.downgrade]
    return TenantLoadRow(
        tenant=tenant,
        requests=len(samples),
        ok=len(ok),
        error_rate=(len(samples) - len(ok)) / len(samples) if samples else None,
        errors_by_type=dict(Counter(s.error_type or "unknown" for s in samples if not s.ok)),
        ttft_p50_ms=_ms(ttft, 50),
        ttft_p95_ms=_ms(ttft, 95),
        e2e_p95_ms=_ms(e2e, 95),
        output_tokens=out_tokens,
        requests_per_s=len(ok) / window_s if window_s > 0 else None,
        cost_usd=cost,
        cost_per_1m_output_tokens_usd=cost / priced_tokens * 1e6 if priced_tokens else None,
        downgraded=len(down),
        downgrade_share=len(down) / len(ok) if ok else None,
        downgrade_reasons=dict(Counter(s.downgrade or "" for s in down)),
        models=dict(Counter(s.model or "unknown" for s in ok)),
    )


def tenant_load_rows(samples: Sequence[RequestSample], window_s: float) -> list[TenantLoadRow]:
    """A row per tenant that sent a measured request, by name; none when the run had no tenants."""
    by_tenant: dict[str, list[RequestSample]] = {}
    for s in samples:
        if s.tenant is not None:
            by_tenant.setdefault(s.tenant, []).append(s)
    return [tenant_row(name, by_tenant[name], window_s) for name in sorted(by_tenant)]


def model_mix(models: dict[str, int]) -> str:
    """`fake-small 75.00%, fake-large 25.00%`: who answered, most first."""
    total = sum(models.values())
    return ", ".join(f"{m} {fmt_pct(n / total)}" for m, n in sorted(models.items(), key=lambda kv: (-kv[1], kv[0])))


def tenant_summary_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The CLI's lines per tenant (from the summary's `tenants`); none without tenants."""
    return [
        f"tenant {r['tenant']}: requests {fmt_count(r['requests'])}  errors {fmt_pct(r['error_rate'])}  "
        f"TTFT p95 {fmt_ms(r['ttft_p95_ms'])}  spent {fmt_usd(r['cost_usd'])}  "
        f"downgraded {fmt_pct(r['downgrade_share'])}  answered by: {model_mix(r['models']) or 'none'}"
        for r in rows
    ]
