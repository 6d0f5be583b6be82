"""Every request accounted for, offered vs achieved rate, and what limited the run. Pure module.

The books balance by construction: every request the generator sent is a
sample (completed, failed, or unfinished: still in flight when the stop grace
ran out), and for trace replay every planned arrival was either sent or not.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from loadtests.metrics import UNFINISHED, RequestSample, percentile


@dataclass(frozen=True)
class RequestAccounting:
    """Counts over the whole run (warm-up included; `warmup_sent` says how many of `sent`)."""

    planned: int | None  # trace arrivals in the replayed window; None for closed-loop shapes
    sent: int
    completed: int
    failed: int
    unfinished: int
    not_sent: int  # planned arrivals never sent (the run ended first)
    late: int  # trace arrivals sent after their time (every pool user was busy)
    warmup_sent: int

    @property
    def balanced(self) -> bool:
        """sent = completed + failed + unfinished, and planned = sent + not sent."""
        ok = self.sent == self.completed + self.failed + self.unfinished
        return ok and (self.planned is None or self.planned == self.sent + self.not_sent)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "balanced": self.balanced}


def account(samples: list[RequestSample], planned: int | None, late: int) -> RequestAccounting:
    """The run's request accounting from its raw samples (one per request sent)."""
    unfinished = sum(1 for s in samples if s.error_type == UNFINISHED)
    completed = sum(1 for s in samples if s.ok)
    return RequestAccounting(
        planned=planned,
        sent=len(samples),
        completed=completed,
        failed=len(samples) - completed - unfinished,
        unfinished=unfinished,
        not_sent=max((planned or 0) - len(samples), 0),
        late=late,
        warmup_sent=sum(1 for s in samples if s.warmup),
    )


def rate_series(
    samples: list[RequestSample], arrivals_s: list[float], elapsed_s: float, width_s: float
) -> tuple[list[float], list[float], list[float]]:
    """(bin starts, offered req/s, achieved req/s) over the whole run.

    Offered: planned arrivals per second by their due time (trace replay), else
    requests sent per second. Achieved: successful completions per second by
    the time they finished.
    """
    n = max(math.ceil(elapsed_s / width_s), 1)
    # the last bin may be shorter than width_s: a rate per second of the time it covers
    spans = [max(min(width_s, elapsed_s - i * width_s), 1e-9) for i in range(n)]
    offered, achieved = [0.0] * n, [0.0] * n
    due = arrivals_s if arrivals_s else [s.start_s for s in samples]
    for t in due:
        if t <= elapsed_s:
            b = min(int(t // width_s), n - 1)
            offered[b] += 1 / spans[b]
    for s in samples:
        if s.ok and s.e2e_s is not None:
            b = min(int((s.start_s + s.e2e_s) // width_s), n - 1)
            achieved[b] += 1 / spans[b]
    return [i * width_s for i in range(n)], offered, achieved


def _ttft_trend_ms(samples: list[RequestSample]) -> tuple[float, float] | None:
    """TTFT p50 of the first and the last third of the successful requests (by send time)."""
    ok = sorted((s for s in samples if s.ok and s.ttft_s is not None), key=lambda s: s.start_s)
    third = len(ok) // 3
    if third < 2:
        return None
    first = percentile([s.ttft_s or 0.0 for s in ok[:third]], 50) or 0.0
    last = percentile([s.ttft_s or 0.0 for s in ok[-third:]], 50) or 0.0
    return first * 1000, last * 1000


CPU_BOUND_CORES = 0.8  # one Locust process saturates near one core


def saturation_note(
    acc: RequestAccounting, samples: list[RequestSample], generator_cpu_cores: float | None
) -> str | None:
    """What held the offered load back, read from the evidence; None when nothing did.

    The evidence: late, unsent or unfinished requests (pressure), the load
    generator's own CPU (a process near one core is the limit), and TTFT over
    the run (rising TTFT means requests queue at the server).
    """
    if not (acc.late or acc.not_sent or acc.unfinished):
        return None
    pressure = ", ".join(
        f"{n:,} {what if n > 1 else one}"
        for n, what, one in (
            (acc.late, "arrivals sent late", "arrival sent late"),
            (acc.not_sent, "arrivals not sent", "arrival not sent"),
            (acc.unfinished, "requests unfinished at the stop", "request unfinished at the stop"),
        )
        if n
    )
    cpu = "unknown" if generator_cpu_cores is None else f"{generator_cpu_cores:.2f}"
    if generator_cpu_cores is not None and generator_cpu_cores >= CPU_BOUND_CORES:
        return (
            f"Load generator limited ({pressure}): it used {cpu} CPU cores, near one process's limit; "
            "run more workers (--workers N) or another host."
        )
    trend = _ttft_trend_ms(samples)
    if trend is not None and trend[1] >= 1.5 * trend[0] + 5:
        return (
            f"Server saturated ({pressure}): requests queued at the server, TTFT p50 went from "
            f"{trend[0]:,.0f} ms to {trend[1]:,.0f} ms over the run, while the load generator used only "
            f"{cpu} CPU cores. More users would only lengthen the server's queue."
        )
    flat = (
        "TTFT's trend is unknown (too few answers)"
        if trend is None
        else (f"TTFT stayed flat ({trend[0]:,.0f} → {trend[1]:,.0f} ms p50)")
    )
    if acc.late or acc.not_sent:
        return (
            f"User pool too small ({pressure}): {flat} and the load generator used {cpu} CPU cores: raise shape.users."
        )
    return f"{pressure}: {flat}, so they were long rather than queued; raise stop_grace_s to let them finish."
