"""Scarcity by priority in the simulator: a GPU cut moves low priority's auto traffic to the small
tier first while high keeps the large tier longest (synthetic trace; margins, not recorded results)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from autoscaler.cli import main
from autoscaler.simulator.cli import load_run
from autoscaler.simulator.policies import build_policy
from autoscaler.simulator.run import SimResult, simulate
from autoscaler.simulator.scenario import ScenarioError, load_sim_scenario

ROOT = Path(__file__).resolve().parents[3]
TENANTS = [
    {"name": "batch", "priority": "low", "share": 0.3},
    {"name": "app", "priority": "normal", "share": 0.4},
    {"name": "vip", "priority": "high", "share": 0.3},
]
CUT_MIN = 3  # 16 -> 12 GPUs at minute 3, -> 8 GPUs at minute 6 (4-GPU nodes)


def _scenario(tmp: Path, seed: int, tenants: bool = True) -> Path:
    """10 minutes of Poisson arrivals at 12 requests/s (prompts 200-1400, answers 50-250 tokens)."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1 / 12, 12 * 600 * 2))
    t = t[t < 600]
    n_in, n_out = rng.integers(200, 1400, len(t)), rng.integers(50, 250, len(t))
    rows = "".join(f"{a:.3f},{i},{o}\n" for a, i, o in zip(t, n_in, n_out))
    (tmp / f"trace{seed}.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + rows)
    sc = {
        "name": f"tenants-cut-{seed}",
        "fleet": str(ROOT / "autoscaler/examples/fleet.h100.yaml"),
        "data_dir": str(tmp),
        "trace": {"path": f"trace{seed}.csv", "timestamp_unit": "s"},
        "gpus": {"total": 16, "per_node": 4},
        "events": [{"at_min": CUT_MIN, "gpus_fraction": 0.75}, {"at_min": 2 * CUT_MIN, "gpus_fraction": 0.5}],
        "profiles": {"llama-3.1-8b": "h100-8b", "llama-3.3-70b": "h100x4-70b"},
        "policies": ["petit"],
        "seed": seed,
        **({"tenants": TENANTS} if tenants else {}),
    }
    path = tmp / f"scenario{seed}{'' if tenants else '-none'}.yaml"
    path.write_text(yaml.safe_dump(sc))
    return path


def _run(path: Path) -> SimResult:
    sc, fleet, trace = load_run(path)
    return simulate(sc, fleet, trace, build_policy("petit", fleet, sc))


def _first_drop(series: list[float | None], below: float) -> float:
    """The first minute from the cut on where the class's strong share fell below `below` (inf: never)."""
    return next((m for m, s in enumerate(series) if m >= CUT_MIN and s is not None and s < below), math.inf)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[int, SimResult]:
    tmp = tmp_path_factory.mktemp("tenants")
    return {seed: _run(_scenario(tmp, seed)) for seed in (0, 1, 2)}


def test_before_the_cut_every_class_gets_the_same_tiers(runs):
    for r in runs.values():
        by = r.buckets["strong_share_by_priority"]
        for minute in range(CUT_MIN):
            shares = [by[p][minute] for p in ("low", "normal", "high")]
            assert max(shares) - min(shares) < 0.15, (minute, shares)


def test_while_gpus_are_short_low_leaves_the_large_tier_first_and_high_keeps_it_longest(runs):
    short = {
        p: np.mean([r.totals["by_priority"][p]["strong_share_short"] for r in runs.values()])
        for p in runs[0].totals["by_priority"]
    }
    assert short["low"] + 0.1 < short["normal"] and short["normal"] + 0.05 < short["high"], short
    assert short["high"] > 0.5, short  # high still gets the large tier for most of its auto traffic
    for seed, r in runs.items():
        by = r.buckets["strong_share_by_priority"]
        drop = {p: _first_drop(by[p], 0.4) for p in by}
        assert drop["low"] <= drop["normal"] <= drop["high"], (seed, drop)
        assert drop["low"] < math.inf, (seed, drop)  # low does move to the small tier


def test_priority_reorders_the_strong_tier_without_costing_quality(runs, tmp_path):
    alone = _run(_scenario(tmp_path, 0, tenants=False))
    mixed = runs[0].totals
    assert "by_priority" not in alone.totals
    assert abs(mixed["expected_quality"] - alone.totals["expected_quality"]) < 0.5
    assert abs(mixed["slo_attainment"] - alone.totals["slo_attainment"]) < 0.01
    total = sum(t["requests"] for t in mixed["by_priority"].values())
    assert abs(mixed["by_priority"]["normal"]["requests"] / total - 0.4) < 0.02  # tenants drawn by share


def test_cli_writes_the_classes_to_results_and_summary(tmp_path):
    path = _scenario(tmp_path, 0)
    assert main(["simulate", str(path), "--out", str(tmp_path / "out"), "--no-plots"]) == 0
    data = json.loads((tmp_path / "out/results.json").read_text())["policies"]["petit"]
    assert set(data["totals"]["by_priority"]) == {"low", "normal", "high"}
    assert set(data["buckets"]["strong_share_by_priority"]) == {"low", "normal", "high"}
    assert "| petit | high |" in (tmp_path / "out/summary.md").read_text()


@pytest.mark.parametrize(
    "tenants, msg",
    [
        ([{"name": "a", "priority": "urgent", "share": 1}], "tenants.0.priority"),
        ([{"name": "a", "share": 0}], "tenants.0.share"),
        ([{"name": "a", "share": 1}, {"name": "a", "share": 1}], "a name appears twice"),
    ],
)
def test_bad_tenants_are_scenario_errors(tmp_path, tenants, msg):
    sc = yaml.safe_load(_scenario(tmp_path, 0).read_text())
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**sc, "tenants": tenants}))
    with pytest.raises(ScenarioError, match=msg):
        load_sim_scenario(bad)
