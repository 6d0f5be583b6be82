"""The real-engine benchmark's pure parts (benchmarks/real_engine.py): order, seeds, client command lines,
the side settings, and the summary with its verdicts. No process is started."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from benchmarks.real_engine import (
    BARE_SERVER,
    Setup,
    bare_command,
    bench_fleet_data,
    parse_args,
    pick_model,
    plan_turn,
    replica_env,
)
from benchmarks.real_engine_stats import (
    Slot,
    format_table,
    pct_diff,
    schedule,
    seed_for,
    summarise,
    summarise_level,
)
from benchmarks.vllm_bench_client import client_argv, client_figures
from serving.fleet.schema import load_fleet, parse_fleet
from serving.replica.engines.vllm_engine import engine_cli_args

ROOT = Path(__file__).resolve().parents[2]
LOCAL_FLEET = ROOT / "deploy" / "fleet.local.yaml"


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


# --- order and seeds ---


def test_alternate_order_puts_petit_first_in_even_pairs():
    order = [(s.side, s.pair) for s in schedule(3)]
    assert order == [("bare", 1), ("petit", 1), ("petit", 2), ("bare", 2), ("bare", 3), ("petit", 3)]
    assert [s.position for s in schedule(3)] == [1, 2, 3, 4, 5, 6]


def test_fixed_order_is_bare_then_petit_in_every_pair():
    assert [s.side for s in schedule(3, alternate=False)] == ["bare", "petit"] * 3


def test_every_pair_has_both_sides_back_to_back():
    slots = schedule(4)
    for i in range(0, len(slots), 2):
        assert {slots[i].side, slots[i + 1].side} == {"bare", "petit"}
        assert slots[i].pair == slots[i + 1].pair == i // 2 + 1


def test_schedule_needs_a_pair():
    with pytest.raises(ValueError):
        schedule(0)


def test_seeds_differ_for_every_pair_side_and_slot():
    keys = list(itertools.product(range(1, 6), ("bare", "petit"), range(8)))
    seeds = [seed_for(p, s, i) for p, s, i in keys]
    assert len(set(seeds)) == len(keys)
    assert seed_for(1, "bare", 1) != seed_for(1, "petit", 1)


def test_seed_rejects_unknown_side_and_slot():
    with pytest.raises(ValueError):
        seed_for(1, "litellm", 0)
    with pytest.raises(ValueError):
        seed_for(1, "bare", 100)


# --- the client's command line ---


def test_client_argv_asks_vllm_for_the_fair_workload(tmp_path):
    argv = client_argv(
        base_url="http://127.0.0.1:9", model="m", tokenizer="/w/m", seed=7, prompts=40, concurrency=8,
        input_tokens=128, output_tokens=64, result=tmp_path / "r.json",
    )  # fmt: skip
    assert argv.count("--ignore-eos") == 1 and "--save-result" in argv and "--disable-tqdm" in argv
    expect = {
        "--backend": "openai-chat", "--base-url": "http://127.0.0.1:9", "--endpoint": "/v1/chat/completions",
        "--model": "m", "--tokenizer": "/w/m", "--seed": "7", "--dataset-name": "random",
        "--random-input-len": "128", "--random-output-len": "64", "--random-range-ratio": "0",
        "--num-prompts": "40", "--max-concurrency": "8", "--request-rate": "inf", "--temperature": "0",
        "--metric-percentiles": "50,99", "--result-dir": str(tmp_path), "--result-filename": "r.json",
    }  # fmt: skip
    assert {k: flag(argv, k) for k in expect} == expect
    assert "ttft" in flag(argv, "--percentile-metrics")


def _args(**over) -> object:
    return parse_args([f"--{k.replace('_', '-')}={v}" for k, v in over.items()])


def _setup(tmp_path: Path) -> Setup:
    fleet = parse_fleet(bench_fleet_data(yaml.safe_load(LOCAL_FLEET.read_text()), "smollm2-135m"), "test")
    return Setup(fleet.model("smollm2-135m"), "/w/smol", tmp_path / "fleet.yaml", {}, tmp_path)


def test_a_turn_warms_up_at_the_top_level_then_runs_each_level(tmp_path):
    plan = plan_turn(Slot(2, "petit", 3), "http://h:1", _setup(tmp_path), _args())
    assert [(p.concurrency, p.prompts) for p in plan] == [(None, 32), (1, 10), (8, 40), (32, 96)]
    assert [flag(p.run.argv, "--max-concurrency") for p in plan] == ["32", "1", "8", "32"]
    assert [int(flag(p.run.argv, "--seed")) for p in plan] == [seed_for(2, "petit", i) for i in range(4)]
    assert all(flag(p.run.argv, "--base-url") == "http://h:1" for p in plan)
    assert all(flag(p.run.argv, "--model") == "smollm2-135m" for p in plan)
    assert len({p.result for p in plan}) == 4 and all(p.result.parent == tmp_path for p in plan)
    assert "pair 2/3 petit" in plan[2].run.label and "c=8" in plan[2].run.label


def test_the_two_sides_of_a_pair_never_share_a_prompt_seed(tmp_path):
    setup, args = _setup(tmp_path), _args()
    seeds = [int(flag(p.run.argv, "--seed")) for s in schedule(3) for p in plan_turn(s, "http://h:1", setup, args)]
    assert len(seeds) == len(set(seeds)) == 6 * 4


def test_no_warm_up_when_asked(tmp_path):
    plan = plan_turn(Slot(1, "bare", 1), "http://h:1", _setup(tmp_path), _args(warmup_prompts=0, levels="4"))
    assert [(p.concurrency, p.prompts) for p in plan] == [(4, 12)]


def test_prompts_must_match_the_levels():
    assert _args(levels="1,8", prompts="5,9").prompts == [5, 9]
    with pytest.raises(SystemExit):
        _args(levels="1,8", prompts="5")


# --- the two sides get the same engine ---


def test_bench_fleet_holds_only_the_model_with_one_replica():
    data = bench_fleet_data(yaml.safe_load(LOCAL_FLEET.read_text()), "qwen2.5-coder-0.5b")
    fleet = parse_fleet(data, "test")
    assert fleet.model_ids == ["qwen2.5-coder-0.5b"]
    assert (fleet.models[0].replicas.min, fleet.models[0].replicas.max, fleet.models[0].replicas.start) == (1, 1, 1)
    with pytest.raises(ValueError):
        bench_fleet_data(data, "nope")


def test_default_model_is_the_fleets_small_one():
    fleet = load_fleet(LOCAL_FLEET)
    assert pick_model(fleet, None).id == "smollm2-135m"
    assert pick_model(fleet, "qwen2.5-coder-0.5b").id == "qwen2.5-coder-0.5b"


def test_bare_gets_petits_engine_args_and_cpu_env(tmp_path):
    setup = _setup(tmp_path)
    cmd = bare_command(setup.model, "/w/smol", 8123)
    assert cmd[1:3] == ["-m", BARE_SERVER]
    assert cmd[3 : 3 + len(engine_cli_args(setup.model, "/w/smol"))] == engine_cli_args(setup.model, "/w/smol")
    assert flag(cmd, "--port") == "8123" and flag(cmd, "--served-model-name") == "smollm2-135m"
    fleet = parse_fleet(bench_fleet_data(yaml.safe_load(LOCAL_FLEET.read_text()), "smollm2-135m"), "test")
    env = replica_env(fleet, setup.model, {})
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0" and env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert env["OMP_NUM_THREADS"] == "1" and env["HF_HUB_OFFLINE"] == "1"
    assert not [k for k in env if k.startswith("RAY_")]
    assert "OMP_NUM_THREADS" not in replica_env(fleet, setup.model, {"OMP_NUM_THREADS": "2"})


# --- figures and summary ---

VLLM_RESULT = {
    "output_throughput": 400.0, "request_throughput": 6.25, "completed": 96, "failed": 0,
    "total_output_tokens": 6144, "duration": 15.36, "p50_ttft_ms": 80.0, "p99_ttft_ms": 150.0,
    "p50_tpot_ms": 70.0, "p99_tpot_ms": 90.0, "median_ttft_ms": 80.0,
}  # fmt: skip


def test_client_figures_read_vllms_result():
    f = client_figures(VLLM_RESULT)
    assert f["output_tokens_per_s"] == 400.0 and f["ttft_p50_ms"] == 80.0 and f["ttft_p99_ms"] == 150.0
    assert f["completed"] == 96 and f["failed"] == 0 and f["duration_s"] == 15.36


def fig(tps: float, p50: float, p99: float | None = None, failed: int = 0) -> dict:
    return {"output_tokens_per_s": tps, "ttft_p50_ms": p50, "ttft_p99_ms": p99 or 2 * p50, "failed": failed}


def test_level_summary_takes_ratios_within_pairs_then_median_and_range():
    pairs = [(fig(100, 50), fig(99, 51)), (fig(200, 50), fig(194, 50.5)), (fig(100, 50), fig(100, 52))]
    s = summarise_level(pairs)
    assert s["throughput_ratio"] == {"median": 0.99, "min": 0.97, "max": 1.0, "n": 3}
    assert s["ttft_p50_diff_pct"] == {"median": 2.0, "min": 1.0, "max": 4.0, "n": 3}
    assert s["checks"] == {"throughput_ratio": True, "ttft_p50": True, "no_failures": True}
    assert s["verdict"] == "PASS"  # the limits are inclusive
    assert s["bare"]["output_tokens_per_s"]["median"] == 100


@pytest.mark.parametrize(
    "petit, check",
    [
        ([fig(97, 50), fig(97, 50), fig(99, 50)], "throughput_ratio"),
        ([fig(100, 48), fig(100, 48.5), fig(100, 49)], "ttft_p50"),  # faster by 3 % is outside +-2 % too
        ([fig(100, 50), fig(100, 50, failed=1), fig(100, 50)], "no_failures"),
    ],
)
def test_level_misses_when_a_target_is_missed(petit, check):
    s = summarise_level([(fig(100, 50), p) for p in petit])
    assert s["checks"][check] is False and s["verdict"] == "MISS"


def test_pct_diff():
    assert pct_diff(102, 100) == pytest.approx(2.0)
    assert pct_diff(1, 0) is None


def run(pair: int, side: str, tps: float, p50: float) -> dict:
    return {"pair": pair, "side": side, "levels": [{"concurrency": 1, **fig(tps, p50)}, {"concurrency": 8, **fig(8 * tps, p50)}]}  # fmt: skip


def test_summary_uses_complete_pairs_and_passes_only_when_every_level_does():
    runs = [run(1, "bare", 100, 50), run(1, "petit", 99, 50.5), run(2, "petit", 99, 50), run(2, "bare", 100, 50)]
    s = summarise([*runs, run(3, "bare", 1, 1)], [1, 8])
    assert s["pairs"] == 2 and [lv["concurrency"] for lv in s["levels"]] == [1, 8]
    assert s["levels"][0]["throughput_ratio"]["median"] == 0.99 and s["verdict"] == "PASS"
    slow = summarise([*runs[:3], run(2, "bare", 120, 50)], [1, 8])
    assert slow["verdict"] == "MISS"


def test_table_shows_range_and_verdicts():
    s = summarise([run(1, "bare", 100, 50), run(1, "petit", 90, 60)], [1, 8])
    table = format_table(s)
    assert "MISS" in table and "0.900" in table and "+20.0" in table and "overall: MISS" in table
    assert "[0.900 - 0.900]" in table
