"""`petit simulate SCENARIO [--out DIR] [--policies ...]`: run and compare policies (or `--capacity`,
`--fidelity REPORT_JSON`, `--zoo`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from autoscaler.simulator.hindsight import hindsight_for
from autoscaler.simulator.policies import build_policy
from autoscaler.simulator.report import add_gaps, priority_table, table, write
from autoscaler.simulator.run import simulate
from autoscaler.simulator.scenario import Scenario, ScenarioError, load_sim_scenario
from autoscaler.simulator.traces import Trace, TraceError
from autoscaler.simulator.workloads import scenario_trace
from serving.fleet.schema import FleetConfig, FleetConfigError, load_fleet


def _bar(policy: str) -> Callable[[float], None]:
    def show(frac: float) -> None:
        n = int(frac * 30)
        sys.stderr.write(f"\r  {policy:<12} [{'#' * n}{'.' * (30 - n)}] {frac:4.0%}")
        sys.stderr.flush()

    return show


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", help="scenario YAML (see autoscaler/README.md)")
    p.add_argument(
        "--zoo",
        nargs="?",
        const="",
        help="instead: run every scenario of a folder (default autoscaler/examples/zoo) and write one "
        "table, zoo.json + zoo.md, under --out",
    )
    p.add_argument("--short", action="store_true", help="with --zoo: the short versions (the unit tests')")
    p.add_argument("--out", default="simulation-out", help="output folder (default: simulation-out)")
    p.add_argument("--policies", nargs="*", help="subset of the scenario's policies")
    p.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    p.add_argument("--data-dir", help="override the data directory (traces)")
    p.add_argument(
        "--capacity",
        action="store_true",
        help="instead: measure each model's capacity at the TTFT SLO on its profile and the "
        "trace's request sizes, next to the configured capacity_tokens_per_s",
    )
    p.add_argument(
        "--fidelity",
        metavar="REPORT_JSON",
        help="instead: compare the simulated TTFT p50/p95 and SLO attainment with a `petit loadtest` "
        "report.json of the same trace (autoscaler/simulator/fidelity.py); writes fidelity.json",
    )
    p.add_argument("--model", help="with --fidelity: the model (default: the report's run.model)")
    p.add_argument("--tolerance", type=float, default=0.2, help="with --fidelity: allowed |ratio - 1| (0.2)")


def load_run(scenario: str | Path, data_dir: str | None = None) -> tuple[Scenario, FleetConfig, Trace]:
    """The scenario, its fleet and its trace window. Raises ScenarioError, TraceError, FleetConfigError."""
    sc, fleet_path = load_sim_scenario(scenario)
    if data_dir:
        sc = sc.model_copy(update={"data_dir": data_dir})
    fleet = load_fleet(fleet_path)
    missing = [m for m in fleet.model_ids if m not in sc.profiles]
    if missing:
        raise ScenarioError(f"{scenario}: profiles: no profile for model(s) {', '.join(missing)}")
    return sc, fleet, scenario_trace(sc)


def run(args: argparse.Namespace) -> int:
    """Simulate every policy on the same trace; print the table; write the outputs."""
    if args.zoo is not None:
        return _zoo(args)
    if not args.scenario:
        print("error: a scenario YAML or --zoo is needed", file=sys.stderr)
        return 2
    try:
        sc, fleet, trace = load_run(args.scenario, args.data_dir)
    except (ScenarioError, TraceError, FleetConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.capacity:
        return _capacity(sc, fleet, trace, Path(args.out))
    if args.fidelity:
        return _fidelity(args, sc, fleet, trace)
    results = []
    names = args.policies or sc.policies
    hs = hindsight_for(sc, fleet, trace) if {"upper_bound", "static_optimum"} & set(names) else None
    for name in names:
        policy = build_policy(name, fleet, sc, hs)
        results.append(simulate(sc, fleet, trace, policy, progress=_bar(name)))
        _bar(name)(1.0)
        sys.stderr.write("\n")
    add_gaps(results)
    print(table(results))
    if by_priority := priority_table(results):
        print("\n" + by_priority)
    files = write(Path(args.out), sc.name, results, plots=not args.no_plots)
    print("wrote " + ", ".join(str(f) for f in files))
    return 0


def _zoo(args: argparse.Namespace) -> int:
    from autoscaler.simulator.zoo import ZOO_DIR, run_zoo, zoo_markdown

    try:
        rows = run_zoo(Path(args.zoo) if args.zoo else ZOO_DIR, Path(args.out), args.data_dir, args.short)
    except (ScenarioError, TraceError, FleetConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(zoo_markdown(rows))
    print(f"wrote {Path(args.out) / 'zoo.json'}, {Path(args.out) / 'zoo.md'}")
    return 0


def _fidelity(args: argparse.Namespace, sc: Scenario, fleet: FleetConfig, trace: Trace) -> int:
    """Print and write (fidelity.json) simulated vs measured; exit 0 when within tolerance, 1 if not."""
    from autoscaler.simulator.fidelity import fidelity_table, run_fidelity

    try:
        res = run_fidelity(sc, fleet, trace, Path(args.fidelity), Path(args.out), args.tolerance, args.model)
    except ValueError as err:  # ScenarioError included
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{res['model']}: {res['simulated']['requests']} simulated, {res['measured']['requests']} measured requests")
    print(fidelity_table(res))
    print(
        f"{'PASS' if res['passed'] else 'FAIL'} (within +-{args.tolerance:.0%}); wrote {Path(args.out) / 'fidelity.json'}"
    )
    return 0 if res["passed"] else 1


def _capacity(sc: Scenario, fleet: FleetConfig, trace: Trace, out: Path) -> int:
    """Print and write (capacity.json) measured vs configured capacity per model."""
    import json

    from autoscaler.simulator.capacity import capacity_at_slo

    slo_s = fleet.slo.ttft_p95_ms / 1000.0
    rows, data = (
        [
            "| model | configured tok/s | measured at SLO tok/s | ratio | rate req/s | TTFT p95 s |",
            "|---|---|---|---|---|---|",
        ],
        {},
    )
    for mid in fleet.model_ids:
        m = fleet.model(mid)
        sys.stderr.write(f"measuring {mid} ...\n")
        c = capacity_at_slo(
            sc.profile(mid),
            m.resources.gpus,
            trace.input_tokens,
            trace.output_tokens,
            slo_s,
            m.prefill_token_weight,
            tick_s=sc.tick_s,
        )
        ratio = c.work_tokens_per_s / m.capacity_tokens_per_s
        rows.append(
            f"| {mid} | {m.capacity_tokens_per_s:g} | {c.work_tokens_per_s:.0f} | {ratio:.2f} | "
            f"{c.rate_rps:.2f} | {c.ttft_p95_s:.2f} |"
        )
        data[mid] = {
            "configured_tokens_per_s": m.capacity_tokens_per_s,
            "measured_tokens_per_s": c.work_tokens_per_s,
            "rate_rps": c.rate_rps,
            "ttft_p95_s": c.ttft_p95_s,
            "slo_ttft_p95_s": slo_s,
        }
    print("\n".join(rows))
    out.mkdir(parents=True, exist_ok=True)
    (out / "capacity.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out / 'capacity.json'}  (work tokens/s: output + prefill_token_weight x input)")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="petit simulate", description=__doc__)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
