"""`petit simulate --zoo`: every scenario of a folder (autoscaler/examples/zoo by default),
every policy, one table (zoo.json + zoo.md) with Petit against the best baseline and the
hindsight upper bound, and issue 13's targets per scenario.

`short=True` replays the first `SHORT_S` simulated seconds of each scenario with its GPU
events, generated shapes and replica start-up times compressed by the same factor (so a
loss at minute 20 of 60 happens at a third of the short run), the hindsight capacities
measured on shorter runs: the zoo in the unit tests. Short runs exercise every code path
on every scenario; their numbers are not results (the arrivals are the first minutes only).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

from autoscaler.simulator.hindsight import hindsight_for
from autoscaler.simulator.policies import build_policy
from autoscaler.simulator.report import add_gaps
from autoscaler.simulator.run import SimResult, simulate
from autoscaler.simulator.scenario import REPO_ROOT, Scenario, load_sim_scenario
from autoscaler.simulator.traces import Trace
from autoscaler.simulator.workloads import scenario_trace
from serving.fleet.schema import FleetConfig, load_fleet

ZOO_DIR = REPO_ROOT / "autoscaler" / "examples" / "zoo"
SHORT_S = 150.0
BASELINES = ("large_only", "static_mix", "queue_based", "priority_trade", "static_optimum")


class ZooRow(TypedDict):
    """One scenario's line of the zoo table (quality in SLO per servable request)."""

    scenario: str
    start: str
    requests: int
    too_long_share: float
    petit_slo: float
    petit_quality_in_slo: float
    best_baseline: str
    best_baseline_quality_in_slo: float
    best_baseline_slo: float
    bound_quality_in_slo: float
    bound_slo: float
    petit_of_bound: float
    beats_baselines: bool
    within_95pct_of_bound: bool
    slo_target: bool | None
    policies: dict[str, dict[str, float | int | str | None]]


def shorten(sc: Scenario, full_s: float) -> Scenario:
    """The first SHORT_S simulated seconds of `sc`, its events and shapes compressed to fit."""
    if full_s <= SHORT_S:
        return sc
    f = SHORT_S / full_s
    spec = sc.trace
    trace = spec.model_copy(
        update={
            "duration_s": SHORT_S * spec.time_scale,
            "bursts": [b.model_copy(update={"at_min": b.at_min * f, "minutes": b.minutes * f}) for b in spec.bursts],
            "diurnal": spec.diurnal.model_copy(update={"period_min": spec.diurnal.period_min * f})
            if spec.diurnal
            else None,
        }
    )
    events = [e.model_copy(update={"at_min": e.at_min * f}) for e in sc.events]
    profiles = {
        m: sc.profile(m).model_copy(update={"startup_s": max(5.0, sc.profile(m).startup_s * f)}) for m in sc.profiles
    }
    return sc.model_copy(
        update={
            "trace": trace,
            "events": events,
            "profiles": profiles,
            "window_s": min(sc.window_s, 15.0),
            "bucket_s": 15.0,
        }
    )


def load_zoo_scenario(path: Path, data_dir: str | None, short: bool) -> tuple[Scenario, FleetConfig, Trace]:
    sc, fleet_path = load_sim_scenario(path)
    if data_dir:
        sc = sc.model_copy(update={"data_dir": data_dir})
    trace = scenario_trace(sc)
    if short:
        sc = shorten(sc, float(trace.arrival_s[-1]))
        trace = scenario_trace(sc)
    return sc, load_fleet(fleet_path), trace


def run_scenario(
    sc: Scenario, fleet: FleetConfig, trace: Trace, quick: bool, log: Callable[[str], None]
) -> list[SimResult]:
    """Every baseline, the upper bound and Petit on one scenario, with gaps to the bound."""
    hs = hindsight_for(sc, fleet, trace, quick=quick)
    results = []
    for name in (*BASELINES, "upper_bound", "petit"):
        log(f"  {sc.name}: {name}")
        results.append(simulate(sc, fleet, trace, build_policy(name, fleet, sc, hs)))
    add_gaps(results)
    return results


def zoo_row(name: str, results: list[SimResult]) -> ZooRow:
    by = {r.policy: r.totals for r in results}
    p, ub = by["petit"], by["upper_bound"]
    best = max(BASELINES, key=lambda b: by[b]["quality_within_slo"])
    ratio = p["quality_within_slo"] / ub["quality_within_slo"] if ub["quality_within_slo"] else 1.0
    keys = (
        "slo_attainment",
        "late_share",
        "rejected_share",
        "quality_within_slo",
        "expected_quality",
        "gpu_hours",
        "cost_per_1m_output_tokens",
        "cost_per_1m_total_tokens",
        "upper_bound_gap",
    )
    return {
        "scenario": name,
        "start": p.get("start", "steady"),
        "requests": p["requests"],
        "too_long_share": p["too_long_share"],
        "petit_slo": p["slo_attainment"],
        "petit_quality_in_slo": p["quality_within_slo"],
        "best_baseline": best,
        "best_baseline_quality_in_slo": by[best]["quality_within_slo"],
        "best_baseline_slo": by[best]["slo_attainment"],
        "bound_quality_in_slo": ub["quality_within_slo"],
        "bound_slo": ub["slo_attainment"],
        "petit_of_bound": ratio,
        "beats_baselines": p["quality_within_slo"] >= by[best]["quality_within_slo"] - 1e-9,
        "within_95pct_of_bound": ratio >= 0.95,
        "slo_target": p["slo_attainment"] >= 0.99 if ub["slo_attainment"] >= 0.99 else None,
        "policies": {k: {c: t.get(c) for c in keys} for k, t in by.items()},  # type: ignore[misc]
    }


def zoo_markdown(rows: list[ZooRow]) -> str:
    """The one table: Petit vs the best baseline vs the upper bound, and the targets."""
    head = (
        "| scenario | start | requests | too long | Petit SLO | Petit Q in SLO | best baseline (Q, SLO) | "
        "bound (Q, SLO) | Petit / bound | >= baselines | >= 95% bound | SLO >= 99% |"
    )
    out = [head, "|" + "---|" * 12]
    yes = {True: "yes", False: "**no**", None: "n/a"}
    for r in rows:
        out.append(
            f"| {r['scenario']} | {r['start']} | {r['requests']} | {r['too_long_share']:.1%} | {r['petit_slo']:.2%} | "
            f"{r['petit_quality_in_slo']:.1f} | {r['best_baseline']} ({r['best_baseline_quality_in_slo']:.1f}, "
            f"{r['best_baseline_slo']:.1%}) | {r['bound_quality_in_slo']:.1f}, {r['bound_slo']:.2%} | "
            f"{r['petit_of_bound']:.1%} | {yes[r['beats_baselines']]} | {yes[r['within_95pct_of_bound']]} | "
            f"{yes[r['slo_target']]} |"
        )
    return "\n".join(out)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_zoo(zoo: Path, out: Path, data_dir: str | None = None, short: bool = False) -> list[ZooRow]:
    """Run every `*.yaml` scenario under `zoo`; write zoo.json and zoo.md under `out`."""
    rows = []
    for path in sorted(zoo.glob("*.yaml")):
        if path.name.startswith("fleet"):
            continue
        sc, fleet, trace = load_zoo_scenario(path, data_dir, short)
        results = run_scenario(sc, fleet, trace, short, _log)
        rows.append(zoo_row(sc.name, results))
    out.mkdir(parents=True, exist_ok=True)
    (out / "zoo.json").write_text(json.dumps({"short": short, "scenarios": rows}, indent=1) + "\n")
    title = "# Scenario zoo" + (" (short versions)" if short else "")
    (out / "zoo.md").write_text(f"{title}\n\n{zoo_markdown(rows)}\n")
    return rows
