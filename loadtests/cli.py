"""`petit loadtest`: run a scenario headless, judge it against an SLA file, write the report.

    petit loadtest --target URL --scenario FILE --sla FILE --report DIR
                   [--fleet FILE | --prices FILE] [--trace-dir DIR]

Exit status: 0 every SLA line holds; 1 some SLA line fails; 2 bad input
(scenario, SLA, trace, prompt or price file); 3 the target could not be
load-tested (unreachable, no request answered); 130 interrupted (Ctrl-C; the
partial report is written and marked partial).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadtests.config_files import LoadTestInputError, load_yaml
from loadtests.pricing import load_price_table
from loadtests.prompts import SyntheticPrompts, load_prompt_file
from loadtests.results import RunResult, summary
from loadtests.scenario import ScenarioSpec, load_scenario
from loadtests.shapes import ArrivalSchedule
from loadtests.sla import SLASpec, VerdictLine, evaluate
from loadtests.traces import load_trace
from loadtests.workload import Workload

EXIT_PASS, EXIT_SLA, EXIT_INPUT, EXIT_TARGET, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="petit loadtest",
        description="Load-test an OpenAI-compatible endpoint against latency, cost and quality SLAs.",
    )
    p.add_argument("--target", required=True, help="base URL, e.g. http://127.0.0.1:8000 (a trailing /v1 is fine)")
    p.add_argument("--scenario", required=True, help="scenario YAML (see loadtests/examples/)")
    p.add_argument("--sla", required=True, help="SLA YAML")
    p.add_argument("--report", required=True, help="folder for report.html, report.json, samples.csv")
    p.add_argument("--fleet", help="Petit fleet config for costs and tiers (overrides the scenario's pricing)")
    p.add_argument("--prices", help="price table YAML, USD per 1M tokens (overrides the scenario's pricing)")
    p.add_argument(
        "--trace-dir",
        type=Path,
        help="where relative trace paths resolve (default: $PETIT_TRACE_DIR or ../shared/data/traces)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def build_workload(spec: ScenarioSpec, args: argparse.Namespace) -> tuple[Workload, str]:
    """Prompts, trace and prices for the run. Raises LoadTestInputError."""
    if args.fleet or args.prices:
        prices = load_price_table(args.prices, args.fleet)
    else:
        prices = load_price_table(spec.pricing.prices, spec.pricing.fleet)
    if spec.prompts.file is not None:
        prompts: SyntheticPrompts | list = load_prompt_file(spec.prompts.file)
        method = f"{len(prompts)} prompts from {spec.prompts.file}"
    else:
        prompts = SyntheticPrompts(spec.prompts.synthetic.tokenizer if spec.prompts.synthetic else None)
        method = f"synthetic ({prompts.method})"
    schedule = None
    if spec.trace is not None:
        reqs = load_trace(spec.trace.file, spec.trace.format, spec.trace.selection(), args.trace_dir)
        schedule = ArrivalSchedule(reqs)
        method += f"; {len(reqs)} arrivals from {spec.trace.file} x{spec.trace.time_scale:g} time"
    return Workload(spec, prompts, prices, schedule), method


def print_summary(r: RunResult, lines: list[VerdictLine], report: Path, out) -> None:
    s = summary(r.measured(), r.window_s)
    state = " (PARTIAL)" if r.partial else ""
    print(
        f"\n=== {r.scenario}{state}: {r.target}  model={r.model}  ran {r.elapsed_s:.1f}s "
        f"(warm-up {r.warmup_s:g}s excluded) ===",
        file=out,
    )
    if r.problem:
        print(f"problem: {r.problem}", file=out)
    ms = lambda d, q: "n/a" if d[q] is None else f"{d[q]:.0f}"  # noqa: E731
    print(
        f"requests {s['requests']}  ok {s['ok']}  errors {s['errors']}  "
        f"req/s {s['requests_per_s'] or 0:.2f}  out tok/s {s['output_tokens_per_s'] or 0:.1f}",
        file=out,
    )
    print(
        f"TTFT ms p50/p95/p99 {ms(s['ttft_ms'], 50)}/{ms(s['ttft_ms'], 95)}/{ms(s['ttft_ms'], 99)}  "
        f"ITL p95 {ms(s['itl_ms'], 95)}  E2E p99 {ms(s['e2e_ms'], 99)}  "
        f"USD/1M out {s['cost_per_1m_output_tokens_usd'] or 0:.4g}",
        file=out,
    )
    if s["models"]:
        print("answered by: " + ", ".join(f"{m} {n}" for m, n in sorted(s["models"].items())), file=out)
    if s["errors_by_type"]:
        examples = {}
        for smp in r.measured():
            if not smp.ok:
                examples.setdefault(smp.error_type, smp.error)
        for kind, n in sorted(s["errors_by_type"].items(), key=lambda kv: -kv[1]):
            print(f"errors: {kind} x{n}: {(examples.get(kind) or '')[:120]}", file=out)
    failed = [v for v in lines if not v.passed]
    for v in failed + [v for v in lines if v.passed]:
        print(v.text(), file=out)
    verdict = "PASS" if lines and not failed and not r.problem and not r.partial else "FAIL"
    print(f"verdict: {verdict} ({len(lines) - len(failed)}/{len(lines)} SLA lines hold)  report: {report}", file=out)


def exit_code(r: RunResult, lines: list[VerdictLine]) -> int:
    if r.partial:
        return EXIT_INTERRUPTED
    if r.problem is not None or not r.measured():
        return EXIT_TARGET
    return EXIT_PASS if lines and all(v.passed for v in lines) else EXIT_SLA


def main(argv: list[str] | None = None) -> int:
    """Run `petit loadtest`; returns the exit status (never raises for bad input or a bad target)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return int(exc.code or 0) and EXIT_INPUT
    out = sys.stdout
    try:
        spec = load_scenario(args.scenario)
        sla = load_yaml(args.sla, SLASpec, "SLA")
        workload, method = build_workload(spec, args)
    except LoadTestInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT
    from loadtests import runner  # imports Locust (and gevent's monkey patching) only for a real run

    if not args.quiet:
        print(
            f"load test '{spec.name}': {spec.shape.kind} load on {args.target} for {spec.duration_s:g}s "
            f"(warm-up {spec.warmup_s:g}s); prompts: {method}",
            file=out,
            flush=True,
        )
    result = runner.run(spec, workload, args.target, out=None if args.quiet else out)
    result.prompt_method = method
    if result.problem is None and not result.samples:
        result.problem = "no request completed during the run (is the scenario too short?)"
    lines = evaluate(sla, result.measured(), result.window_s, workload.prices) if result.measured() else []
    from loadtests.report import write_report  # matplotlib: only when writing a report

    report = write_report(result, lines, args.report)
    print_summary(result, lines, report, out)
    return exit_code(result, lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
