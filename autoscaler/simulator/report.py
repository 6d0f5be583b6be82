"""Outputs of `petit simulate`: a table, results JSON, PNG plots, a Markdown summary."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from autoscaler.simulator.run import SimResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_Column = Literal[
    "slo_attainment",
    "late_share",
    "rejected_share",
    "ttft_p95_s",
    "gpu_hours",
    "cost_per_1m_output_tokens",
    "cost_per_1m_total_tokens",
    "expected_quality",
    "quality_within_slo",
    "upper_bound_gap",
]

COLUMNS: list[tuple[_Column, str, str]] = [
    ("slo_attainment", "TTFT-SLO met", "{:.2%}"),
    ("late_share", "late", "{:.2%}"),
    ("rejected_share", "rejected", "{:.2%}"),
    ("ttft_p95_s", "TTFT p95 s", "{:.2f}"),
    ("gpu_hours", "GPU-h", "{:.2f}"),
    ("cost_per_1m_output_tokens", "$/1M out", "{:.3f}"),
    ("cost_per_1m_total_tokens", "$/1M tok", "{:.4f}"),
    ("expected_quality", "quality", "{:.1f}"),
    ("quality_within_slo", "quality in SLO", "{:.1f}"),
    ("upper_bound_gap", "gap to bound", "{:+.1%}"),
]


def table(results: list[SimResult]) -> str:
    """A Markdown table, one row per policy."""
    head = "| policy | " + " | ".join(c[1] for c in COLUMNS) + " |"
    rows = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for r in results:
        cells = [fmt.format(r.totals[k]) if r.totals.get(k) is not None else "-" for k, _, fmt in COLUMNS]
        rows.append(f"| {r.policy} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def add_gaps(results: list[SimResult], bound: str = "upper_bound") -> None:
    """Set each result's `upper_bound_gap`: its quality within the SLO relative to the bound's
    (-5% is 95% of the bound). Nothing is set when no result is the bound."""
    ub = next((r for r in results if r.policy == bound), None)
    if ub is None or not ub.totals.get("quality_within_slo"):
        return
    for r in results:
        r.totals["upper_bound_gap"] = r.totals["quality_within_slo"] / ub.totals["quality_within_slo"] - 1


def verdict(results: list[SimResult]) -> list[str]:
    """Issue 13's targets for Petit on one scenario, one line each (empty without petit)."""
    by = {r.policy: r.totals for r in results}
    if "petit" not in by:
        return []
    p = by["petit"]
    base = {k: t for k, t in by.items() if k not in ("petit", "upper_bound")}
    best = max(base.items(), key=lambda kv: kv[1]["quality_within_slo"], default=None)
    lines = []
    if best is not None:
        ok = p["quality_within_slo"] >= best[1]["quality_within_slo"] - 1e-9
        lines.append(
            f"- quality within the SLO >= every baseline's: Petit {p['quality_within_slo']:.1f}, best baseline "
            f"{best[0]} {best[1]['quality_within_slo']:.1f} -> {'met' if ok else 'NOT met'}"
        )
    ub = by.get("upper_bound")
    if ub is not None:
        ratio = p["quality_within_slo"] / ub["quality_within_slo"] if ub["quality_within_slo"] else 1.0
        lines.append(
            f"- >= 95% of the upper bound's: {ratio:.1%} of {ub['quality_within_slo']:.1f} -> "
            f"{'met' if ratio >= 0.95 else 'NOT met'}"
        )
        if ub["slo_attainment"] >= 0.99:
            lines.append(
                f"- SLO attainment >= 99% (the bound reaches {ub['slo_attainment']:.2%}): Petit "
                f"{p['slo_attainment']:.2%} -> {'met' if p['slo_attainment'] >= 0.99 else 'NOT met'}"
            )
    return lines


def summary_markdown(name: str, results: list[SimResult]) -> str:
    """Markdown: the table, how runs start and are scored, and Petit against the targets."""
    start = results[0].totals.get("start", "steady") if results else "steady"
    too_long = results[0].totals.get("too_long_share", 0.0) if results else 0.0
    lines = [
        f"# Simulation: {name}",
        "",
        table(results),
        "",
        f"Start: {start} ({_START[start]}). {too_long:.2%} of the requests exceed every context window "
        "(400 from the gateway) and are left out of the SLO and quality figures for every policy; "
        "late, rejected and failed requests count against every policy alike; cost is per 1M output "
        "(and total) tokens of all arriving requests.",
        "",
    ]
    v = verdict(results)
    if v:
        lines += ["Targets (issue 13):", "", *v, ""]
    by = priority_table(results)
    if by:
        lines += ["By tenant priority (movable requests; strong = routed to the highest-quality tier):", "", by, ""]
    return "\n".join(lines)


def priority_table(results: list[SimResult]) -> str:
    """A Markdown table, one row per policy and priority class (empty without tenants)."""
    rows = [
        "| policy | priority | requests | strong share | strong share while GPUs short | TTFT-SLO met |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        for p, t in r.totals.get("by_priority", {}).items():
            cells = [t["strong_share"], t["strong_share_short"], t["slo_attainment"]]
            shown = " | ".join("-" if c is None else f"{c:.1%}" for c in cells)
            rows.append(f"| {r.policy} | {p} | {t['requests']} | {shown} |")
    return "\n".join(rows) if len(rows) > 2 else ""


_START = {
    "steady": "each policy from its own steady state for the first minute's load",
    "cold": "every policy from the models' initial replicas",
}


def write(out: Path, name: str, results: list[SimResult], plots: bool = True) -> list[Path]:
    """Write results.json, summary.md and (matplotlib permitting) PNGs under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "results.json", out / "summary.md"]
    data = {
        "scenario": name,
        "policies": {r.policy: {"totals": r.totals, "control": r.control, "buckets": r.buckets} for r in results},
        "petit_decisions": next(
            (
                [{"t": t, "reason": w, "models": m, "routing": rt} for t, w, m, rt in r.reasons[::12]]
                for r in results
                if r.reasons
            ),
            [],
        ),
    }
    files[0].write_text(json.dumps(data, indent=1))
    files[1].write_text(summary_markdown(name, results))
    if plots:
        files += _plots(out, results)
    return files


def _plots(out: Path, results: list[SimResult]) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    for r in results:
        b, c = r.buckets, r.control
        t_min = [t / 60 for t in b["t"]]
        axes[0, 0].plot(t_min, b["slo_attainment"], label=r.policy)
        axes[0, 1].plot(t_min, b["expected_quality"], label=r.policy)
        axes[1, 0].plot([t / 60 for t in c["t"]], c["held"], label=r.policy)
        axes[1, 1].plot(t_min, b["rejected_share"], label=r.policy)
    if results:
        axes[1, 0].plot([t / 60 for t in results[0].control["t"]], results[0].control["gpus"], "k--", label="GPUs")
    for ax, title in zip(
        axes.flat, ["TTFT-SLO attainment (per minute of arrivals)", "expected quality", "GPUs held", "share rejected"]
    ):
        ax.set_title(title)
        ax.set_xlabel("minute")
        ax.legend(fontsize=8)
    p1 = _save(plt, fig, out / "comparison.png")
    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3.5), squeeze=False)
    for ax, r in zip(axes[0], results):
        for mid, ys in r.control["ready"].items():
            ax.plot([t / 60 for t in r.control["t"]], ys, label=mid)
        ax.set_title(f"{r.policy}: ready replicas")
        ax.set_xlabel("minute")
        ax.legend(fontsize=7)
    p2 = _save(plt, fig, out / "replicas.png")
    return [p1, p2]


def _save(plt: ModuleType, fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
