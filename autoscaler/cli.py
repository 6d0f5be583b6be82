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
import threading
import time
import urllib.error
import urllib.request

from serving.config import FleetConfig, FleetConfigError, load_fleet

DEFAULT_ADMIN_URL = "http://127.0.0.1:9091"


class UnwiredSignals:
    """Placeholder until the Ray Serve signal source is wired: every read fails, so
    every snapshot is stale and the controller holds (never scales blind)."""

    def read(self):
        raise RuntimeError("no model signal source wired (Ray Serve metrics adapter)")


def build_supply(fleet: FleetConfig):
    """(supply source, FixedBudget or None) for `autoscaler.gpu_source`."""
    from autoscaler.budget import FixedBudget

    src = fleet.autoscaler.gpu_source
    if src.kind == "fixed":
        budget = FixedBudget(src.gpus)
        return budget, budget
    if src.kind == "ray":
        import ray  # only here: the adapter itself takes callables

        from autoscaler.signals_ray import RayGpuSupply
        return RayGpuSupply(ray.cluster_resources, ray.available_resources), None
    from kubernetes import client, config as kconfig

    from autoscaler.kubernetes_adapters import KubernetesGpuSupply
    try:
        kconfig.load_incluster_config()
    except kconfig.ConfigException:
        kconfig.load_kube_config()
    return KubernetesGpuSupply(client.ApiClient(), src.node_labels, src.own_pod_selector, src.resource_name), None


def cmd_run(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry, start_http_server

    from autoscaler.admin import AdminServer
    from autoscaler.controller import Controller, Metrics

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        fleet = load_fleet(args.fleet)
    except FleetConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    supply, budget = build_supply(fleet)
    registry = CollectorRegistry()
    start_http_server(int(os.environ.get("PETIT_METRICS_PORT", args.metrics_port)), registry=registry)
    admin = None
    if budget is not None:
        admin = AdminServer(budget, args.admin_host, args.admin_port)
        admin.start()
    routing = None
    if args.ray_address:  # push routing plans to every ingress replica through the routing board
        import ray

        from serving.routing_board import BoardRoutingActuator

        ray.init(address=args.ray_address, namespace="serve", log_to_driver=False)
        routing = BoardRoutingActuator()
    ctl = Controller(fleet, supply, UnwiredSignals(), None, routing, Metrics(registry), time.time)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ctl.run(stop)
    if admin:
        admin.stop()
    return 0


def cmd_budget(args: argparse.Namespace) -> int:
    url = args.url.rstrip("/") + "/admin/budget"
    data = json.dumps({"gpus": args.set}).encode() if args.set is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                 headers={"content-type": "application/json"})
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
    run.add_argument("--admin-host", default="0.0.0.0")
    run.add_argument("--admin-port", type=int, default=9091)
    run.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"),
                     help="the Ray cluster serving Petit (e.g. 'auto'); routing plans go to its ingress replicas")
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
