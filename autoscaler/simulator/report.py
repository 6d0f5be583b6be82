"""Outputs of `petit simulate`: a table, results JSON, PNG plots, a Markdown summary."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Literal, cast

from autoscaler.simulator.run import SimResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_Column = Literal[
    "slo_attainment",
    "ttft_p95_s",
    "rejected_share",
    "gpu_hours",
    "cost_per_1m_tokens",
    "expected_quality",
    "quality_within_slo",
]

COLUMNS: list[tuple[_Column, str, str]] = [
    ("slo_attainment", "TTFT-SLO met", "{:.2%}"),
    ("ttft_p95_s", "TTFT p95 s", "{:.2f}"),
    ("rejected_share", "rejected", "{:.2%}"),
    ("gpu_hours", "GPU-h", "{:.2f}"),
    ("cost_per_1m_tokens", "$/1M tok", "{:.3f}"),
    ("expected_quality", "quality", "{:.1f}"),
    ("quality_within_slo", "quality in SLO", "{:.1f}"),
]


def table(results: list[SimResult]) -> str:
    """A Markdown table, one row per policy."""
    head = "| policy | " + " | ".join(c[1] for c in COLUMNS) + " |"
    rows = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for r in results:
        cells = [fmt.format(r.totals[k]) if r.totals.get(k) is not None else "-" for k, _, fmt in COLUMNS]
        rows.append(f"| {r.policy} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def summary_markdown(name: str, results: list[SimResult]) -> str:
    """Markdown: the table plus Petit vs large-only against the targets."""
    lines = [f"# Simulation: {name}", "", table(results), ""]
    by = {r.policy: r.totals for r in results}
    if "petit" in by and "large_only" in by:
        p, lo = by["petit"], by["large_only"]
        # A None here (nothing served) is not handled: the arithmetic raises TypeError, as before.
        saving = (
            1 - cast(float, p["cost_per_1m_tokens"]) / lo["cost_per_1m_tokens"] if lo["cost_per_1m_tokens"] else 0.0
        )
        dq = cast(float, lo["expected_quality"]) - cast(float, p["expected_quality"])
        lines += [
            "Targets (Petit vs large-only static):",
            "",
            f"- TTFT SLO met by >= 99%: Petit {p['slo_attainment']:.2%}, large-only "
            f"{lo['slo_attainment']:.2%} -> {'met' if p['slo_attainment'] >= 0.99 else 'NOT met'}",
            f"- cost per 1M tokens >= 50% below: {saving:.0%} -> {'met' if saving >= 0.5 else 'NOT met'}",
            f"- quality within 3 points: {dq:+.1f} points below -> {'met' if dq <= 3 else 'NOT met'}",
            f"- quality delivered within the SLO (answers outside it count 0): Petit "
            f"{p['quality_within_slo']:.1f}, large-only {lo['quality_within_slo']:.1f}",
            "",
        ]
    return "\n".join(lines)


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
