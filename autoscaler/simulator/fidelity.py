"""The fidelity check: the simulator against a load test of the same trace on the real fleet.

`petit simulate SCENARIO --fidelity REPORT.json` replays the scenario's trace in the simulator,
every request pinned to the model the load test named (`run.model` of its report.json, which
must be a model of the scenario's fleet, not `auto`), on that model's initial replicas, warm,
with the scenario's profile for it (a measured one: `petit profile`), `tick_s` and
`queue_timeout_s` (its policies and GPU events play no part). It then reads the load test's
per-request samples and compares TTFT p50, TTFT p95 (exact percentiles over answered requests)
and SLO attainment (answered within the fleet's TTFT SLO, over every request: failed,
unanswered and late ones count against; warm-up samples are left out), as simulated / measured
ratios, each within +-tolerance (default 20%) to pass.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autoscaler.simulator.capacity import replay_warm
from autoscaler.simulator.engine import OK, Requests
from autoscaler.simulator.scenario import Scenario, ScenarioError
from autoscaler.simulator.traces import Trace
from serving.fleet.schema import FleetConfig

METRICS = ("ttft_p50_s", "ttft_p95_s", "slo_attainment")


@dataclass(frozen=True)
class LatencyStats:
    """What the check compares, from one side (simulated or measured)."""

    requests: int  # every request counted (the SLO attainment's denominator)
    answered: int
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    slo_attainment: float


def fidelity_stats(answered_ttft_s: Sequence[float], requests: int, slo_s: float) -> LatencyStats:
    """Exact percentiles (linear interpolation) of the answered requests' TTFTs; SLO attainment
    = answered within `slo_s` over `requests`."""
    tt = np.asarray(answered_ttft_s, dtype=float)
    p50, p95 = (float(np.percentile(tt, 50)), float(np.percentile(tt, 95))) if len(tt) else (None, None)
    within = int((tt <= slo_s).sum())
    return LatencyStats(requests, len(tt), p50, p95, within / requests if requests else 0.0)


def report_model(report: dict[str, Any]) -> str:
    """The model the load test asked for (`run.model` of report.json)."""
    model = (report.get("run") or {}).get("model")
    if not isinstance(model, str) or not model:
        raise ValueError("the report has no run.model")
    return model


def measured_stats(report: dict[str, Any], slo_s: float, model: str | None = None) -> LatencyStats:
    """The load test's side: its samples after the warm-up (of `model` when given), every one
    counted; answered = ok with a TTFT."""
    samples = [s for s in report.get("samples") or [] if isinstance(s, dict) and not s.get("warmup")]
    if model is not None:
        samples = [s for s in samples if s.get("requested_model") == model]
    ttft = [float(s["ttft_s"]) for s in samples if s.get("ok") and s.get("ttft_s") is not None]
    return fidelity_stats(ttft, len(samples), slo_s)


def simulated_stats(sc: Scenario, fleet: FleetConfig, trace: Trace, model: str) -> tuple[LatencyStats, int]:
    """The simulator's side (see the module docstring); also the number of trace requests left
    out because prompt + output exceed the model's context window (the gateway answers 400)."""
    if model not in fleet.model_ids:
        raise ScenarioError(f"model {model!r} is not in the scenario's fleet ({', '.join(fleet.model_ids)})")
    m = fleet.model(model)
    fits = trace.input_tokens + trace.output_tokens <= m.engine.max_model_len
    req = Requests(
        trace.arrival_s[fits], trace.input_tokens[fits].astype(float), trace.output_tokens[fits].astype(float)
    )
    until = (float(req.arrival[-1]) if len(req.arrival) else 0.0) + 2 * sc.queue_timeout_s
    replay_warm(
        sc.profile(model),
        m.resources.gpus,
        m.replicas.start,
        req,
        sc.tick_s,
        until,
        sc.queue_timeout_s,
        m.max_queued_requests,
    )
    ok = (req.status == OK) & ~np.isnan(req.ttft)
    stats = fidelity_stats(req.ttft[ok].tolist(), len(req.arrival), fleet.slo.ttft_p95_ms / 1000.0)
    return stats, int((~fits).sum())


def compare(simulated: LatencyStats, measured: LatencyStats, tolerance: float = 0.2) -> dict[str, Any]:
    """Simulated / measured per metric, each within 1 +- `tolerance` or not, and the verdict
    (every metric within). A metric missing on either side, or measured 0, fails."""
    ratios: dict[str, float | None] = {}
    within: dict[str, bool] = {}
    for name in METRICS:
        sim, meas = getattr(simulated, name), getattr(measured, name)
        ratio = sim / meas if sim is not None and meas else None
        ratios[name] = ratio
        within[name] = ratio is not None and abs(ratio - 1.0) <= tolerance + 1e-12
    return {
        "tolerance": tolerance,
        "simulated": asdict(simulated),
        "measured": asdict(measured),
        "ratios": ratios,
        "within": within,
        "passed": all(within.values()),
    }


def fidelity_table(result: dict[str, Any]) -> str:
    """Markdown: one row per metric."""
    rows = ["| metric | simulated | measured | sim / measured | within |", "|---|---|---|---|---|"]

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    for name in METRICS:
        r = result["ratios"][name]
        rows.append(
            f"| {name} | {fmt(result['simulated'][name])} | {fmt(result['measured'][name])} | "
            f"{fmt(r)} | {'yes' if result['within'][name] else 'NO'} |"
        )
    return "\n".join(rows)


def run_fidelity(
    sc: Scenario,
    fleet: FleetConfig,
    trace: Trace,
    report_path: Path,
    out: Path,
    tolerance: float = 0.2,
    model: str | None = None,
) -> dict[str, Any]:
    """Simulate, read the report, compare; writes fidelity.json under `out` and returns it.
    Raises ScenarioError (unknown model) and ValueError (unreadable report)."""
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{report_path}: cannot read the load-test report: {err}") from None
    model = model or report_model(report)
    slo_s = fleet.slo.ttft_p95_ms / 1000.0
    sim, too_long = simulated_stats(sc, fleet, trace, model)
    result = {
        "scenario": sc.name,
        "report": str(report_path),
        "model": model,
        "slo_ttft_s": slo_s,
        "profile": sc.profile(model).model_dump(),
        "too_long_left_out": too_long,
        **compare(sim, measured_stats(report, slo_s, model), tolerance),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "fidelity.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result
