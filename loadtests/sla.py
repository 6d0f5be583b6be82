"""The SLA file and the verdict: does a run meet latency, cost and quality SLAs?

An SLA file maps a scope to its limits. A scope is a requested model (`auto`,
`smollm2-135m`, ...) or `all` (every request)::

    slas:
      auto:
        ttft_ms: {p50: 500, p95: 2000, p99: 4000}
        itl_ms: {p95: 200}
        e2e_ms: {p99: 20000}
        max_error_rate: 0.01
        min_requests_per_s: 1.0
        min_output_tokens_per_s: 50
        max_cost_per_1m_output_tokens_usd: 0.50
        quality:
          min_tier_share: {tier: large, share: 0.2}   # >= 20% answered by `large` or better
          min_accuracy: 0.6                           # labelled prompt files only
    tenants:                     # optional: per tenant of the scenario (its requests, whatever the model)
      beta:
        ttft_ms: {p95: 2000}     # every key of a scope above, plus:
        downgrade_share: {min: 0.9}   # share of its successful requests with x-petit-tenant-downgrade
        max_cost_usd: 0.05            # its spend in the measured window

Verdicts use exact percentiles over the raw samples (never Locust's buckets),
and only samples after the warm-up. Pure module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loadtests.config_files import LoadTestInputError
from loadtests.metrics import RequestSample, percentile
from loadtests.pricing import PriceTable, tier_rank
from loadtests.units import fmt_value

ALL = "all"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Percentiles(_Strict):
    p50: float | None = Field(None, gt=0)
    p95: float | None = Field(None, gt=0)
    p99: float | None = Field(None, gt=0)


class ITLLimits(_Strict):
    p95: float | None = Field(None, gt=0)


class E2ELimits(_Strict):
    p99: float | None = Field(None, gt=0)


class TierShare(_Strict):
    tier: Literal["small", "medium", "large"]
    share: float = Field(ge=0, le=1, description="Minimum share of successful requests answered by `tier` or better.")


class QualitySLA(_Strict):
    min_tier_share: TierShare | None = None
    min_accuracy: float | None = Field(None, ge=0, le=1, description="Labelled prompt files only.")


class ScopeSLA(_Strict):
    ttft_ms: Percentiles = Percentiles()
    itl_ms: ITLLimits = ITLLimits()
    e2e_ms: E2ELimits = E2ELimits()
    max_error_rate: float | None = Field(None, ge=0, le=1)
    min_requests_per_s: float | None = Field(None, ge=0, description="Successful requests/s after warm-up.")
    min_output_tokens_per_s: float | None = Field(None, ge=0)
    max_cost_per_1m_output_tokens_usd: float | None = Field(None, ge=0)
    quality: QualitySLA = QualitySLA()


class ShareLimits(_Strict):
    min: float | None = Field(None, ge=0, le=1)
    max: float | None = Field(None, ge=0, le=1)


class TenantSLA(ScopeSLA):
    """A tenant's limits: a scope's, plus its downgrade share and its spend."""

    downgrade_share: ShareLimits = Field(
        ShareLimits(), description="Share of the tenant's successful requests Petit downgraded (budget, soft limit)."
    )
    max_cost_usd: float | None = Field(None, ge=0, description="The tenant's spend over the measured window.")


TENANT_SCOPE = "tenant:"  # verdict lines of a tenant are scoped `tenant:NAME`


class SLASpec(_Strict):
    slas: dict[str, ScopeSLA] = Field(min_length=1, description="Scope (requested model or `all`) -> limits.")
    tenants: dict[str, TenantSLA] = Field(
        default_factory=dict, description="Tenant (a name in the scenario's `tenants`) -> limits."
    )


def check_tenant_scopes(spec: SLASpec, scenario_tenants: list[str], where: str) -> None:
    """Raises LoadTestInputError when the SLA names a tenant the scenario does not send."""
    unknown = sorted(set(spec.tenants) - set(scenario_tenants))
    if unknown:
        have = ", ".join(scenario_tenants) or "none"
        raise LoadTestInputError(f"{where}: tenants {unknown} are not in the scenario's tenants ({have})")


@dataclass(frozen=True)
class VerdictLine:
    scope: str
    name: str  # e.g. "TTFT p95"
    limit: float
    measured: float | None
    unit: str
    op: str  # "<=" or ">="
    passed: bool
    note: str = ""

    def text(self) -> str:
        got, limit = fmt_value(self.measured, self.unit), fmt_value(self.limit, self.unit)
        mark = "PASS" if self.passed else "FAIL"
        note = f"  ({self.note})" if self.note else ""
        return f"{mark}  [{self.scope}] {self.name}: {got} (limit {self.op} {limit}){note}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def in_scope(samples: list[RequestSample], scope: str) -> list[RequestSample]:
    return list(samples) if scope == ALL else [s for s in samples if s.requested_model == scope]


def _line(scope: str, name: str, limit: float, got: float | None, unit: str, op: str, note: str = "") -> VerdictLine:
    if got is None:
        return VerdictLine(scope, name, limit, None, unit, op, False, note or "no data")
    ok = got <= limit if op == "<=" else got >= limit
    return VerdictLine(scope, name, limit, got, unit, op, ok, note)


def _latency_lines(scope: str, sla: ScopeSLA, ok: list[RequestSample]) -> list[VerdictLine]:
    ttft = [s.ttft_s * 1000 for s in ok if s.ttft_s is not None]
    itl = [x * 1000 for s in ok for x in s.itl_s]
    e2e = [s.e2e_s * 1000 for s in ok if s.e2e_s is not None]
    out = []
    for q in ("p50", "p95", "p99"):
        limit = getattr(sla.ttft_ms, q)
        if limit is not None:
            out.append(_line(scope, f"TTFT {q}", limit, percentile(ttft, float(q[1:])), "ms", "<="))
    if sla.itl_ms.p95 is not None:
        out.append(_line(scope, "ITL p95", sla.itl_ms.p95, percentile(itl, 95), "ms", "<="))
    if sla.e2e_ms.p99 is not None:
        out.append(_line(scope, "E2E p99", sla.e2e_ms.p99, percentile(e2e, 99), "ms", "<="))
    return out


def cost_per_1m_output(samples: list[RequestSample]) -> float | None:
    """USD per 1M generated tokens over the successful samples that have a cost."""
    priced = [s for s in samples if s.ok and s.cost_usd is not None and s.output_tokens]
    tokens = sum(s.output_tokens or 0 for s in priced)
    return sum(s.cost_usd or 0.0 for s in priced) / tokens * 1e6 if tokens else None


def tier_share(samples: list[RequestSample], tier: str, tier_of: Callable[[str | None], str | None]) -> float | None:
    """Share of successful samples answered by a model of `tier` or better; None without samples."""
    ok = [s for s in samples if s.ok]
    if not ok or all(tier_of(s.model) is None for s in ok):
        return None  # no sample, or no tier information at all
    need = tier_rank(tier)
    good = sum(1 for s in ok if (t := tier_of(s.model)) is not None and tier_rank(t) >= need)
    return good / len(ok)


def accuracy(samples: list[RequestSample]) -> float | None:
    labelled = [s for s in samples if s.correct is not None]
    return sum(1 for s in labelled if s.correct) / len(labelled) if labelled else None


def _rate_lines(scope: str, sla: ScopeSLA, samples: list[RequestSample], window_s: float) -> list[VerdictLine]:
    ok = [s for s in samples if s.ok]
    out = []
    if sla.max_error_rate is not None:
        rate = (len(samples) - len(ok)) / len(samples) if samples else None
        out.append(_line(scope, "error rate", sla.max_error_rate, rate, "share", "<="))
    per_s = window_s if window_s > 0 else None
    if sla.min_requests_per_s is not None:
        got = len(ok) / per_s if per_s else None
        out.append(_line(scope, "throughput", sla.min_requests_per_s, got, "req/s", ">="))
    if sla.min_output_tokens_per_s is not None:
        got = sum(s.output_tokens or 0 for s in ok) / per_s if per_s else None
        out.append(_line(scope, "output throughput", sla.min_output_tokens_per_s, got, "tok/s", ">="))
    return out


def _cost_quality_lines(
    scope: str, sla: ScopeSLA, samples: list[RequestSample], prices: PriceTable
) -> list[VerdictLine]:
    out = []
    if sla.max_cost_per_1m_output_tokens_usd is not None:
        out.append(
            _line(
                scope,
                "cost per 1M output tokens",
                sla.max_cost_per_1m_output_tokens_usd,
                cost_per_1m_output(samples),
                "USD",
                "<=",
                "",
            )
        )
    q = sla.quality
    if q.min_tier_share is not None:
        got = tier_share(samples, q.min_tier_share.tier, prices.tier)
        note = "" if got is not None else "no tier known: give --fleet or a price table with tiers"
        out.append(
            _line(
                scope, f"share answered by {q.min_tier_share.tier}+", q.min_tier_share.share, got, "share", ">=", note
            )
        )
    if q.min_accuracy is not None:
        out.append(
            _line(
                scope,
                "accuracy",
                q.min_accuracy,
                accuracy(samples),
                "share",
                ">=",
                "" if accuracy(samples) is not None else "no labelled prompts answered",
            )
        )
    return out


def downgrade_share(samples: list[RequestSample]) -> float | None:
    """Share of the successful samples Petit downgraded (x-petit-tenant-downgrade); None without one."""
    ok = [s for s in samples if s.ok]
    return sum(1 for s in ok if s.downgrade) / len(ok) if ok else None


def _tenant_lines(scope: str, sla: TenantSLA, samples: list[RequestSample]) -> list[VerdictLine]:
    out = []
    share = downgrade_share(samples)
    if sla.downgrade_share.min is not None:
        out.append(_line(scope, "downgrade share", sla.downgrade_share.min, share, "share", ">="))
    if sla.downgrade_share.max is not None:
        out.append(_line(scope, "downgrade share", sla.downgrade_share.max, share, "share", "<="))
    if sla.max_cost_usd is not None:
        spent = sum(s.cost_usd or 0.0 for s in samples if s.ok)
        out.append(_line(scope, "spend", sla.max_cost_usd, spent, "USD", "<="))
    return out


def _scope_lines(
    scope: str, sla: ScopeSLA, scoped: list[RequestSample], window_s: float, prices: PriceTable
) -> list[VerdictLine]:
    if not scoped:
        return [VerdictLine(scope, "requests", 1, 0, "requests", ">=", False, "no request in this scope")]
    ok = [s for s in scoped if s.ok]
    lines = _latency_lines(scope, sla, ok) + _rate_lines(scope, sla, scoped, window_s)
    lines += _cost_quality_lines(scope, sla, scoped, prices)
    if isinstance(sla, TenantSLA):
        lines += _tenant_lines(scope, sla, scoped)
    return lines


def evaluate(spec: SLASpec, samples: list[RequestSample], window_s: float, prices: PriceTable) -> list[VerdictLine]:
    """Every SLA line with its measured value. `samples` must already exclude warm-up."""
    lines: list[VerdictLine] = []
    for scope, sla in spec.slas.items():
        lines += _scope_lines(scope, sla, in_scope(samples, scope), window_s, prices)
    for tenant, tenant_sla in spec.tenants.items():
        scoped = [s for s in samples if s.tenant == tenant]
        lines += _scope_lines(TENANT_SCOPE + tenant, tenant_sla, scoped, window_s, prices)
    return lines
