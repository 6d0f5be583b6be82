"""Measured profiles (fit, file, scenarios that name one) and the fidelity check (issue 13, item 6)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from autoscaler.cli import main
from autoscaler.simulator.cli import load_run
from autoscaler.simulator.fidelity import LatencyStats, compare, measured_stats, simulated_stats
from autoscaler.simulator.measured import (
    ProfileFile,
    ProfileFitError,
    ProfileLimits,
    ProfileProvenance,
    ProfileSample,
    build_points,
    fit_profile,
    simulate_batch,
    write_profile_file,
)
from autoscaler.simulator.profiles import ReplicaProfile
from autoscaler.simulator.scenario import ScenarioError, load_sim_scenario

ROOT = Path(__file__).resolve().parents[3]
LOCAL_FLEET = ROOT / "deploy/fleet.local.yaml"
TRUE = ReplicaProfile(
    t0_ms=30.0,
    t1_ms=2.0,
    prefill_ms_per_token=0.8,
    kv_ms_per_token=1e-3,
    ttft_overhead_ms=40.0,
    max_batched_tokens=2048,
)


def exact_samples(p: ReplicaProfile, template: int = 0) -> list[ProfileSample]:
    """What the timing model says each cell measures (one request per cell)."""
    out = []
    for c in (1, 2, 4, 8):
        for asked in (64, 256, 1024):
            n_in, n_out = asked + template, 32
            ttft = (p.ttft_overhead_ms - p.prefill_ms_per_token * template) + p.t0_ms + p.prefill_ms_per_token * n_in
            tpot = p.t0_ms + p.t1_ms * c + p.kv_ms_per_token * c * (n_in + n_out / 2)
            out.append(ProfileSample(c, asked, n_in, n_out, ttft / 1000, tpot / 1000))
    return out


def test_fit_recovers_the_timing_model_it_fits():
    fit = fit_profile(exact_samples(TRUE, template=20), ProfileLimits(), exact_prompts=True)
    p = fit.profile
    for name in ("t0_ms", "t1_ms", "prefill_ms_per_token", "kv_ms_per_token", "ttft_overhead_ms"):
        assert getattr(p, name) == pytest.approx(getattr(TRUE, name), rel=1e-6), name
    assert fit.template_tokens == 20 and fit.decode_rmse_ms < 1e-6


def test_fit_needs_a_decode_signal_and_two_lone_prompt_lengths():
    samples = exact_samples(TRUE)
    with pytest.raises(ProfileFitError, match="time per output token"):
        fit_profile([ProfileSample(s.concurrency, 64, 64, 1, s.ttft_s, None) for s in samples], ProfileLimits())
    with pytest.raises(ProfileFitError, match="two prompt lengths"):
        fit_profile([s for s in samples if s.concurrency > 1 or s.requested_prompt_tokens == 64], ProfileLimits())


def test_simulated_cells_match_the_model_for_a_lone_request():
    ttft, tpot = simulate_batch(TRUE, 1, 256, 32)
    assert ttft == pytest.approx((40 + 30 + 0.8 * 256) / 1000, rel=0.03)
    assert tpot == pytest.approx((30 + 2 + 1e-3 * (256 + 16)) / 1000, rel=0.05)
    points = build_points([s for s in exact_samples(TRUE) if s.concurrency <= 2], TRUE)
    assert [(pt.concurrency, pt.prompt_tokens, pt.requests) for pt in points][:2] == [(1, 64, 1), (1, 256, 1)]
    assert points[1].simulated_ttft_ms == pytest.approx(ttft * 1000)


def write_profile(path: Path, p: ReplicaProfile) -> Path:
    prov = ProfileProvenance(target="t", model="m", measured_at="2025-01-01T00:00:00Z", template_tokens=0, requests=1)
    return write_profile_file(path, ProfileFile(profile=p, provenance=prov))


def scenario(tmp_path: Path, profile_ref: str, rows: list[tuple[float, int, int]]) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data/trace.csv").write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n" + "".join(f"{t},{i},{o}\n" for t, i, o in rows)
    )
    sc = tmp_path / "s.yaml"
    sc.write_text(
        f"name: fid\nfleet: {LOCAL_FLEET}\ndata_dir: data\ntrace: {{path: trace.csv}}\n"
        f"gpus: {{total: 2, per_node: 2}}\ntick_s: 0.01\nqueue_timeout_s: 5\nauto_fraction: 0\n"
        f"profiles: {{smollm2-135m: {profile_ref}, qwen2.5-coder-0.5b: {profile_ref}}}\n"
    )
    return sc


ROWS = [(round(i * 0.7, 2), 64 + (i * 97) % 400, 8 + (i * 5) % 24) for i in range(60)]


def test_a_scenario_reads_a_profile_file_relative_to_itself(tmp_path):
    write_profile(tmp_path / "profiles/q.profile.yaml", TRUE)
    sc, _ = load_sim_scenario(scenario(tmp_path, "profiles/q.profile.yaml", ROWS))
    assert sc.profile("qwen2.5-coder-0.5b") == TRUE
    assert Path(sc.resolved_data_dir()) == tmp_path / "data"
    with pytest.raises(ScenarioError, match=r"profiles\.smollm2-135m: .*missing\.yaml: cannot read"):
        load_sim_scenario(scenario(tmp_path, "missing.yaml", ROWS))
    with pytest.raises(ScenarioError, match="unknown profile 'h200'"):
        load_sim_scenario(scenario(tmp_path, "h200", ROWS))


def report_from(ttft_s: list[float], model: str = "qwen2.5-coder-0.5b", warmup: int = 0) -> dict:
    samples = [{"requested_model": model, "ok": True, "ttft_s": t, "warmup": i < warmup} for i, t in enumerate(ttft_s)]
    return {"run": {"model": model}, "samples": samples}


def test_measured_stats_count_failures_against_the_slo_and_skip_the_warmup():
    rep = report_from([0.1, 0.2, 0.3, 5.0, 0.4], warmup=1)
    rep["samples"].append({"requested_model": "qwen2.5-coder-0.5b", "ok": False, "ttft_s": None, "warmup": False})
    s = measured_stats(rep, slo_s=2.0)
    assert (s.requests, s.answered) == (5, 4)
    assert s.ttft_p50_s == pytest.approx(0.35) and s.slo_attainment == pytest.approx(3 / 5)


def test_compare_passes_within_tolerance_and_fails_outside():
    meas = LatencyStats(50, 50, 0.30, 0.90, 0.96)
    ok = compare(LatencyStats(50, 50, 0.33, 0.75, 1.0), meas)
    assert ok["passed"] and ok["ratios"]["ttft_p50_s"] == pytest.approx(1.1)
    bad = compare(LatencyStats(50, 50, 0.33, 0.60, 1.0), meas)
    assert not bad["passed"] and bad["within"] == {"ttft_p50_s": True, "ttft_p95_s": False, "slo_attainment": True}
    assert not compare(LatencyStats(50, 0, None, None, 0.0), meas)["passed"]


def test_fidelity_command_passes_on_its_own_simulation_and_fails_on_a_slower_one(tmp_path, capsys):
    path = scenario(tmp_path, write_profile(tmp_path / "q.yaml", TRUE).name, ROWS)
    sc, fleet, trace = load_run(path)
    sim, too_long = simulated_stats(sc, fleet, trace, "qwen2.5-coder-0.5b")
    assert too_long == 0 and sim.requests == sim.answered == 60 and sim.slo_attainment == 1.0
    assert 0.07 + 0.8e-3 * 64 < sim.ttft_p50_s < 0.5  # overhead + t0 + prefill: from the profile
    # a load test that saw the simulated TTFTs +10% passes; +40% fails, exit 1
    rng = np.random.default_rng(0)
    base = np.clip(rng.normal(sim.ttft_p50_s, (sim.ttft_p95_s - sim.ttft_p50_s) / 1.645, 60), 0.05, None)
    base *= sim.ttft_p50_s / np.percentile(base, 50)
    for factor, code in ((1.1, 0), (1.4, 1)):
        rep = tmp_path / f"report-{factor}.json"
        rep.write_text(json.dumps(report_from((base * factor).tolist())))
        out = tmp_path / f"out-{factor}"
        assert main(["simulate", str(path), "--fidelity", str(rep), "--out", str(out)]) == code
        res = json.loads((out / "fidelity.json").read_text())
        assert res["model"] == "qwen2.5-coder-0.5b" and res["passed"] is (code == 0)
        assert res["ratios"]["ttft_p50_s"] == pytest.approx(1 / factor, rel=0.02)
        assert math.isclose(res["ratios"]["slo_attainment"], 1.0)
    assert "FAIL (within +-20%)" in capsys.readouterr().out


def test_fidelity_needs_a_named_model_of_the_fleet(tmp_path, capsys):
    path = scenario(tmp_path, write_profile(tmp_path / "q.yaml", TRUE).name, ROWS)
    rep = tmp_path / "r.json"
    rep.write_text(json.dumps(report_from([0.1], model="auto")))
    assert main(["simulate", str(path), "--fidelity", str(rep), "--out", str(tmp_path / "o")]) == 2
    assert "model 'auto' is not in the scenario's fleet" in capsys.readouterr().err
