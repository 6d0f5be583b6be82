"""Simulator fidelity and fairness (issue 13, item 5), on small synthetic traces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autoscaler.simulator.cli import load_run
from autoscaler.simulator.engine import OK, Cluster, Fleet, Requests
from autoscaler.simulator.policies import build_policy
from autoscaler.simulator.profiles import BUILTIN_PROFILES
from autoscaler.simulator.run import simulate
from autoscaler.simulator.traces import TraceError
from autoscaler.simulator.workloads import verify_trace

ROOT = Path(__file__).resolve().parents[3]
FLEET = ROOT / "autoscaler/examples/fleet.h100.yaml"  # 8B (16k context) + 70B (16k context)


def scenario(tmp_path: Path, rows: list[tuple[float, int, int]], extra: str = "") -> Path:
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,input_tokens,output_tokens\n" + "".join(f"{t},{i},{o}\n" for t, i, o in rows))
    sc = tmp_path / "s.yaml"
    sc.write_text(
        f"fleet: {FLEET}\ntrace: {{path: {trace}}}\ngpus: {{total: 8, per_node: 4}}\n"
        "profiles: {llama-3.1-8b: h100-8b, llama-3.3-70b: h100x4-70b}\n" + extra
    )
    return sc


def run_all(path: Path) -> dict[str, dict]:
    sc, fleet, trace = load_run(path)
    out = {}
    for name in ("large_only", "static_mix", "queue_based", "priority_trade", "petit"):
        r = simulate(sc, fleet, trace, build_policy(name, fleet, sc))
        out[name] = r.totals
    return out


def test_requests_over_every_context_window_are_400_for_every_policy(tmp_path):
    rows = [(i * 0.5, 20000 if i % 4 == 0 else 500, 100) for i in range(200)]  # 25% over 16384 tokens
    totals = run_all(scenario(tmp_path, rows))
    for name, t in totals.items():
        assert t["too_long_share"] == pytest.approx(0.25), name
        assert t["servable"] == 150
        assert t["slo_attainment"] + t["late_share"] + t["rejected_share"] == pytest.approx(1.0)
    # cost per 1M tokens of all arriving requests: the same denominator for every policy
    ratio = {n: t["cost_usd"] / t["cost_per_1m_total_tokens"] for n, t in totals.items()}
    assert max(ratio.values()) == pytest.approx(min(ratio.values()))
    out = {n: t["cost_usd"] / t["cost_per_1m_output_tokens"] for n, t in totals.items()}
    assert min(out.values()) == pytest.approx(200 * 100 / 1e6)


def test_prefill_time_grows_with_prompt_length_per_profile():
    """silybench (PROFILES 1b): 8B TTFT 50 ms for 2048 tokens, 205 ms for 8192 at c=1."""
    p = BUILTIN_PROFILES["h100-8b"]
    ttft = []
    for n_in in (2048, 8192):
        req = Requests(np.array([0.0]), np.array([float(n_in)]), np.array([10.0]))
        fleet = Fleet([1.0], [p], [10], Cluster(1, 1))
        fleet.reconcile(0, 1, 0.0)
        fleet.replicas[0][0].ready_at = 0.0
        req.model[0] = 0
        fleet.enqueue(0, 0, req)
        for k in range(8):
            fleet.step(k * 0.25, 0.25, req, 60.0)
        assert req.status[0] == OK
        ttft.append(float(req.ttft[0]))
    assert ttft[0] == pytest.approx(0.050, rel=0.2) and ttft[1] == pytest.approx(0.205, rel=0.2)


def test_cold_start_is_the_same_fleet_for_every_policy(tmp_path):
    rows = [(i * 0.1, 800, 150) for i in range(3000)]
    sc, fleet, trace = load_run(scenario(tmp_path, rows, "start: cold\n"))
    first = {}
    for name in ("large_only", "static_mix", "queue_based", "priority_trade", "petit"):
        r = simulate(sc, fleet, trace, build_policy(name, fleet, sc))
        first[name] = {m: ys[0] for m, ys in r.control["ready"].items()}
        assert r.totals["start"] == "cold"
    assert all(f == first["petit"] for f in first.values()), first
    assert sum(first["petit"].values()) >= 2


def test_petit_reaches_its_fleet_from_a_cold_start_as_fast_as_startup_allows(tmp_path):
    """Issue 13: from the initial fleet, Petit must begin scaling at its first period, not minutes later."""
    rows = [(i * 0.02, 1000, 200) for i in range(15000)]  # 50 req/s for 5 min: far above the initial fleet
    sc, fleet, trace = load_run(scenario(tmp_path, rows, "start: cold\ngpus: {total: 32, per_node: 4}\n"))
    r = simulate(sc, fleet, trace, build_policy("petit", fleet, sc))
    held, t = r.control["held"], r.control["t"]
    assert r.reasons[0][0] == 5.0 and "scale_up" in str(r.reasons[0][2])  # scales at its first period
    assert held[t.index(60.0)] >= 28, r.reasons[:3]  # (nearly) the whole budget within a minute


def test_a_tampered_shared_trace_is_refused(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("timestamp,input_tokens,output_tokens\n0,1,1\n")
    with pytest.raises(TraceError, match="does not match the upstream file"):
        verify_trace(p, "traces/azure_llm_2023/AzureLLMInferenceTrace_conv.csv")
    verify_trace(p, "traces/mine.csv")  # not a known file: nothing to check
