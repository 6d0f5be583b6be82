"""Entry points for `petit autoscaler run|budget` and `petit simulate`.

main(["autoscaler", "run", "--fleet", F])        the control loop (+ /metrics, /admin/budget)
main(["autoscaler", "budget", "--set", "8", "--url", U])   change a fixed budget at run time
main(["autoscaler", "budget", "--url", U])       show it
main(["simulate", SCENARIO, "--out", DIR])       compare policies on a trace
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request

from serving.fleet.schema import FleetConfigError, load_fleet

DEFAULT_ADMIN_URL = "http://127.0.0.1:9091"


def cmd_run(args: argparse.Namespace) -> int:
    import threading

    from prometheus_client import CollectorRegistry

    from autoscaler.probes import ThreadedServer, build_probe_app, probe_status
    from autoscaler.ray_link import RayLink
    from autoscaler.service import AutoscalerService, serve_adapters

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        fleet = load_fleet(args.fleet)
    except FleetConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not args.ray_address:
        print(
            "error: --ray-address (or $RAY_ADDRESS) is required: the controller reads load from and applies "
            "plans to a running Petit application on Ray Serve",
            file=sys.stderr,
        )
        return 2
    registry, link, started_at = CollectorRegistry(), RayLink(args.ray_address), time.time()
    holder: dict[str, AutoscalerService] = {}

    def status():
        plan = holder["service"].controller.last_plan if "service" in holder else None
        at = None if plan is None else plan.at
        return probe_status(time.time(), started_at, at, fleet.autoscaler.period_s, link.state)

    # Probes first: /healthz answers while Ray is still coming up (live, not ready).
    port = int(os.environ.get("PETIT_METRICS_PORT", args.metrics_port))
    ThreadedServer(build_probe_app(registry, status), "0.0.0.0", port).start()
    if not connect_ray(args.ray_address, args.connect_timeout_s, link=link):
        return 1
    from autoscaler.admin import TOKEN_ENV, AdminConfigError

    try:
        service = AutoscalerService.for_serve(
            fleet,
            registry,
            args.admin_host,
            args.admin_port,
            os.environ.get(TOKEN_ENV) or None,
            args.pods_namespace or None,
        )
    except AdminConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    holder["service"] = service

    def rewire() -> None:
        """After a reconnect the old actor handles are gone: look the board up again."""
        ctl = service.controller
        ctl.signals, ctl.replicas, ctl.routing = serve_adapters(fleet)

    watch_stop = threading.Event()
    threading.Thread(
        target=link.watch, args=(watch_stop, fleet.autoscaler.period_s, rewire), daemon=True, name="petit-ray-link"
    ).start()
    signal.signal(signal.SIGTERM, lambda *_: service.request_stop())
    signal.signal(signal.SIGINT, lambda *_: service.request_stop())
    try:
        service.run_forever()
    finally:
        watch_stop.set()
    return 0


def connect_ray(address: str, timeout_s: float, sleep=time.sleep, clock=time.monotonic, link=None) -> bool:
    """Connect to the Ray cluster, retrying with backoff while it comes up (a pod may start before the head)."""
    from autoscaler.ray_link import RayLink

    link = link or RayLink(address, sleep=sleep, clock=clock)
    if link.connect(timeout_s):
        return True
    print(f"error: cannot reach Ray at {address} after {timeout_s:.0f}s", file=sys.stderr)
    return False


def cmd_budget(args: argparse.Namespace) -> int:
    url = args.url.rstrip("/") + "/admin/budget"
    data = json.dumps({"gpus": args.set}).encode() if args.set is not None else None
    headers = {"content-type": "application/json"}
    token = os.environ.get("PETIT_ADMIN_TOKEN")
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            print(resp.read().decode())
            return 0
    except urllib.error.HTTPError as err:
        print(f"error: {url}: HTTP {err.code}: {err.read().decode()}", file=sys.stderr)
    except urllib.error.URLError as err:
        print(f"error: {url}: {err.reason}", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    from autoscaler.simulator import cli as sim_cli

    p = argparse.ArgumentParser(prog="petit")
    sub = p.add_subparsers(dest="cmd", required=True)
    auto = sub.add_parser("autoscaler", help="the GPU-scarcity autoscaler").add_subparsers(dest="sub", required=True)
    run = auto.add_parser("run", help="run the control loop")
    run.add_argument("--fleet", required=True)
    run.add_argument("--metrics-port", type=int, default=9090, help="overridden by $PETIT_METRICS_PORT")
    run.add_argument(
        "--admin-host", default="127.0.0.1", help="beyond loopback it needs $PETIT_ADMIN_TOKEN (bearer token)"
    )
    run.add_argument("--admin-port", type=int, default=9091)
    run.add_argument(
        "--ray-address",
        default=os.environ.get("RAY_ADDRESS"),
        help="the Ray cluster serving Petit (e.g. 'auto'; required)",
    )
    run.add_argument(
        "--connect-timeout-s",
        type=float,
        default=600,
        help="keep retrying to reach Ray this long (the head may still be starting)",
    )
    run.add_argument(
        "--pods-namespace",
        default=os.environ.get("PETIT_PODS_NAMESPACE"),
        help="kubernetes GPU source: list pods in this namespace only (default: every namespace)",
    )
    run.set_defaults(fn=cmd_run)
    bud = auto.add_parser("budget", help="show or set the fixed GPU budget of a running controller")
    bud.add_argument("--set", type=float, default=None, metavar="N")
    bud.add_argument("--url", default=DEFAULT_ADMIN_URL)
    bud.set_defaults(fn=cmd_budget)
    sim = sub.add_parser("simulate", help="compare autoscaling policies on a trace")
    sim_cli.add_arguments(sim)
    sim.set_defaults(fn=sim_cli.run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    raise SystemExit(main())
