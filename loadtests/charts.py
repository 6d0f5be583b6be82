"""The report's charts: matplotlib (Agg) figures returned as base64 PNG. No Locust."""

from __future__ import annotations

import base64
import io
from collections import Counter, defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from loadtests.accounting import rate_series  # noqa: E402
from loadtests.metrics import RequestSample  # noqa: E402
from loadtests.results import RunResult  # noqa: E402

PALETTE = ["#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#64748b"]
plt.rcParams.update(
    {
        "font.size": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "figure.dpi": 100,
    }
)


def png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=110)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _bin_width(r: RunResult) -> float:
    return max(1.0, round(max(r.elapsed_s, 1.0) / 60))


def _time_axis(ax, r: RunResult) -> None:
    """The one shared time axis: 0 to the full run length, on every time chart."""
    ax.set_xlim(0, max(r.elapsed_s, 1.0))
    ax.set_xlabel("seconds since start")


def time_marks(ax, r: RunResult) -> None:
    """Warm-up shaded, scarcity events as labelled vertical lines; the shared time axis."""
    if r.warmup_s > 0:
        ax.axvspan(0, r.warmup_s, color="#94a3b8", alpha=0.15, lw=0, label="warm-up")
    for m in r.scarcity:
        ax.axvline(m.at_s, color="#dc2626" if m.ok else "#7f1d1d", ls="--", lw=1.2)
        ax.annotate(
            f"budget {m.gpus}" + ("" if m.ok else " (failed)"),
            (m.at_s, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            color="#dc2626",
            fontsize=8,
        )
    _time_axis(ax, r)


def empty_note(ax, text: str = "no successful request") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=12, color="#64748b")
    ax.set_xticks([])
    ax.set_yticks([])


def _cdf(ax, values_ms: list[float], title: str) -> None:
    ax.set_title(title)
    if not values_ms:
        empty_note(ax)
        return
    xs = sorted(values_ms)
    ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], color=PALETTE[0], lw=1.8, label="CDF")
    ax.set_xlabel("ms")
    ax.set_xlim(left=0)
    ax.set_ylim(0, 1.02)
    for q, ls in ((0.5, ":"), (0.95, "--"), (0.99, "-.")):
        ax.axhline(q, color="#64748b", ls=ls, lw=0.8, label=f"p{q * 100:g}")
    ax.legend(loc="lower right", frameon=False, fontsize=8)


def latency_cdfs(samples: list[RequestSample]) -> str:
    ok = [s for s in samples if s.ok]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    _cdf(axes[0], [s.ttft_s * 1000 for s in ok if s.ttft_s is not None], "TTFT")
    _cdf(axes[1], [x * 1000 for s in ok for x in s.itl_s], "ITL")
    _cdf(axes[2], [s.tpot_s * 1000 for s in ok if s.tpot_s is not None], "TPOT")
    _cdf(axes[3], [s.e2e_s * 1000 for s in ok if s.e2e_s is not None], "End-to-end")
    axes[0].set_ylabel("share of requests (ITL: of tokens)")
    return png(fig)


def latency_over_time(r: RunResult) -> str:
    ok = [s for s in r.samples if s.ok]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(14, 5.2), sharex=True)
    a1.scatter(
        [s.start_s for s in ok if s.ttft_s is not None],
        [s.ttft_s * 1000 for s in ok if s.ttft_s is not None],
        s=12,
        alpha=0.6,
        color=PALETTE[0],
        label="TTFT (by send time)",
    )
    a1.set_ylabel("TTFT (ms)")
    a1.set_title("TTFT per request and ITL per token; grey = warm-up, red = budget change")
    pts = [(s.start_s + (s.ttft_s or 0) + sum(s.itl_s[: i + 1]), x * 1000) for s in ok for i, x in enumerate(s.itl_s)]
    if pts:
        a2.scatter([p[0] for p in pts], [p[1] for p in pts], s=5, alpha=0.35, color=PALETTE[1], label="ITL")
    a2.set_ylabel("ITL (ms)")
    for ax in (a1, a2):
        ax.set_ylim(bottom=0)
        time_marks(ax, r)
        ax.legend(loc="upper left", frameon=False, fontsize=8)
    return png(fig)


def time_bins(r: RunResult) -> tuple[float, int]:
    w = _bin_width(r)
    return w, int(max(r.elapsed_s, 1.0) // w) + 1


def offered_vs_achieved(r: RunResult) -> str:
    """Offered (arrivals due, or requests sent) vs achieved (successful completions) req/s, and in flight."""
    w, _ = time_bins(r)
    xs, offered, achieved = rate_series(r.samples, r.arrivals_s, r.elapsed_s, w)
    xs = [*xs, max(r.elapsed_s, 1.0)]  # the last step reaches the end of the run
    fig, ax = plt.subplots(figsize=(14, 3.0))
    label = "offered (trace arrivals due)" if r.arrivals_s else "offered (requests sent)"
    ax.step(xs, [*offered, offered[-1]], where="post", color=PALETTE[1], lw=1.8, label=label)
    ax.step(
        xs, [*achieved, achieved[-1]], where="post", color=PALETTE[0], lw=1.8, label="achieved (successful completions)"
    )
    ax.set_ylabel("requests/s")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Offered vs achieved rate (per {w:g} s)")
    time_marks(ax, r)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return png(fig)


def throughput(r: RunResult) -> str:
    """Three stacked rows on one time axis: users, completed req/s, tokens/s (each zero-based)."""
    w, n = time_bins(r)
    done, out_toks, in_toks = [0] * n, [0] * n, [0] * n
    for s in r.samples:
        if s.ok and s.e2e_s is not None:
            b = min(int((s.start_s + s.e2e_s) // w), n - 1)
            done[b] += 1
            out_toks[b] += s.output_tokens or 0
            in_toks[b] += s.prompt_tokens or 0
    xs = [i * w for i in range(n)]
    fig, (a0, a1, a2) = plt.subplots(3, 1, figsize=(14, 6.4), sharex=True)
    if r.users:
        a0.step([u[0] for u in r.users], [u[1] for u in r.users], where="post", color="#64748b", lw=1.4, label="users")
    a0.set_ylabel("users")
    a1.bar(xs, [d / w for d in done], width=w * 0.9, align="edge", color=PALETTE[0], alpha=0.7, label="completed req/s")
    a1.set_ylabel("requests/s")
    a2.plot([x + w / 2 for x in xs], [t / w for t in out_toks], color=PALETTE[2], lw=1.8, label="output tokens/s")
    a2.plot([x + w / 2 for x in xs], [t / w for t in in_toks], color=PALETTE[3], lw=1.2, label="input tokens/s")
    a2.set_ylabel("tokens/s")
    for ax in (a0, a1, a2):
        ax.set_ylim(bottom=0)
        time_marks(ax, r)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    a0.set_title(f"Users, completed requests and tokens per second (per {w:g} s)")
    return png(fig)


def model_share(r: RunResult) -> str:
    w, n = time_bins(r)
    per: dict[str, list[int]] = defaultdict(lambda: [0] * n)
    for s in r.samples:
        if s.ok:
            per[s.model or "unknown"][min(int(s.start_s // w), n - 1)] += 1
    fig, ax = plt.subplots(figsize=(14, 3.0))
    if per:
        totals = [sum(v[i] for v in per.values()) or 1 for i in range(n)]
        names = sorted(per)
        ax.stackplot(  # one extra point so the last bin reaches the end of the run
            [*(i * w for i in range(n)), max(r.elapsed_s, 1.0)],
            *[[*(per[m][i] / totals[i] for i in range(n)), per[m][n - 1] / totals[n - 1]] for m in names],
            labels=names,
            colors=PALETTE[: len(names)],
            alpha=0.85,
            step="post",
        )
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of requests")
    ax.set_title("Which model answered (by send time)")
    time_marks(ax, r)
    return png(fig)


def _hbar(ax, names: list[str], values: list[float], color, fmt: str) -> None:
    """Horizontal bars with their values written on them."""
    bars = ax.barh(names, values, color=color)
    ax.bar_label(bars, labels=[fmt.format(v) for v in values], padding=3, fontsize=9)
    ax.set_xlim(0, max(values or [1]) * 1.25 or 1)


def cost(r: RunResult) -> str:
    w, n = time_bins(r)
    usd, toks = [0.0] * n, [0] * n
    by_model: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for s in r.samples:
        if s.ok and s.cost_usd is not None and s.output_tokens:
            b = min(int(s.start_s // w), n - 1)
            usd[b] += s.cost_usd
            toks[b] += s.output_tokens
            by_model[s.model or "unknown"][0] += s.cost_usd
            by_model[s.model or "unknown"][1] += s.output_tokens
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(14, 3.0), gridspec_kw={"width_ratios": [3, 1]})
    xs = [i * w for i in range(n) if toks[i]]
    a1.plot(xs, [usd[i] / toks[i] * 1e6 for i in range(n) if toks[i]], color=PALETTE[3], marker="o", ms=3)
    a1.set_ylabel("USD per 1M output tokens")
    a1.set_ylim(bottom=0)
    a1.set_title("Cost per 1M output tokens over time")
    time_marks(a1, r)
    if not xs:
        a1.text(0.5, 0.5, "no cost known: give --fleet or --prices", ha="center", transform=a1.transAxes, fontsize=12)
    names = sorted(by_model)
    if names:
        _hbar(a2, names, [by_model[m][0] / by_model[m][1] * 1e6 for m in names], PALETTE[: len(names)], "{:.4g}")
    else:
        empty_note(a2, "no cost known")
    a2.set_title("by model")
    a2.set_xlabel("USD / 1M output tokens")
    return png(fig)


def errors(r: RunResult) -> str | None:
    bad = [s for s in r.measured() if not s.ok]
    if not bad:
        return None
    w, n = time_bins(r)
    kinds = Counter(s.error_type or "unknown" for s in bad)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(14, 3.0), gridspec_kw={"width_ratios": [1, 3]})
    names = [k for k, _ in kinds.most_common()]
    _hbar(a1, names, [float(kinds[k]) for k in names], PALETTE[4], "{:,.0f}")
    a1.set_title("errors by type (after warm-up)")
    for j, k in enumerate(names[:6]):
        counts = [0] * n
        for s in bad:
            if (s.error_type or "unknown") == k:
                counts[min(int(s.start_s // w), n - 1)] += 1
        a2.step([i * w for i in range(n)], counts, where="post", label=k, color=PALETTE[(j + 4) % len(PALETTE)])
    a2.set_title(f"errors per {w:g} s")
    a2.set_ylim(bottom=0)
    time_marks(a2, r)
    a2.legend(frameon=False)
    return png(fig)
