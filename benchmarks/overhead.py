"""What Petit adds on top of a bare vLLM server, measured on the same machine in one run.

The same model (the fleet's small model by default) with the same engine
settings is served twice, one after the other so the two never compete for
the CPU: bare (`python -m vllm.entrypoints.openai.api_server`) and through
Petit (Ray Serve proxy -> ingress -> model deployment). Each is driven with
streamed chat requests of a fixed prompt and a fixed output length
(`ignore_eos`), at each concurrency level. Reported: output tokens/s, TTFT
p50/p99, and Petit's ratio/difference to bare.

    .venv/bin/python benchmarks/overhead.py [--model smollm2-135m] [--levels 1,8,32] [--tokens 64]

Writes benchmarks/results/overhead.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadtests.metrics import RequestSample, StreamTimer, percentile  # noqa: E402
from serving.fleet.schema import load_fleet, parse_fleet  # noqa: E402
from serving.fleet.weights import resolve_model_path  # noqa: E402
from serving.replica.engines.vllm_engine import engine_cli_args, engine_env  # noqa: E402

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


async def one(client: httpx.AsyncClient, model: str, tokens: int) -> tuple[float, int]:
    """(TTFT s, output tokens) of one streamed request, timed by the load tests' StreamTimer."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    timer = StreamTimer(RequestSample(start_s=0.0, requested_model=model), time.perf_counter())
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            timer.line(line, time.perf_counter())
    sample = timer.finish(time.perf_counter())
    return (sample.ttft_s if sample.ttft_s is not None else float("nan")), sample.output_tokens or 0


async def level(url: str, model: str, concurrency: int, requests: int, tokens: int) -> dict:
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        await one(client, model, 4)  # warm-up
        sem = asyncio.Semaphore(concurrency)

        async def guarded():
            async with sem:
                return await one(client, model, tokens)

        t0 = time.perf_counter()
        results = await asyncio.gather(*(guarded() for _ in range(requests)))
        wall = time.perf_counter() - t0
    ttfts = [t for t, _ in results]
    total = sum(n for _, n in results)
    return {
        "concurrency": concurrency,
        "requests": requests,
        "output_tokens": total,
        "wall_s": wall,
        "tokens_per_s": total / wall,
        "ttft_p50_ms": percentile(ttfts, 50) * 1e3,
        "ttft_p99_ms": percentile(ttfts, 99) * 1e3,
    }


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v1/models", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def run_levels(url: str, model: str, levels: list[int], tokens: int, label: str) -> list[dict]:
    out = []
    for c in levels:
        res = asyncio.run(level(url, model, c, max(8, 2 * c), tokens))
        print(
            f"  [{label}] c={c:3d}: {res['tokens_per_s']:7.1f} tok/s, TTFT p50 {res['ttft_p50_ms']:7.1f} ms, "
            f"p99 {res['ttft_p99_ms']:7.1f} ms",
            flush=True,
        )
        out.append(res)
    return out


def bench_bare(model_cfg, path: str, levels, tokens, port: int) -> list[dict]:
    env = dict(os.environ, **engine_env(model_cfg), HF_HUB_OFFLINE="1", VLLM_NO_USAGE_STATS="1")
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        *engine_cli_args(model_cfg, path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-uvicorn-access-log",
    ]
    print("==> bare vLLM:", " ".join(cmd[3:]), flush=True)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}", 600)
        return run_levels(f"http://127.0.0.1:{port}", model_cfg.id, levels, tokens, "bare ")
    finally:
        proc.terminate()
        proc.wait(60)


def bench_petit(fleet_data: dict, model_id: str, levels, tokens, port: int) -> list[dict]:
    from serving.runner import LocalStack

    data = dict(fleet_data, models=[m for m in fleet_data["models"] if m["id"] == model_id])
    data["server"] = dict(data.get("server") or {}, port=port)
    stack = LocalStack(parse_fleet(data, "benchmark fleet"))
    print("==> Petit (Ray Serve + vLLM)", flush=True)
    try:
        stack.start()
        return run_levels(stack.url, model_id, levels, tokens, "petit")
    finally:
        stack.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fleet", default=str(ROOT / "deploy" / "fleet.local.yaml"))
    p.add_argument("--model", default=None, help="fleet model id (default: the first one)")
    p.add_argument("--levels", default="1,8,32")
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "overhead.json"))
    args = p.parse_args()
    import yaml

    fleet = load_fleet(args.fleet)
    model = fleet.model(args.model or fleet.model_ids[0])
    path = resolve_model_path(model, fleet.resolved_cache_dir())
    levels = [int(x) for x in args.levels.split(",")]
    bare = bench_bare(model, path, levels, args.tokens, 8101)
    petit = bench_petit(yaml.safe_load(Path(args.fleet).read_text()), model.id, levels, args.tokens, 8102)
    rows = []
    for b, q in zip(bare, petit):
        rows.append(
            {
                "concurrency": b["concurrency"],
                "throughput_ratio": q["tokens_per_s"] / b["tokens_per_s"],
                "ttft_p50_added_ms": q["ttft_p50_ms"] - b["ttft_p50_ms"],
                "ttft_p99_added_ms": q["ttft_p99_ms"] - b["ttft_p99_ms"],
                "bare": b,
                "petit": q,
            }
        )
    result = {
        "model": model.id,
        "output_tokens_per_request": args.tokens,
        "prompt": PROMPT,
        "machine": {"cpus": os.cpu_count()},
        "levels": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(
        f"\n{'conc':>4} {'bare tok/s':>10} {'petit tok/s':>11} {'ratio':>6} {'TTFT p50 +ms':>12} {'TTFT p99 +ms':>12}"
    )
    for r in rows:
        print(
            f"{r['concurrency']:4d} {r['bare']['tokens_per_s']:10.1f} {r['petit']['tokens_per_s']:11.1f} "
            f"{r['throughput_ratio']:6.3f} {r['ttft_p50_added_ms']:12.1f} {r['ttft_p99_added_ms']:12.1f}"
        )
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
