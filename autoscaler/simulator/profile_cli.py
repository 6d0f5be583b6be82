"""`petit profile --target URL --model ID [--out FILE]`: measure one running replica and write the
profile file the simulator reads (`profiles: {ID: FILE}` in a scenario).

The measuring client is loadtests/profiler.py, the fit autoscaler/simulator/measured.py. What
the measurement cannot tell (batch limits, KV capacity, start-up time) comes from the options,
else from the model's entry in `--fleet`, else vLLM's CPU defaults. Progress goes to stderr;
the fitted profile and the per-cell table to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from autoscaler.simulator.measured import (
    ProfileFile,
    ProfileFitError,
    ProfileLimits,
    ProfileProvenance,
    ProfileSample,
    build_points,
    fit_profile,
    write_profile_file,
)
from loadtests.profiler import CellSamples, ProfilerError, SweepSpec, sweep
from loadtests.prompts import SyntheticPrompts
from serving.fleet.schema import FleetConfigError, load_fleet


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="petit profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, help="base URL of the OpenAI-compatible endpoint")
    p.add_argument("--model", required=True, help="model id to profile (as in /v1/models)")
    p.add_argument("--out", help="profile file to write (.yaml or .json; default: <model>.profile.yaml)")
    p.add_argument("--concurrency", type=_ints, default=(1, 2, 4, 8), help="batch sizes (default 1,2,4,8)")
    p.add_argument("--prompt-tokens", type=_ints, default=(64, 256, 1024), help="prompt lengths (default 64,256,1024)")
    p.add_argument("--output-tokens", type=int, default=32, help="answer length (default 32)")
    p.add_argument("--rounds", type=int, default=2, help="batches per cell (default 2)")
    p.add_argument("--endpoint", choices=("chat", "completions"), default="chat")
    p.add_argument("--tokenizer", help="local HF model folder for exact prompt lengths (else ~0.75 words/token)")
    p.add_argument("--fleet", help="fleet YAML: the model's max_num_seqs / max_num_batched_tokens")
    p.add_argument("--max-num-seqs", type=int, help="engine batch limit (default: fleet, else 256)")
    p.add_argument("--max-batched-tokens", type=int, help="chunked-prefill budget (default: fleet, else 2048)")
    p.add_argument("--kv-tokens", type=int, default=400_000, help="KV-cache capacity in tokens (default 400000)")
    p.add_argument("--startup-s", type=float, default=60.0, help="seconds from placement to ready (default 60)")
    return p


def _limits(args: argparse.Namespace) -> ProfileLimits:
    seqs, batched = args.max_num_seqs, args.max_batched_tokens
    if args.fleet:
        fleet = load_fleet(args.fleet)
        if args.model in fleet.model_ids:
            engine = fleet.model(args.model).engine
            seqs = seqs or engine.max_num_seqs
            batched = batched or engine.max_num_batched_tokens
    defaults = ProfileLimits()
    return ProfileLimits(
        max_num_seqs=seqs or defaults.max_num_seqs,
        max_batched_tokens=batched or defaults.max_batched_tokens,
        kv_tokens=args.kv_tokens,
        startup_s=args.startup_s,
    )


def to_profile_samples(cells: list[CellSamples]) -> tuple[list[ProfileSample], int]:
    """The answered requests as fit input, and how many failed."""
    out, failed = [], 0
    for cell in cells:
        for s in cell.samples:
            if not s.ok or s.ttft_s is None or s.prompt_tokens is None or s.output_tokens is None:
                failed += 1
                continue
            out.append(
                ProfileSample(
                    cell.concurrency, cell.prompt_tokens, s.prompt_tokens, s.output_tokens, s.ttft_s, s.tpot_s
                )
            )
    return out, failed


def _progress(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _table(doc: ProfileFile) -> str:
    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}"

    rows = [
        "| c | prompt | requests | TTFT ms | sim TTFT ms | TPOT ms | sim TPOT ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for pt in doc.points:
        rows.append(
            f"| {pt.concurrency} | {pt.prompt_tokens} | {pt.requests} | {fmt(pt.ttft_ms)} | "
            f"{fmt(pt.simulated_ttft_ms)} | {fmt(pt.tpot_ms)} | {fmt(pt.simulated_tpot_ms)} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    spec = SweepSpec(args.concurrency, args.prompt_tokens, args.output_tokens, args.rounds, args.endpoint)
    try:
        limits = _limits(args)
        prompts = SyntheticPrompts(args.tokenizer)
        _progress(f"profiling {args.model} at {args.target} ({prompts.method})")
        info, cells = asyncio.run(
            sweep(args.target, args.model, spec, prompts, _progress, os.environ.get("PETIT_API_KEY"))
        )
        samples, failed = to_profile_samples(cells)
        fit = fit_profile(samples, limits, exact_prompts=prompts.tokenizer is not None)
    except (ProfilerError, ProfileFitError, FleetConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    max_len = info.get("max_model_len")
    doc = ProfileFile(
        profile=fit.profile,
        provenance=ProfileProvenance(
            target=args.target,
            model=args.model,
            measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            tool="petit profile " + " ".join(argv if argv is not None else sys.argv[1:]),
            max_model_len=max_len if isinstance(max_len, int) else None,
            template_tokens=fit.template_tokens,
            requests=len(samples),
            failed=failed,
            decode_rmse_ms=fit.decode_rmse_ms,
            prefill_rmse_ms=fit.prefill_rmse_ms,
        ),
        points=build_points(samples, fit.profile),
    )
    out = write_profile_file(args.out or f"{args.model}.profile.yaml", doc)
    p = fit.profile
    print(
        f"{args.model}: t0 {p.t0_ms:.2f} ms, t1 {p.t1_ms:.3f} ms/seq, prefill {p.prefill_ms_per_token:.4f} ms/token, "
        f"kv {p.kv_ms_per_token:.2e} ms/context token, overhead {p.ttft_overhead_ms:.1f} ms "
        f"({len(samples)} requests, {failed} failed)"
    )
    print(_table(doc))
    print(f"wrote {Path(out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
