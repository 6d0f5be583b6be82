"""`petit loadtest`: run a scenario headless, judge it against an SLA file, write the report.

    petit loadtest --target URL --scenario FILE --sla FILE --report DIR
                   [--fleet FILE | --prices FILE] [--trace-dir DIR] [--fail-fast-s N]
                   [--workers N [--remote-workers M --master-bind HOST:PORT]]
    petit loadtest --rerun DIR/report.json [any option above, to override the recorded one]

Exit status: 0 every SLA line holds; 1 some SLA line fails; 2 bad input
(scenario, SLA, trace, prompt or price file); 3 the target could not be
load-tested (unreachable, no request answered, or fail fast: every request
sent in the first `fail_fast_s` seconds failed); 130 interrupted (Ctrl-C; the
partial report is written and marked partial).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

from loadtests.config_files import LoadTestInputError, load_yaml
from loadtests.pricing import load_price_table
from loadtests.prompts import SyntheticPrompts, load_prompt_file
from loadtests.provenance import collect, drift, rerun_inputs
from loadtests.results import RunResult, summary
from loadtests.scenario import ScenarioSpec, load_scenario
from loadtests.shapes import ArrivalSchedule
from loadtests.sla import SLASpec, VerdictLine, check_tenant_scopes, evaluate
from loadtests.tenant_results import tenant_summary_lines
from loadtests.tenant_traffic import tenant_keys
from loadtests.traces import load_trace
from loadtests.units import fmt_count, fmt_holds, fmt_ms, fmt_pct, fmt_rate, fmt_usd
from loadtests.workload import Workload

EXIT_PASS, EXIT_SLA, EXIT_INPUT, EXIT_TARGET, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="petit loadtest",
        description="Load-test an OpenAI-compatible endpoint against latency, cost and quality SLAs.",
    )
    p.add_argument("--target", help="base URL, e.g. http://127.0.0.1:8000 (a trailing /v1 is fine)")
    p.add_argument("--scenario", help="scenario YAML (see loadtests/examples/)")
    p.add_argument("--sla", help="SLA YAML")
    p.add_argument("--report", help="folder for report.html, report.json, samples.csv")
    p.add_argument("--fleet", help="Petit fleet config for costs and tiers (overrides the scenario's pricing)")
    p.add_argument("--prices", help="price table YAML, USD per 1M tokens (overrides the scenario's pricing)")
    p.add_argument(
        "--trace-dir",
        help="where relative trace paths resolve (default: $PETIT_TRACE_DIR or ../shared/data/traces)",
    )
    p.add_argument(
        "--fail-fast-s",
        type=float,
        help="abort with exit 3 if every request sent in the first N s fails (overrides the scenario; 0: never)",
    )
    p.add_argument("--workers", type=int, help="run a Locust master and N local worker processes (default: one)")
    p.add_argument(
        "--remote-workers",
        type=int,
        default=0,
        help="with --workers: also wait for this many workers started on other hosts (python -m loadtests.worker)",
    )
    p.add_argument("--master-bind", help="with --workers: HOST:PORT the master listens on (default 127.0.0.1:free)")
    p.add_argument(
        "--rerun",
        metavar="REPORT_JSON",
        help="repeat the run recorded in a report.json (its resolved scenario, SLA, target and options); "
        "options given here override the recorded ones",
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
        trace_dir = Path(args.trace_dir) if args.trace_dir else None
        reqs = load_trace(spec.trace.file, spec.trace.format, spec.trace.selection(), trace_dir)
        schedule = ArrivalSchedule(reqs)
        method += f"; {len(reqs)} arrivals from {spec.trace.file} x{spec.trace.time_scale:g} time"
    keys = tenant_keys(spec.tenants, os.environ)
    if spec.tenants:
        total = sum(t.share for t in spec.tenants)
        method += "; tenants " + ", ".join(f"{t.name} {t.share / total:.0%} of users" for t in spec.tenants)
    return Workload(spec, prompts, prices, schedule, keys), method


def print_summary(r: RunResult, lines: list[VerdictLine], report: Path, out) -> None:
    s = summary(r.measured(), r.window_s)
    state = " (PARTIAL)" if r.partial else ""
    print(
        f"\n=== {r.scenario}{state}: {r.target}  model={r.model}  ran {r.elapsed_s:.1f} s "
        f"(warm-up {r.warmup_s:g} s excluded) ===",
        file=out,
    )
    if r.problem:
        print(f"problem: {r.problem}", file=out)
    a = r.accounting()
    planned = "" if a.planned is None else f"planned {fmt_count(a.planned)}  not sent {fmt_count(a.not_sent)}  "
    print(
        f"accounting (whole run): {planned}sent {fmt_count(a.sent)}  completed {fmt_count(a.completed)}  "
        f"failed {fmt_count(a.failed)}  unfinished {fmt_count(a.unfinished)}",
        file=out,
    )
    note = r.saturation()
    if note:
        print(f"note: {note}", file=out)
    print(
        f"after warm-up: requests {fmt_count(s['requests'])}  ok {fmt_count(s['ok'])}  "
        f"errors {fmt_count(s['errors'])} ({fmt_pct(s['error_rate'])})  "
        f"{fmt_rate(s['requests_per_s'], 'req/s')}  {fmt_rate(s['output_tokens_per_s'], 'output tok/s')}",
        file=out,
    )
    ms = lambda d, q: fmt_ms(d[q])  # noqa: E731
    print(
        f"TTFT p50/p95/p99 {ms(s['ttft_ms'], 50)} / {ms(s['ttft_ms'], 95)} / {ms(s['ttft_ms'], 99)}  "
        f"ITL p95 {ms(s['itl_ms'], 95)}  E2E p99 {ms(s['e2e_ms'], 99)}  "
        f"cost {fmt_usd(s['cost_per_1m_output_tokens_usd'])} per 1M output tokens",
        file=out,
    )
    if s["models"]:
        print("answered by: " + ", ".join(f"{m} {fmt_count(n)}" for m, n in sorted(s["models"].items())), file=out)
    for line in tenant_summary_lines(s["tenants"]):
        print(line, file=out)
    if s["errors_by_type"]:
        examples = {}
        for smp in r.measured():
            if not smp.ok:
                examples.setdefault(smp.error_type, smp.error)
        for kind, n in sorted(s["errors_by_type"].items(), key=lambda kv: -kv[1]):
            print(f"errors: {kind} x{fmt_count(n)}: {(examples.get(kind) or '')[:120]}", file=out)
    failed = [v for v in lines if not v.passed]
    for v in failed + [v for v in lines if v.passed]:
        print(v.text(), file=out)
    verdict = "PASS" if lines and not failed and not r.problem and not r.partial else "FAIL"
    held = fmt_holds(len(lines) - len(failed), len(lines))
    print(f"verdict: {verdict} ({held})  report: {report}", file=out)


def exit_code(r: RunResult, lines: list[VerdictLine]) -> int:
    if r.partial:
        return EXIT_INTERRUPTED
    if r.problem is not None or not r.measured():
        return EXIT_TARGET
    return EXIT_PASS if lines and all(v.passed for v in lines) else EXIT_SLA


RECORDED = ("target", "fleet", "prices", "trace_dir", "fail_fast_s", "workers")


def apply_rerun(args: argparse.Namespace) -> None:
    """Fill args from a report.json's provenance (explicit options win). Raises LoadTestInputError."""
    try:
        prov = rerun_inputs(json.loads(Path(args.rerun).read_text()))
    except (OSError, ValueError) as err:
        raise LoadTestInputError(f"{args.rerun}: cannot rerun: {err}") from err
    for key in RECORDED:
        if getattr(args, key) is None:
            setattr(args, key, prov["inputs"].get(key))
    args.report = args.report or str(Path(args.rerun).resolve().parent) + "-rerun"
    folder = Path(args.report)
    folder.mkdir(parents=True, exist_ok=True)
    if args.scenario is None:
        args.scenario = str(folder / "rerun-scenario.yaml")
        Path(args.scenario).write_text(yaml.safe_dump(prov["scenario"], sort_keys=False))
    if args.sla is None:
        args.sla = str(folder / "rerun-sla.yaml")
        Path(args.sla).write_text(yaml.safe_dump(prov["sla"], sort_keys=False))
    for line in drift(prov):
        print(f"warning: {line}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run `petit loadtest`; returns the exit status (never raises for bad input or a bad target)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return int(exc.code or 0) and EXIT_INPUT
    out = sys.stdout
    try:
        if args.rerun:
            apply_rerun(args)
        missing = [f"--{k}" for k in ("target", "scenario", "sla", "report") if getattr(args, k) is None]
        if missing:
            raise LoadTestInputError(f"missing {', '.join(missing)} (or give --rerun REPORT_JSON)")
        spec = load_scenario(args.scenario)
        if args.fail_fast_s is not None:
            spec = spec.model_copy(update={"fail_fast_s": args.fail_fast_s})
        sla = load_yaml(args.sla, SLASpec, "SLA")
        check_tenant_scopes(sla, [t.name for t in spec.tenants], args.sla)
        workload, method = build_workload(spec, args)
    except LoadTestInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT
    inputs = {k: getattr(args, k) for k in ("target", "scenario", "sla", *RECORDED)}
    prov = collect(argv, spec.model_dump(mode="json"), sla.model_dump(mode="json"), inputs)
    if not args.quiet:
        print(
            f"load test '{spec.name}': {spec.shape.kind} load on {args.target} for {spec.duration_s:g}s "
            f"(warm-up {spec.warmup_s:g}s); prompts: {method}",
            file=out,
            flush=True,
        )
    if args.workers or args.remote_workers:
        from loadtests import distributed  # imports Locust only for a real run

        result = distributed.run(spec, workload, args, out=None if args.quiet else out)
    else:
        from loadtests import runner  # imports Locust (and gevent's monkey patching) only for a real run

        result = runner.run(spec, workload, args.target, out=None if args.quiet else out)
    result.prompt_method, result.provenance = method, prov
    if result.problem is None and not result.samples:
        result.problem = "no request completed during the run (is the scenario too short?)"
    lines = evaluate(sla, result.measured(), result.window_s, workload.prices) if result.measured() else []
    from loadtests.report import write_report  # matplotlib: only when writing a report

    report = write_report(result, lines, args.report)
    print_summary(result, lines, report, out)
    return exit_code(result, lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
