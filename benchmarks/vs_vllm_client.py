"""`petit loadtest` beside vLLM's own benchmark client, on one server and one workload.

Both clients run closed-loop at the same concurrency against the same running
server and model, with prompts of the same shape (random token ids of one length, vLLM's
random dataset on its side and the same recipe in a prompt file on Petit's,
fresh per run so the engine's prefix cache cannot favour the later run), the same fixed output
length (`ignore_eos`) and temperature 0; runs are interleaved (vLLM, Petit,
vLLM, Petit, ...). Each run's TTFT p50/p95 is read from the client's own
result file (vLLM: ``--save-result``; Petit: report.json), and the table
compares the medians over repeats: the two clients measure the same thing when
the ratio stays within +-10 %.

    make run   # in another terminal
    .venv/bin/python benchmarks/vs_vllm_client.py [--target http://127.0.0.1:8000] [--model smollm2-135m]
        [--concurrency 4] [--duration-s 60] [--repeats 2] [--out benchmarks/results/loadtest_vs_vllm_bench.json]

Needs vLLM installed (its `vllm bench serve` is the peer). The target may be
Petit or any OpenAI-compatible server.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.vllm_bench_client import ClientRun, client_argv, read_figures, run_client  # noqa: E402
from serving.fleet.schema import load_fleet  # noqa: E402
from serving.fleet.weights import resolve_model_path  # noqa: E402


def prompts(tokenizer_path: str, run: int, n: int, tokens: int) -> list[str]:
    """n prompts of `tokens` tokens each (random token ids, like vLLM's random dataset), fresh per run."""
    import numpy as np
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    rng = np.random.default_rng(1000 + run)
    special = set(tok.all_special_ids)
    vocab = [i for i in range(tok.vocab_size) if i not in special]
    return [tok.decode(rng.choice(vocab, size=tokens).tolist()) for _ in range(n)]


def vllm_run(args: argparse.Namespace, tokenizer: str, run: int, work: Path) -> dict[str, float]:
    result = work / f"vllm-{run}.json"
    argv = client_argv(
        base_url=args.target, model=args.model, tokenizer=tokenizer, seed=1000 + run, prompts=args.requests,
        concurrency=args.concurrency, input_tokens=args.input_tokens, output_tokens=args.max_tokens,
        result=result, percentiles=(50, 95),
    )  # fmt: skip
    run_client([ClientRun(f"vllm bench run {run}", argv)], work, work / "vllm-bench.log")
    r = read_figures(result, percentiles=(50, 95))
    return {"ttft_p50_ms": r["ttft_p50_ms"], "ttft_p95_ms": r["ttft_p95_ms"], "requests": r["completed"]}


def petit_run(args: argparse.Namespace, tokenizer: str, run: int, work: Path) -> dict[str, float]:
    data = work / f"petit-{run}.jsonl"  # more prompts than it will send: none repeats within the run
    texts = prompts(tokenizer, run, 5 * args.requests, args.input_tokens)
    data.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in texts), "utf-8")
    scenario = work / f"petit-{run}.yaml"
    scenario.write_text(
        json.dumps(
            {
                "name": f"vs-vllm-{run}",
                "model": args.model,
                "duration_s": args.duration_s,
                "max_tokens": args.max_tokens,
                "extra_body": {"temperature": 0, "ignore_eos": True},
                "shape": {"kind": "constant", "users": args.concurrency},
                "prompts": {"file": str(data)},
                "poll_s": 0,
                "fail_fast_s": 0,
            }
        ),
        "utf-8",
    )  # JSON is YAML
    sla = work / "sla.yaml"
    sla.write_text(json.dumps({"slas": {args.model: {"max_error_rate": 0.0}}}), "utf-8")
    report = work / f"petit-{run}"
    cmd = [str(ROOT / ".venv" / "bin" / "petit"), "loadtest", "--target", args.target, "--scenario", str(scenario),
           "--sla", str(sla), "--report", str(report), "--quiet"]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    s = json.loads((report / "report.json").read_text("utf-8"))["summary"]
    return {"ttft_p50_ms": s["ttft_ms"]["50"], "ttft_p95_ms": s["ttft_ms"]["95"], "requests": s["ok"]}


def compare(runs: list[dict]) -> dict:
    """Median over repeats per client, and Petit's loadtest / vLLM bench ratios (pure)."""
    out: dict = {}
    for key in ("ttft_p50_ms", "ttft_p95_ms"):
        v = [r["vllm_bench"][key] for r in runs]
        p = [r["petit_loadtest"][key] for r in runs]
        ratios = [b / a for a, b in zip(v, p)]
        out[key] = {
            "vllm_bench_median": statistics.median(v),
            "petit_loadtest_median": statistics.median(p),
            "ratio_median": statistics.median(ratios),
            "ratio_per_pair": ratios,
            "within_10pct": abs(statistics.median(ratios) - 1) <= 0.10,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="http://127.0.0.1:8000")
    p.add_argument("--fleet", type=Path, default=ROOT / "deploy" / "fleet.local.yaml")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--input-tokens", type=int, default=128)
    p.add_argument("--duration-s", type=float, default=60, help="petit loadtest run length")
    p.add_argument("--requests", type=int, default=60, help="vLLM bench prompts per run (and Petit's prompt pool)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "loadtest_vs_vllm_bench.json")
    args = p.parse_args(argv)
    fleet = load_fleet(args.fleet)
    model = next(m for m in fleet.models if m.id == args.model)
    tokenizer = resolve_model_path(model, fleet.resolved_cache_dir())
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i in range(args.repeats):
            v = vllm_run(args, tokenizer, 2 * i, work)
            print(
                f"pair {i + 1}: vllm bench  TTFT p50 {v['ttft_p50_ms']:.0f} ms p95 {v['ttft_p95_ms']:.0f} ms",
                flush=True,
            )
            q = petit_run(args, tokenizer, 2 * i + 1, work)
            print(
                f"pair {i + 1}: petit loadtest TTFT p50 {q['ttft_p50_ms']:.0f} ms p95 {q['ttft_p95_ms']:.0f} ms",
                flush=True,
            )
            runs.append({"vllm_bench": v, "petit_loadtest": q})
    result = {
        "what": "petit loadtest vs vllm bench serve: same server, model, concurrency, prompt shape, output length",
        "input_tokens": args.input_tokens,
        "target": args.target,
        "model": args.model,
        "concurrency": args.concurrency,
        "max_tokens": args.max_tokens,
        "runs": runs,
        "comparison": compare(runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", "utf-8")
    for key, c in result["comparison"].items():
        print(f"{key}: vllm {c['vllm_bench_median']:.0f} ms, petit {c['petit_loadtest_median']:.0f} ms, "
              f"ratio {c['ratio_median']:.3f} (within 10%: {c['within_10pct']})")  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
