"""Wiring of the controller to a running Petit application on Ray Serve (adapter: imports Ray).

`build_supply` picks the supply source the config names; `serve_adapters`
connects to the application through the board actor (load signals, replica
targets for Serve's policy hook, routing state for the ingress replicas);
`AutoscalerService` runs the loop in a thread beside the admin endpoint. Used
by `petit autoscaler run` (a process of its own, e.g. the Helm chart's pod)
and by `petit run` (in-process, on the embedded default).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from autoscaler.admin import AdminServer
from autoscaler.budget import FixedBudget
from autoscaler.controller import Controller, Metrics
from autoscaler.signals_serve import ServeLoadSignals
from serving.fleet.schema import FleetConfig

log = logging.getLogger("petit.autoscaler")


def build_supply(fleet: FleetConfig, pods_namespace: str | None = None):
    """(supply source, FixedBudget or None) for `autoscaler.gpu_source`; the kubernetes source
    lists pods in `pods_namespace` (None: every namespace)."""
    cfg = fleet.autoscaler
    src = cfg.gpu_source
    if src.kind == "fixed":
        budget = FixedBudget(src.gpus)
        return budget, budget
    if src.kind == "ray":
        import ray

        from autoscaler.signals_ray import RayGpuSupply

        resource = "CPU" if cfg.budget_resource == "cpus" else "GPU"
        return RayGpuSupply(ray.cluster_resources, ray.available_resources, resource), None
    from kubernetes import client
    from kubernetes import config as kconfig

    from autoscaler.kubernetes_adapters import KubernetesGpuSupply

    try:
        kconfig.load_incluster_config()
    except kconfig.ConfigException:
        kconfig.load_kube_config()
    supply = KubernetesGpuSupply(
        client.ApiClient(), src.node_labels, src.own_pod_selector, src.resource_name, pods_namespace
    )
    return supply, None


def serve_adapters(fleet: FleetConfig, clock: Callable[[], float] = time.time):
    """(signals, replica actuator, routing actuator) over the board; Ray must be initialised."""
    from autoscaler.board_adapters import BoardReplicaActuator, BoardReports, BoardRoutingActuator
    from serving.control.board import get_board

    board = get_board()
    signals = ServeLoadSignals(
        BoardReports(board), fleet.model_ids, clock, max_report_age_s=max(15.0, 3 * fleet.autoscaler.period_s)
    )
    return signals, BoardReplicaActuator(board), BoardRoutingActuator(board)


class AutoscalerService:
    """The control loop in a daemon thread, plus `/admin/budget` when the budget is fixed."""

    def __init__(
        self,
        controller: Controller,
        budget: FixedBudget | None,
        admin_host: str = "127.0.0.1",
        admin_port: int = 9091,
        admin_token: str | None = None,
    ) -> None:
        """Raises AdminConfigError when the admin endpoint would listen beyond loopback without a token."""
        self.controller, self.budget = controller, budget
        unit = controller.fleet.autoscaler.budget_resource
        self.admin = (
            AdminServer(budget, admin_host, admin_port, unit, admin_token, self._last_plan)
            if budget is not None
            else None
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_serve(
        cls,
        fleet: FleetConfig,
        registry: CollectorRegistry | None = None,
        admin_host: str = "127.0.0.1",
        admin_port: int = 9091,
        admin_token: str | None = None,
        pods_namespace: str | None = None,
    ) -> AutoscalerService:
        supply, budget = build_supply(fleet, pods_namespace)
        signals, replicas, routing = serve_adapters(fleet)
        ctl = Controller(fleet, supply, signals, replicas, routing, Metrics(registry or CollectorRegistry()), time.time)
        return cls(ctl, budget, admin_host, admin_port, admin_token)

    def _last_plan(self) -> dict | None:
        plan = self.controller.last_plan
        return None if plan is None else plan.summary()

    @property
    def admin_url(self) -> str | None:
        return None if self.admin is None else f"http://{self.admin.host}:{self.admin.port}"

    def start(self) -> None:
        if self.admin is not None:
            self.admin.start()
        self._thread = threading.Thread(
            target=self.controller.run, args=(self._stop,), daemon=True, name="petit-autoscaler"
        )
        self._thread.start()

    def run_forever(self) -> None:
        """Start, then block until `request_stop()` (e.g. from a signal handler), then stop."""
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()

    def request_stop(self) -> None:
        """Ask the loop to end after its current step (safe from a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            if self.admin is not None:
                self.admin.stop()
            self._thread = None
