"""The report's fleet and quality charts: scarcity and routing on the run's time axis, accuracy next to cost.

Matplotlib (Agg) figures returned as base64 PNG, drawn from the polled
timeline (timeline.py) and the graded samples (quality.py). No I/O, no Locust.
"""

from __future__ import annotations

import math
from collections import defaultdict

import matplotlib.pyplot as plt

from loadtests.charts import PALETTE, empty_note, png, time_bins, time_marks
from loadtests.metrics import percentile
from loadtests.quality import quality_bins, quality_rows, quality_series
from loadtests.results import RunResult
from loadtests.timeline import budget_series, step_series


def _colours(r: RunResult) -> dict[str, str]:
    """One colour per model name across every row (polled names and answering models)."""
    names: set[str] = {s.model or "unknown" for s in r.samples if s.ok}
    for p in r.timeline:
        names |= set(p.ready) | set(p.shares) | set(p.target_replicas)
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(sorted(names))}


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)


def _end(r: RunResult, xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    """A step line held to the end of the run."""
    return ([*xs, max(r.elapsed_s, 1.0)], [*ys, ys[-1]]) if xs else (xs, ys)


def _budget_row(ax, r: RunResult) -> None:
    ts, budget, unlimited = budget_series(r.timeline)
    unit = next((p.budget_unit for p in r.timeline if p.budget_unit), None) or "GPUs"
    if any(not math.isnan(b) for b in budget):
        ax.step(*_end(r, ts, budget), where="post", color="#dc2626", lw=1.8, label=f"budget ({unit})")
        ax.set_ylim(0, max(b for b in budget if not math.isnan(b)) * 1.3 + 0.5)
    if any(not math.isnan(u) for u in unlimited):
        top = ax.get_ylim()[1] if any(not math.isnan(b) for b in budget) else 1.0
        ax.step(*_end(r, ts, [top * 0.9 * u for u in unlimited]), where="post", color="#dc2626", ls=":", lw=1.5)
        ax.plot([], [], color="#dc2626", ls=":", label="no budget set (unlimited)")
    if not ax.lines:
        ax.text(0.5, 0.5, "budget not polled (no scarcity.admin_url)", ha="center", transform=ax.transAxes)
    ax.set_ylabel(unit)


def _replica_row(ax, r: RunResult, col: dict[str, str]) -> None:
    for name, (ts, ys) in step_series(r.timeline, "ready").items():
        ax.step(*_end(r, ts, ys), where="post", color=col[name], lw=1.8, label=f"{name} ready")
    for name, (ts, ys) in step_series(r.timeline, "target_replicas").items():
        ax.step(*_end(r, ts, ys), where="post", color=col[name], lw=1.0, ls=":", label=f"{name} plan")
    if not ax.lines:
        ax.text(0.5, 0.5, "the target lists no ready replicas", ha="center", transform=ax.transAxes)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("replicas")


def _plan_row(ax, r: RunResult, col: dict[str, str]) -> None:
    shares = step_series(r.timeline, "shares") or step_series(r.timeline, "tier_shares")
    for i, (name, (ts, ys)) in enumerate(shares.items()):
        ax.step(*_end(r, ts, ys), where="post", color=col.get(name, PALETTE[i]), lw=1.8, label=f"{name} share")
    strong = [(p.t_s, p.strong_share) for p in r.timeline if p.strong_share is not None]
    if strong:
        xs, ys = _end(r, [t for t, _ in strong], [float(v) for _, v in strong])
        ax.step(xs, ys, where="post", color="#0f172a", ls="--", lw=1.0, label="strong-tier share")
    for p, q in zip(r.timeline, r.timeline[1:]):
        if p.constrained:
            ax.axvspan(p.t_s, q.t_s, color="#fca5a5", alpha=0.25, lw=0)
    if not ax.lines:
        ax.text(0.5, 0.5, "no routing plan polled", ha="center", transform=ax.transAxes)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("plan share")


def traffic_scope(r: RunResult) -> str | None:
    """The requested model whose answers the traffic row splits: `auto` when the run asked it, else None (all)."""
    return "auto" if any(s.requested_model == "auto" for s in r.samples) else None


def _traffic_row(ax, r: RunResult, col: dict[str, str], w: float, n: int) -> None:
    per: dict[str, list[int]] = defaultdict(lambda: [0] * n)
    scope = traffic_scope(r)
    for s in r.samples:
        if s.ok and scope in (None, s.requested_model):
            per[s.model or "unknown"][min(int(s.start_s // w), n - 1)] += 1
    totals = [sum(v[i] for v in per.values()) for i in range(n)]
    for name in sorted(per):
        ys = [per[name][i] / totals[i] if totals[i] else math.nan for i in range(n)]
        ax.step(*_end(r, [i * w for i in range(n)], ys), where="post", color=col[name], lw=1.8, label=name)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("answered share")


def _latency_row(ax, r: RunResult, w: float, n: int) -> None:
    bins: list[list[float]] = [[] for _ in range(n)]
    for s in r.samples:
        if s.ok and s.ttft_s is not None:
            bins[min(int(s.start_s // w), n - 1)].append(s.ttft_s * 1000)
    xs = [i * w + w / 2 for i in range(n)]
    for q, ls in ((50, "-"), (95, "--")):
        ys = [percentile(b, q) if b else math.nan for b in bins]
        ax.plot(
            xs,
            [math.nan if y is None else y for y in ys],
            color=PALETTE[0],
            ls=ls,
            marker="o",
            ms=2.5,
            label=f"TTFT p{q}",
        )
    ax.set_ylim(bottom=0)
    ax.set_ylabel("TTFT (ms)")


def _cost_row(ax, r: RunResult, w: float, n: int) -> None:
    usd, toks = [0.0] * n, [0] * n
    for s in r.samples:
        if s.ok and s.cost_usd is not None and s.output_tokens:
            b = min(int(s.start_s // w), n - 1)
            usd[b] += s.cost_usd
            toks[b] += s.output_tokens
    ys = [usd[i] / toks[i] * 1e6 if toks[i] else math.nan for i in range(n)]
    ax.plot([i * w + w / 2 for i in range(n)], ys, color=PALETTE[3], marker="o", ms=2.5, label="USD / 1M output tokens")
    if all(math.isnan(y) for y in ys):
        ax.text(0.5, 0.5, "no cost known: give --fleet or --prices", ha="center", transform=ax.transAxes)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("USD / 1M out")


def fleet_timeline(r: RunResult) -> str:
    """Budget, ready replicas, the plan's shares, traffic per model, TTFT and cost: one time axis."""
    w, n = time_bins(r)
    col = _colours(r)
    fig, axes = plt.subplots(6, 1, figsize=(14, 12.5), sharex=True)
    _budget_row(axes[0], r)
    _replica_row(axes[1], r, col)
    _plan_row(axes[2], r, col)
    _traffic_row(axes[3], r, col, w, n)
    _latency_row(axes[4], r, w, n)
    _cost_row(axes[5], r, w, n)
    who = "`auto`" if traffic_scope(r) else "every request"
    titles = [
        "Budget (admin)",
        "Ready replicas (/v1/models; dotted: the plan's)",
        "Routing plan: share of movable traffic per model (red: the budget constrains it)",
        f"Traffic: which model answered {who} (per {w:g} s)",
        "Latency",
        "Cost",
    ]
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=9, loc="left")
        time_marks(ax, r)
        _legend(ax)
        if ax is not axes[-1]:
            ax.set_xlabel("")
    return png(fig)


def quality_chart(r: RunResult) -> str:
    """Accuracy and cost per requested model over time (left), accuracy against cost per scope (right)."""
    w = quality_bins(r.elapsed_s)
    series = quality_series(r.measured(), r.elapsed_s, w)
    fig = plt.figure(figsize=(14, 5.2))
    grid = fig.add_gridspec(2, 4)
    a_acc, a_cost = fig.add_subplot(grid[0, :3]), fig.add_subplot(grid[1, :3])
    a_cost.sharex(a_acc)
    a_trade = fig.add_subplot(grid[:, 3])
    for i, (req, s) in enumerate(series.items()):
        c = PALETTE[i % len(PALETTE)]
        xs = [(t or 0.0) + w / 2 for t in s["t"]]
        a_acc.plot(xs, [math.nan if v is None else v for v in s["accuracy"]], color=c, marker="o", ms=4, label=req)
        a_cost.plot(xs, [math.nan if v is None else v for v in s["usd_per_1k"]], color=c, marker="o", ms=4, label=req)
    a_acc.set_ylim(0, 1.05)
    a_acc.set_ylabel("accuracy")
    a_acc.set_title(f"Accuracy on labelled prompts per requested model (per {w:g} s, after warm-up)")
    a_cost.set_ylim(bottom=0)
    a_cost.set_ylabel("USD / 1k answers")
    for ax in (a_acc, a_cost):
        time_marks(ax, r)
        _legend(ax)
    a_acc.set_xlabel("")
    rows = [q for q in quality_rows(r.measured()) if q.usd_per_1k_answers is not None and q.accuracy is not None]
    for i, q in enumerate(rows):
        mark = "o" if q.answered_by is None else "^"
        a_trade.scatter([q.usd_per_1k_answers], [q.accuracy], s=60, marker=mark, color=PALETTE[i % len(PALETTE)])
        a_trade.annotate(  # staggered: scopes of one model often sit on the same point
            q.scope,
            (q.usd_per_1k_answers, q.accuracy),
            xytext=(4, 4 - 11 * (i % 3)),
            textcoords="offset points",
            fontsize=8,
        )
    if not rows:
        empty_note(a_trade, "no cost known")
    a_trade.set_ylim(0, 1.05)
    a_trade.set_xlim(left=0)
    a_trade.set_xlabel("USD / 1k answers")
    a_trade.set_title("Accuracy against cost")
    fig.tight_layout()
    return png(fig)
