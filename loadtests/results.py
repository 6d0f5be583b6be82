"""A run's outcome as plain data: what the report and the verdict are computed from. Pure module."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, replace

from loadtests.accounting import RequestAccounting, account, saturation_note
from loadtests.metrics import RequestSample, measured, percentile
from loadtests.quality import quality_rows
from loadtests.tables import latency_tables, token_tables
from loadtests.tenant_results import tenant_load_rows
from loadtests.timeline import TimelinePoint

LATE_S = 0.1  # a trace arrival sent more than this after its time counts as late


@dataclass
class ScarcityMark:
    at_s: float  # when it was sent, since the run start
    gpus: int
    ok: bool
    detail: str = ""


@dataclass
class RunResult:
    scenario: str
    target: str
    model: str
    started_at: str  # ISO wall time
    planned_s: float
    warmup_s: float
    elapsed_s: float = 0.0
    partial: bool = False  # interrupted (Ctrl-C) or aborted
    problem: str | None = None  # what went wrong, in words (unreachable target, ...)
    samples: list[RequestSample] = field(default_factory=list)
    scarcity: list[ScarcityMark] = field(default_factory=list)
    users: list[tuple[float, int]] = field(default_factory=list)
    lateness_s: list[float] = field(default_factory=list)
    prompt_method: str = ""
    arrivals_s: list[float] = field(default_factory=list)  # trace replay: every planned arrival time
    generator_cpu_cores: float | None = None  # the load generator's CPU time / run time
    provenance: dict = field(default_factory=dict)  # what reproduces the run (see provenance.py)
    worker_samples: dict[int, int] = field(default_factory=dict)  # --workers: samples per worker index
    timeline: list[TimelinePoint] = field(default_factory=list)  # the fleet polled during the run (timeline.py)

    @property
    def window_s(self) -> float:
        """The measured window (after the warm-up)."""
        return max(self.elapsed_s - self.warmup_s, 0.0)

    def measured(self) -> list[RequestSample]:
        """Finished requests after the warm-up: what the verdict, cards and tables count."""
        return measured(self.samples)

    def accounting(self) -> RequestAccounting:
        late = sum(1 for x in self.lateness_s if x > LATE_S)
        return account(self.samples, len(self.arrivals_s) if self.arrivals_s else None, late)

    def saturation(self) -> str | None:
        """What held the offered load back, in words (see accounting.saturation_note); None if nothing."""
        return saturation_note(self.accounting(), self.measured(), self.generator_cpu_cores)

    def header_dict(self) -> dict:
        """The run without its raw samples and arrival times, plus its accounting and saturation note."""
        d = asdict(replace(self, samples=[], arrivals_s=[]))
        d.pop("samples")
        d.pop("arrivals_s")
        d["accounting"] = self.accounting().to_dict()
        d["saturation"] = self.saturation()
        return d


def errors_by_type(samples: list[RequestSample]) -> Counter:
    return Counter(s.error_type or "unknown" for s in samples if not s.ok)


def summary(samples: list[RequestSample], window_s: float) -> dict:
    """Headline numbers over `samples` (already warm-up filtered)."""
    ok = [s for s in samples if s.ok]
    ms = lambda xs, q: None if not xs else percentile(xs, q) * 1000  # noqa: E731
    ttft = [s.ttft_s for s in ok if s.ttft_s is not None]
    itl = [x for s in ok for x in s.itl_s]
    e2e = [s.e2e_s for s in ok if s.e2e_s is not None]
    tpot = [s.tpot_s for s in ok if s.tpot_s is not None]
    out_tokens = sum(s.output_tokens or 0 for s in ok)
    from loadtests.sla import cost_per_1m_output  # local: sla imports this module's siblings only

    return {
        "requests": len(samples),
        "ok": len(ok),
        "errors": len(samples) - len(ok),
        "error_rate": (len(samples) - len(ok)) / len(samples) if samples else None,
        "requests_per_s": len(ok) / window_s if window_s > 0 else None,
        "output_tokens_per_s": out_tokens / window_s if window_s > 0 else None,
        "ttft_ms": {q: ms(ttft, q) for q in (50, 90, 95, 99)},
        "itl_ms": {q: ms(itl, q) for q in (50, 90, 95, 99)},
        "tpot_ms": {q: ms(tpot, q) for q in (50, 90, 95, 99)},
        "e2e_ms": {q: ms(e2e, q) for q in (50, 90, 95, 99)},
        "output_tokens": out_tokens,
        "cost_usd": sum(s.cost_usd or 0.0 for s in ok),
        "cost_per_1m_output_tokens_usd": cost_per_1m_output(samples),
        "models": dict(Counter(s.model or "unknown" for s in ok)),
        "errors_by_type": dict(errors_by_type(samples)),
        "latency": latency_tables(samples),
        "tokens": token_tables(samples, window_s),
        "quality": [q.to_dict() for q in quality_rows(samples)],
        "tenants": [t.to_dict() for t in tenant_load_rows(samples, window_s)],
    }
