"""Decision latency of the learned router on CPU, embedding included.

One decision = MiniLM embedding of the prompt + classifier + the routing
pipeline (filters, scorers, picker) over a two-model fleet snapshot. Measured
in-process with perf_counter after a warm-up, sequentially (one prompt at a
time, the worst case for batching), for a typical chat-length prompt and a
short and a long one. Exact percentiles from the raw samples. Both encoder
runtimes run in the same invocation, one after the other: `onnx-int8` (what
serving uses) and `st` (sentence-transformers on torch, the baseline).

    .venv/bin/python benchmarks/router_latency.py [--n 300] [--threads N] [--encoders onnx-int8,st]

Writes benchmarks/results/router_latency.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from loadtests.metrics import percentile  # noqa: E402
from serving.fleet.schema import RoutingConfig  # noqa: E402
from serving.router.build import build_router  # noqa: E402
from serving.router.policies import route  # noqa: E402
from serving.router.predictor import EncoderFactory  # noqa: E402
from serving.router.types import FleetSnapshot, ModelSnapshot, RouteRequest  # noqa: E402

PROMPTS = {
    "short (~12 tokens)": "What is the capital of Australia? Answer in one word.",
    "chat (~70 tokens)": (
        "I'm planning a three-day trip to Lisbon in early spring with my parents, who don't walk "
        "much. Could you suggest a relaxed itinerary with a couple of good seafood restaurants, "
        "and tell me whether we should rent a car or rely on trams and taxis?"
    ),
    "long (128+ tokens, truncated)": " ".join(
        ["Summarise the following meeting notes into five bullet points:"]
        + ["the team discussed the quarterly roadmap, hiring, and budget."] * 20
    ),
}
TARGET_P99_MS = 5.0


def pct(xs: list[float], q: float) -> float:
    """Milliseconds at percentile `q` of durations in seconds (the load tests' exact percentile)."""
    return percentile([x * 1e3 for x in xs], q)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--threads", type=int, default=None, help="torch threads for `st` (default: torch's choice)")
    p.add_argument("--encoders", default="onnx-int8,st", help="comma-separated encoder runtimes to measure")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "router_latency.json")
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    fleet = FleetSnapshot(
        (
            ModelSnapshot("small", "small", 0, 2048, 0.05, 260, 0.1, 1),
            ModelSnapshot("large", "large", 2, 4096, 0.05, 87, 0.1, 1),
        )
    )
    by_encoder = {}
    for kind in args.encoders.split(","):
        router = build_router(RoutingConfig(default_policy="learned"), encoder_factory=EncoderFactory(kind))
        tok = (
            router.predictor._encoder_or_none()._tokenizer
            if kind != "st"
            else router.predictor._encoder_or_none()._model.tokenizer
        )  # for reporting token counts only
        results = {}
        for name, text in PROMPTS.items():
            for _ in range(20):
                router.predictor.predict([text])
            embed, decide, total = [], [], []
            for _ in range(args.n):
                t0 = time.perf_counter()
                pred = router.predictor.predict([text])[0]
                t1 = time.perf_counter()
                route(RouteRequest("auto", 256, {"small": 80, "large": 80}, prediction=pred), fleet, router.default)
                t2 = time.perf_counter()
                embed.append(t1 - t0), decide.append(t2 - t1), total.append(t2 - t0)
            results[name] = {
                "tokens": len(tok(text)["input_ids"]),
                "n": args.n,
                "embed_classify_ms": {"p50": pct(embed, 50), "p99": pct(embed, 99)},
                "route_ms": {"p50": pct(decide, 50), "p99": pct(decide, 99)},
                "total_ms": {"p50": pct(total, 50), "p99": pct(total, 99), "max": pct(total, 100)},
            }
            r = results[name]
            print(
                f"{kind:10s} {name:32s} {r['tokens']:4d} tok  total p50 {r['total_ms']['p50']:6.2f} ms  "
                f"p99 {r['total_ms']['p99']:6.2f} ms  (route only p99 {r['route_ms']['p99']:.3f} ms)",
                flush=True,
            )
        by_encoder[kind] = results
        max_len = router.predictor.artifact.max_seq_length
        router.predictor.close()
    report = {
        "target_p99_ms": TARGET_P99_MS,
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(),
            "load_avg_at_end": os.getloadavg(),
        },
        "encoder_max_seq_length": max_len,
        "results": by_encoder,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
