"""How much load one Locust process generates, and how accurately it measures TTFT.

Starts the fake OpenAI server (loadtests/fake_server.py: fixed TTFT and token
rate), then runs `petit loadtest` (loadtests.cli) with a constant number of
streaming users for each level of a sweep. For each level it records the
streams in flight, streamed requests/s completed, the load generator's CPU,
and the TTFT error: measured TTFT minus the fake server's known TTFT (p50,
p95). Target: >= 200 concurrent streams and >= 100 streamed requests/s with
TTFT error <= 5 ms at p50.

    .venv/bin/python benchmarks/loadgen.py [--users 50,100,200,300] [--duration 12]

Writes benchmarks/results/loadgen.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadtests.metrics import percentile  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_fake(ttft: float, itl: float) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadtests.fake_server",
            "--port",
            str(port),
            "--ttft",
            str(ttft),
            "--itl",
            str(itl),
            "--petit",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    if not proc.stdout.readline().startswith("READY"):
        raise SystemExit("fake server did not start")
    return proc, f"http://127.0.0.1:{port}"


def run_level(target: str, users: int, args: argparse.Namespace, work: Path) -> dict:
    scen, sla, rep = work / f"s{users}.yaml", work / "sla.yaml", work / f"rep{users}"
    scen.write_text(
        f"name: loadgen-{users}\nduration_s: {args.duration}\nwarmup_s: {args.warmup}\n"
        f"max_tokens: {args.tokens}\nshape: {{kind: constant, users: {users}, spawn_rate: 100}}\n"
    )
    sla.write_text("slas: {all: {max_error_rate: 0}}\n")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtests.cli",
            "--target",
            target,
            "--scenario",
            str(scen),
            "--sla",
            str(sla),
            "--report",
            str(rep),
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    doc = json.loads((rep / "report.json").read_text())
    ok = [s for s in doc["samples"] if s["ok"] and not s["warmup"]]
    window = doc["run"]["elapsed_s"] - doc["run"]["warmup_s"]
    err_ms = [(s["ttft_s"] - args.ttft) * 1000 for s in ok]
    itl_err = [(x - args.itl) * 1000 for s in ok for x in s["itl_s"]]
    in_flight = sum(s["e2e_s"] for s in ok) / window if window > 0 else 0.0  # Little's law
    return {
        "users": users,
        "exit_code": proc.returncode,
        "requests": len(doc["samples"]),
        "errors": sum(1 for s in doc["samples"] if not s["ok"]),
        "streams_in_flight": round(in_flight, 1),
        "streamed_requests_per_s": round(len(ok) / window, 1),
        "tokens_per_s": round(len(ok) * args.tokens / window),
        "ttft_error_ms": {
            "p50": round(percentile(err_ms, 50), 2),
            "p95": round(percentile(err_ms, 95), 2),
            "p99": round(percentile(err_ms, 99), 2),
        }
        if err_ms
        else None,
        "itl_error_ms_p50": round(percentile(itl_err, 50), 2) if itl_err else None,
        "loadgen_cpu_s_per_s": round((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / wall, 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", default="50,100,200,300")
    p.add_argument("--duration", type=float, default=12)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--ttft", type=float, default=0.1)
    p.add_argument("--itl", type=float, default=0.05)
    p.add_argument("--tokens", type=int, default=20)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "loadgen.json")
    args = p.parse_args()
    fake, target = start_fake(args.ttft, args.itl)
    levels = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for users in [int(u) for u in args.users.split(",")]:
                levels.append(run_level(target, users, args, Path(tmp)))
                print(json.dumps(levels[-1]), flush=True)
    finally:
        fake.terminate()
        fake.wait(10)
    good = [lv for lv in levels if lv["errors"] == 0 and lv["ttft_error_ms"] and lv["ttft_error_ms"]["p50"] <= 5]
    best = max(good, key=lambda lv: lv["streamed_requests_per_s"], default=None)
    result = {
        "benchmark": "loadgen",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "fake_server": {
            "ttft_s": args.ttft,
            "itl_s": args.itl,
            "tokens": args.tokens,
            "request_s": args.ttft + args.itl * (args.tokens - 1),
        },
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "levels": levels,
        "sustained": best,
        "target": {"streams": 200, "requests_per_s": 100, "ttft_error_ms_p50": 5},
        "meets_target": bool(
            best and best["streams_in_flight"] >= 200 * 0.95 and best["streamed_requests_per_s"] >= 100
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}; sustained: {best}; meets target: {result['meets_target']}")


if __name__ == "__main__":
    main()
