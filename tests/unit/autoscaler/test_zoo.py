"""The scenario zoo (issue 13, item 2), short versions: every scenario, every policy, one table."""

from __future__ import annotations

import json

import pytest

from autoscaler.cli import main
from autoscaler.simulator.scenario import load_sim_scenario
from autoscaler.simulator.workloads import KNOWN_TRACES
from autoscaler.simulator.zoo import ZOO_DIR

SCENARIOS = sorted(p for p in ZOO_DIR.glob("*.yaml") if not p.name.startswith("fleet"))


def test_the_zoo_covers_every_shared_trace_and_the_issues_shapes():
    scs = [load_sim_scenario(p)[0] for p in SCENARIOS]
    assert {sc.trace.path for sc in scs} == set(KNOWN_TRACES)
    assert any(b.factor >= 5 for sc in scs for b in sc.trace.bursts)
    assert any(sc.trace.diurnal for sc in scs)
    assert any(sc.trace.time_scale >= 10 and sc.gpus.total >= 80 for sc in scs)
    assert any(sc.trace.time_scale >= 100 and sc.gpus.total >= 800 for sc in scs)
    assert any(len(sc.events) >= 6 for sc in scs)  # flapping
    assert any(len(sc.profiles) == 3 for sc in scs)  # three model sizes
    assert any(sc.start == "cold" for sc in scs)


def test_zoo_short_runs_every_scenario_and_writes_one_table(tmp_path):
    sc, _ = load_sim_scenario(SCENARIOS[0])
    if not (sc.resolved_data_dir() / sc.trace.path).is_file():
        pytest.skip(f"trace data not found under {sc.resolved_data_dir()} (set PETIT_DATA_DIR or place ../shared/data)")
    assert main(["simulate", "--zoo", "--short", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "zoo.json").read_text())["scenarios"]
    assert len(rows) == len(SCENARIOS)
    md = (tmp_path / "zoo.md").read_text()
    for r in rows:
        assert r["scenario"] in md
        assert set(r["policies"]) >= {"petit", "upper_bound", "queue_based", "priority_trade", "static_optimum"}
        for name, t in r["policies"].items():
            assert 0.0 <= t["slo_attainment"] <= 1.0, (r["scenario"], name)
            assert t["upper_bound_gap"] is not None
        assert r["policies"]["upper_bound"]["upper_bound_gap"] == 0.0
    mooncake = next(r for r in rows if r["scenario"] == "mooncake-16k-context")
    assert mooncake["too_long_share"] > 0.2  # prompts over the 16k window: 400, counted
