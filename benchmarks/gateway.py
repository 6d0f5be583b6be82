"""The gateway's capacity and cost, on a FAKE engine at GPU-like speed (issue 14, items 1 and 2).

Every target serves the same fake engine timing (deploy/fleet.fast.yaml: first
token 30 ms after a stream is admitted, then one token every 5 ms, 64 streams at
once per model), so whatever a gateway adds shows against an engine as fast as a
GPU, not hidden behind a slow CPU engine:

- bare: loadtests/fake_server.py with that timing (the limit: no gateway at all);
- petit: `petit run --fleet deploy/fleet.fast.yaml` (Serve proxy -> ingress -> model replica
  running Petit's fake engine; routing and accounting as in production);
- litellm, vllm-router: the peer gateways from PyPI in front of the bare server, when installed
  (`pip install -e '.[bench]'`; skipped with a note otherwise).

The targets run one at a time, never together, interleaved over repeats (bare,
petit, ..., bare, petit, ...). A closed-loop streaming client (raw aiohttp, parsing
JSON only up to the first token and for the usage chunk) drives each with `c`
streams for `--duration` seconds at each level, for a named model and for `auto`.
Per level: streamed tokens/s and requests/s, their ratio to bare, added TTFT
p50/p99, and CPU milliseconds per 1,000 streamed tokens and per request of the
gateway processes (Petit: the Serve proxy, the ingress and the model replicas,
found by Ray's process titles; a peer: its own processes). Capacity: the highest
level whose added TTFT p50 stays <= 5 ms, with added TTFT at half of it.

    .venv/bin/python benchmarks/gateway.py [--levels 1,16,32,64] [--repeats 3] [--duration 10]
        [--targets bare,petit,litellm,vllm-router] [--tokens 64]

Writes benchmarks/results/gateway.json (every repeat, and the spread over repeats)
and prints a table; progress on stderr. Results are labelled "fake engine".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.gateway_stats import LevelResult, SseTally, capacity, check_targets, compare, cpu_used_by_role  # noqa: E402
from benchmarks.gateway_targets import (  # noqa: E402
    FAST_FLEET,
    FakeTiming,
    Target,
    start_bare,
    start_peer,
    start_petit,
    timing_from_fleet,
)
from benchmarks.hops import hop_summary, read_hop_buckets  # noqa: E402

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
PEERS = ("litellm", "vllm-router")
# The done-when limits for Petit on the named model (medians over repeats).
DONE_WHEN = {
    16: {"tokens_per_s_ratio": 0.99, "ttft_p50_added_ms": 2.0},
    64: {"tokens_per_s_ratio": 0.93, "ttft_p50_added_ms": 22.0, "gateway_cpu_ms_per_1k_tokens": 60.0},
}


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def one(session: aiohttp.ClientSession, url: str, model: str, tokens: int) -> SseTally:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    tally = SseTally(time.perf_counter())
    try:
        async with session.post(f"{url}/v1/chat/completions", json=body) as resp:
            if resp.status != 200:
                tally.error = f"http_{resp.status}"
                await resp.read()
                return tally
            async for data in resp.content.iter_any():
                tally.feed(data, time.perf_counter())
    except (aiohttp.ClientError, asyncio.TimeoutError) as err:
        tally.error = type(err).__name__
    return tally


async def closed_loop(url: str, model: str, concurrency: int, duration_s: float, tokens: int) -> list[SseTally]:
    """`concurrency` workers, each sending its next request when the last one ends, until `duration_s` is up
    (each sends at least one)."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=300)
    out: list[SseTally] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        deadline = time.perf_counter() + duration_s

        async def worker() -> None:
            while True:  # at least one request each, however short the duration
                out.append(await one(session, url, model, tokens))
                if time.perf_counter() >= deadline:
                    break

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def _event_loop_runner():  # uvloop when installed: the client must not be the bottleneck
    try:
        import uvloop

        return uvloop.run
    except ImportError:
        return asyncio.run


def measure(target: Target, model: str, concurrency: int, args: argparse.Namespace) -> LevelResult:
    run = _event_loop_runner()
    run(closed_loop(target.url, model, concurrency, args.warmup, args.tokens))  # warm-up, not counted
    hops0 = read_hop_buckets(target.url) if target.name == "petit" else {}
    before, cpu0 = target.cpu(), _own_cpu_s()
    t0 = time.perf_counter()
    tallies = run(closed_loop(target.url, model, concurrency, args.duration, args.tokens))
    wall = time.perf_counter() - t0
    cpu = cpu_used_by_role(before, target.cpu())
    hops = hop_summary(hops0, read_hop_buckets(target.url)) if hops0 else {}
    ok = [t for t in tallies if t.ok]
    return LevelResult(
        concurrency=concurrency,
        wall_s=wall,
        ttfts_s=[t.ttft_s for t in ok if t.ttft_s is not None],
        tokens=sum(t.tokens for t in ok),
        requests=len(ok),
        errors=len(tallies) - len(ok),
        cpu_s=cpu,
        client_cpu_s=_own_cpu_s() - cpu0,
        hops=hops,
    )


def _own_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def start(name: str, timing: FakeTiming, args: argparse.Namespace, logs: Path) -> Target | None:
    if name == "bare":
        return start_bare(timing, logs)
    if name == "petit":
        return start_petit(args.fleet, logs)
    return start_peer(name, timing, logs)


def run_target(target: Target, models: dict[str, str], levels: list[int], args: argparse.Namespace) -> dict:
    """{model label: {concurrency: summary}} for one started target."""
    out: dict[str, dict[int, dict]] = {}
    for label, model in models.items():
        out[label] = {}
        for c in levels:
            res = measure(target, model, c, args).summary()
            out[label][c] = res
            say(
                f"  [{target.name:11s} {label:5s} c={c:3d}] {res['tokens_per_s']:9.1f} tok/s "
                f"{res['requests_per_s']:7.1f} req/s  TTFT p50 {res['ttft_p50_ms']} ms p99 {res['ttft_p99_ms']} ms  "
                f"gateway CPU {res['gateway_cpu_ms_per_1k_tokens']} ms/1k tok  errors {res['errors']}"
            )
            if res["hops_ms"]:
                say(
                    "      hops p50/p95 ms: "
                    + ", ".join(f"{h} {v['p50_ms']}/{v['p95_ms']}" for h, v in res["hops_ms"].items())
                )
    return out


def summarise(runs: dict[str, list[dict]], levels: list[int]) -> dict:
    """Per target and model label: each level compared with bare, repeat by repeat, and the capacity."""
    out: dict[str, dict] = {}
    for name, reps in runs.items():
        out[name] = {}
        for label in reps[0]:
            per_level = {c: compare([r[label][c] for r in runs["bare"]], [r[label][c] for r in reps]) for c in levels}
            out[name][label] = {"levels": per_level, "capacity": capacity(per_level)}
    return out


def print_table(summary: dict) -> None:
    def med(x: dict | None) -> str:  # plain decimals (11,730 not 1.17e+04)
        if x is None:
            return "-"
        v = x["median"]
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}"

    print("\nFAKE ENGINE (GPU-like timing). Medians over repeats; [min-max] for the ratio.")
    head = f"{'target':11s} {'model':5s} {'conc':>4s} {'tok/s':>9s} {'req/s':>7s} {'ratio':>17s} "
    print(head + f"{'TTFT p50 +ms':>12s} {'p99 +ms':>8s} {'CPU ms/1k tok':>13s} {'CPU ms/req':>10s}")
    for name, by_model in summary.items():
        for label, s in by_model.items():
            for c, lv in s["levels"].items():
                r = lv["tokens_per_s_ratio"]
                ratio = "-" if r is None else f"{r['median']:.3f} [{r['min']:.3f}-{r['max']:.3f}]"
                print(
                    f"{name:11s} {label:5s} {c:4d} {med(lv['tokens_per_s']):>9s} {med(lv['requests_per_s']):>7s} "
                    f"{ratio:>17s} {med(lv['ttft_p50_added_ms']):>12s} {med(lv['ttft_p99_added_ms']):>8s} "
                    f"{med(lv['gateway_cpu_ms_per_1k_tokens']):>13s} {med(lv['gateway_cpu_ms_per_request']):>10s}"
                )
            cap = s["capacity"]
            if cap and name != "bare":
                print(
                    f"{'':11s} {label:5s} capacity (added TTFT p50 <= {cap['added_ttft_limit_ms']:g} ms): "
                    f"c={cap['concurrency']}, {med(cap['tokens_per_s'])} tok/s, {med(cap['requests_per_s'])} req/s; "
                    f"at c={cap['half_load_concurrency']}: TTFT +{med(cap['half_load_ttft_p50_added_ms'])} ms p50, "
                    f"+{med(cap['half_load_ttft_p99_added_ms'])} ms p99"
                )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--fleet", type=Path, default=FAST_FLEET, help="a fleet whose models all run the fake engine")
    p.add_argument("--targets", default="bare,petit," + ",".join(PEERS))
    p.add_argument("--levels", default="1,16,32,64")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per level")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load before each level")
    p.add_argument("--tokens", type=int, default=64, help="output tokens per request")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gateway.json")
    args = p.parse_args(argv)
    timing = timing_from_fleet(args.fleet)
    levels = [int(x) for x in args.levels.split(",")]
    wanted = ["bare", *(t for t in args.targets.split(",") if t != "bare")]
    models = {"named": timing.models[0], "auto": "auto"}
    logs = Path(tempfile.mkdtemp(prefix="petit-bench-gateway-"))
    say(
        f"==> fake engine: TTFT {timing.ttft_ms:g} ms, {timing.ms_per_token:g} ms/token, {timing.max_concurrent} "
        f"streams per model; targets {wanted}; logs in {logs}"
    )
    runs: dict[str, list[dict]] = {}
    skipped: dict[str, str] = {}
    for rep in range(args.repeats):
        for name in wanted:
            if name in skipped:
                continue
            say(f"==> repeat {rep + 1}/{args.repeats}: {name}")
            try:
                target = start(name, timing, args, logs)
            except RuntimeError as err:
                if name not in PEERS:
                    raise
                skipped[name] = f"did not start: {err} (log: {logs / name}.log)"
                say(f"    skipped: {skipped[name]}")
                continue
            if target is None:
                skipped[name] = f"not installed (`{name}` not on PATH nor in this venv; pip install -e '.[bench]')"
                say(f"    skipped: {skipped[name]}")
                continue
            try:
                runs.setdefault(name, []).append(run_target(target, models, levels, args))
            finally:
                target.close()
    summary = summarise(runs, levels)
    petit = summary.get("petit", {}).get("named")
    result = {
        "benchmark": "gateway",
        "engine": {
            "label": "FAKE ENGINE at GPU-like speed (no model, no GPU)",
            "ttft_ms": timing.ttft_ms,
            "ms_per_token": timing.ms_per_token,
            "max_concurrent_per_model": timing.max_concurrent,
            "fleet": str(args.fleet.relative_to(ROOT) if args.fleet.is_relative_to(ROOT) else args.fleet),
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {k: v for k, v in vars(args).items() if k not in ("fleet", "out")} | {"models": models},
        "skipped": skipped,
        "summary": summary,
        "done_when": {"limits": DONE_WHEN, "petit_named": check_targets(petit["levels"], DONE_WHEN) if petit else None},
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print_table(summary)
    for name, why in skipped.items():
        print(f"{name}: skipped, {why}")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
