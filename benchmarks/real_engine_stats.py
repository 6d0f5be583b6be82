"""The pure parts of benchmarks/real_engine.py: the run order, the seeds, the summary and its verdicts.

No I/O here; tests/unit/test_real_bench.py checks each function on known values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmarks.gateway_stats import spread

SIDES = ("bare", "petit")
# Issue 14, item 5: Petit against bare vLLM at every level (medians over pairs).
TARGETS = {"throughput_ratio_min": 0.98, "ttft_p50_diff_pct_max": 2.0}
# Prompts per level by default, sized for ~15 minutes in all on 2 cores with SmolLM2-135M (~2.6 s per
# request alone, ~3 s per wave of 8, ~5 s per wave of 32): ~15-30 s of load per level, whole waves so
# no level ends on a ragged tail.
DEFAULT_PROMPTS = {1: 10, 8: 40, 32: 96}
SEED_BASE = 10_000
SLOTS_PER_RUN = 100  # seeds of one side's run: slot 0 its warm-up, slot i its i-th level


@dataclass(frozen=True)
class Slot:
    """One side's turn: pair `pair` (1-based), `side` bare or petit, `position` in the whole run (1-based)."""

    pair: int
    side: str
    position: int


def schedule(pairs: int, alternate: bool = True) -> list[Slot]:
    """The order the sides run in: pair by pair, each pair's two sides back to back.

    Bare goes first in odd pairs; with `alternate`, Petit goes first in even pairs (bare, Petit,
    Petit, bare, bare, Petit, ...), so a drift over the run or an after-effect of the previous
    server's stop falls on both sides alike instead of always on the second one.
    """
    if pairs < 1:
        raise ValueError("pairs must be at least 1")
    out: list[Slot] = []
    for pair in range(1, pairs + 1):
        order = SIDES if not alternate or pair % 2 == 1 else tuple(reversed(SIDES))
        out += [Slot(pair, side, len(out) + i + 1) for i, side in enumerate(order)]
    return out


def seed_for(pair: int, side: str, slot: int, base: int = SEED_BASE) -> int:
    """The random dataset's seed for one client run: distinct for every pair, side and slot.

    `slot` 0 is the side's warm-up, `slot` i its i-th level. Distinct seeds give distinct prompts,
    so neither the prefix cache of one server nor a later level of the same server sees a prompt twice.
    """
    if side not in SIDES:
        raise ValueError(f"unknown side {side!r}")
    if not 0 <= slot < SLOTS_PER_RUN:
        raise ValueError(f"slot must be in [0, {SLOTS_PER_RUN})")
    return base + ((pair - 1) * len(SIDES) + SIDES.index(side)) * SLOTS_PER_RUN + slot


def default_prompts(concurrency: int) -> int:
    """Prompts of one level when not given: DEFAULT_PROMPTS, else three waves (at least 10)."""
    return DEFAULT_PROMPTS.get(concurrency, max(10, 3 * concurrency))


def pct_diff(petit: float, bare: float) -> float | None:
    """Petit's difference to bare in % of bare; None when bare is 0."""
    return 100.0 * (petit - bare) / bare if bare else None


def _level(run: Mapping, concurrency: int) -> dict | None:
    return next((lv for lv in run["levels"] if lv["concurrency"] == concurrency), None)


def complete_pairs(runs: Sequence[Mapping]) -> list[tuple[Mapping, Mapping]]:
    """(bare run, Petit run) of each pair that has both, in pair order."""
    by_pair: dict[int, dict[str, Mapping]] = {}
    for r in runs:
        by_pair.setdefault(r["pair"], {})[r["side"]] = r
    return [(sides["bare"], sides["petit"]) for _, sides in sorted(by_pair.items()) if len(sides) == len(SIDES)]


def summarise_level(pairs: Sequence[tuple[Mapping, Mapping]], targets: Mapping[str, float] = TARGETS) -> dict:
    """One level over pairs: each figure per pair, its median [min-max], and the verdict.

    `pairs` holds (bare, Petit) figures of one level (`vllm_bench_client.client_figures`).
    Ratio and differences are taken within each pair (the two ran back to back), then summarised.
    PASS needs the median throughput ratio >= `throughput_ratio_min`, the median TTFT p50
    difference within +-`ttft_p50_diff_pct_max` % and no failed request on either side.
    """
    ratios = [
        p["output_tokens_per_s"] / b["output_tokens_per_s"] if b["output_tokens_per_s"] else None for b, p in pairs
    ]
    ttft50 = [pct_diff(p["ttft_p50_ms"], b["ttft_p50_ms"]) for b, p in pairs]
    ttft99 = [pct_diff(p["ttft_p99_ms"], b["ttft_p99_ms"]) for b, p in pairs]
    out = {
        "pairs": len(pairs),
        "throughput_ratio": spread(ratios),
        "ttft_p50_diff_pct": spread(ttft50),
        "ttft_p99_diff_pct": spread(ttft99),
        "throughput_ratio_per_pair": ratios,
        "ttft_p50_diff_pct_per_pair": ttft50,
        "failed": {"bare": sum(b["failed"] for b, _ in pairs), "petit": sum(p["failed"] for _, p in pairs)},
    }
    for side, i in (("bare", 0), ("petit", 1)):
        out[side] = {
            "output_tokens_per_s": spread([pair[i]["output_tokens_per_s"] for pair in pairs]),
            "ttft_p50_ms": spread([pair[i]["ttft_p50_ms"] for pair in pairs]),
            "ttft_p99_ms": spread([pair[i]["ttft_p99_ms"] for pair in pairs]),
        }
    ratio, ttft = out["throughput_ratio"], out["ttft_p50_diff_pct"]
    checks = {
        "throughput_ratio": ratio is not None and ratio["median"] >= targets["throughput_ratio_min"],
        "ttft_p50": ttft is not None and abs(ttft["median"]) <= targets["ttft_p50_diff_pct_max"],
        "no_failures": out["failed"]["bare"] == 0 and out["failed"]["petit"] == 0,
    }
    out["checks"] = checks
    out["verdict"] = "PASS" if pairs and all(checks.values()) else "MISS"
    return out


def summarise(runs: Sequence[Mapping], levels: Sequence[int], targets: Mapping[str, float] = TARGETS) -> dict:
    """Every level of the complete pairs among `runs` (`{pair, side, levels: [{concurrency, ...}]}`).

    A level some run lacks is left out of that pair. The overall verdict is PASS only when every
    level passes.
    """
    pairs = complete_pairs(runs)
    out_levels = []
    for c in levels:
        figures = [(b, p) for b, p in ((_level(br, c), _level(pr, c)) for br, pr in pairs) if b and p]
        out_levels.append({"concurrency": c, **summarise_level(figures, targets)})
    verdict = "PASS" if out_levels and all(lv["verdict"] == "PASS" for lv in out_levels) else "MISS"
    return {"targets": dict(targets), "pairs": len(pairs), "levels": out_levels, "verdict": verdict}


def _med(s: Mapping | None, fmt: str) -> str:
    return "-" if s is None else format(s["median"], fmt)


def _range(s: Mapping | None, fmt: str) -> str:
    return "-" if s is None else f"[{format(s['min'], fmt)} - {format(s['max'], fmt)}]"


def format_table(summary: Mapping) -> str:
    """The summary as a plain-text table: medians over pairs, [min - max] for Petit's ratio and difference."""
    t = summary["targets"]
    lines = [
        f"Real engine, Petit vs bare vLLM: medians over {summary['pairs']} pair(s), [min - max] over pairs. "
        f"Targets: ratio >= {t['throughput_ratio_min']}, TTFT p50 within +-{t['ttft_p50_diff_pct_max']}%; failed: bare/petit.",
        f"{'conc':>4} {'bare tok/s':>10} {'petit tok/s':>11} {'ratio':>6} {'ratio range':>17} "
        f"{'TTFT p50 bare ms':>16} {'petit ms':>8} {'diff %':>7} {'diff % range':>17} {'p99 diff %':>10} {'failed':>7}  verdict",
    ]
    for lv in summary["levels"]:
        failed = f"{lv['failed']['bare']}/{lv['failed']['petit']}"
        lines.append(
            f"{lv['concurrency']:4d} {_med(lv['bare']['output_tokens_per_s'], '.1f'):>10} "
            f"{_med(lv['petit']['output_tokens_per_s'], '.1f'):>11} {_med(lv['throughput_ratio'], '.3f'):>6} "
            f"{_range(lv['throughput_ratio'], '.3f'):>17} {_med(lv['bare']['ttft_p50_ms'], '.1f'):>16} "
            f"{_med(lv['petit']['ttft_p50_ms'], '.1f'):>8} {_med(lv['ttft_p50_diff_pct'], '+.1f'):>7} "
            f"{_range(lv['ttft_p50_diff_pct'], '+.1f'):>17} {_med(lv['ttft_p99_diff_pct'], '+.1f'):>10} "
            f"{failed:>7}  {lv['verdict']}"
        )
    lines.append(f"overall: {summary['verdict']}")
    return "\n".join(lines)
