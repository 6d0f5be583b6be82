"""Resident memory of the running default fleet (both engines, Ray, ingress).

Starts the fleet with the local runner, sends a few requests to each model so
the engines have allocated what they use, then sums the proportional set size
(PSS: shared pages split between the processes sharing them, so nothing is
counted twice) of this process and every process below it: Ray's GCS and
raylet, the Serve controller and proxy, the ingress, the model replicas and
vLLM's engine-core and worker processes.

    .venv/bin/python benchmarks/memory.py [--fleet deploy/fleet.local.yaml]

Writes benchmarks/results/memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serving.fleet.schema import load_fleet  # noqa: E402

LIMIT_GIB = 14.0


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def tree(root: int) -> list[int]:
    seen, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.append(pid)
            todo += children(pid)
    return seen


def pss_kib(pid: int) -> int:
    try:
        m = re.search(r"^Pss:\s+(\d+)", Path(f"/proc/{pid}/smaps_rollup").read_text(), re.M)
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


def name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()[:80]
    except OSError:
        return "?"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fleet", default=str(ROOT / "deploy" / "fleet.local.yaml"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "memory.json"))
    args = p.parse_args()
    from serving.runner import LocalStack

    fleet = load_fleet(args.fleet)
    stack = LocalStack(fleet)
    try:
        stack.start()
        for mid in fleet.model_ids:
            for _ in range(3):
                httpx.post(
                    f"{stack.url}/v1/chat/completions",
                    timeout=300,
                    json={"model": mid, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 32},
                ).raise_for_status()
        procs = sorted(((pss_kib(pid), pid, name(pid)) for pid in tree(os.getpid())), reverse=True)
    finally:
        stack.stop()
    total_gib = sum(k for k, _, _ in procs) / 2**20
    result = {
        "fleet": args.fleet,
        "total_pss_gib": round(total_gib, 2),
        "limit_gib": LIMIT_GIB,
        "within_limit": total_gib <= LIMIT_GIB,
        "processes": [{"pss_mib": round(k / 1024), "pid": pid, "cmd": cmd} for k, pid, cmd in procs if k],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    for row in result["processes"][:12]:
        print(f"{row['pss_mib']:7d} MiB  {row['cmd']}")
    print(f"\ntotal PSS: {total_gib:.2f} GiB (limit {LIMIT_GIB} GiB) -> {args.out}")
    return 0 if total_gib <= LIMIT_GIB else 1


if __name__ == "__main__":
    sys.exit(main())
