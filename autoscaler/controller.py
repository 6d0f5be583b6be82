"""The control loop: gather signals, `decide`, apply through injected actuators,
log the plan, export metrics and one OpenTelemetry span per decision.

Adapter failures never stop the loop: a failing supply source gives a stale
snapshot (no scaling), a failing signal source too, a failing actuator is logged
and retried next period.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge

from autoscaler.policy import decide, initial_state
from autoscaler.protocols import GpuSupplySource, ModelSignalSource, ReplicaActuator, RoutingActuator
from autoscaler.snapshot import GpuSupply, ModelSignals, Plan, ScalingSnapshot
from serving.fleet.schema import FleetConfig

log = logging.getLogger(__name__)


def actuated_replicas(plan: Plan) -> dict[str, int]:
    """Replica counts to actuate now: increases at once, decreases one period after they are planned.

    The plan's routing already moves traffic off replicas it removes, but every ingress
    replica applies a routing change up to a board poll later; stopping the replicas in
    the same period would cut requests routed there meanwhile. A decrease first planned
    now (target below the previous target) is held for this period and applied at the next.
    """
    return {m: max(t.replicas, t.previous) if t.replicas < t.previous else t.replicas for m, t in plan.targets.items()}


def _comparable(summary: dict) -> dict:
    """A summary without what changes every period: the time, and the per-priority split (it follows
    the demand mix, which moves with every window of traffic)."""
    out = {k: v for k, v in summary.items() if k != "at"}
    out["routing"] = {k: v for k, v in out.get("routing", {}).items() if k != "downgrade_by_priority"}
    return out


class Metrics:
    """The controller's Prometheus metrics, on a registry the caller owns."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.gpu_supply = Gauge("petit_autoscaler_gpu_supply", "GPUs the fleet may use", registry=registry)
        self.gpus_planned = Gauge("petit_autoscaler_gpus_planned", "GPUs the last plan holds", registry=registry)
        self.decisions = Counter(
            "petit_autoscaler_decisions", "Decisions per model and reason", ["model", "reason"], registry=registry
        )
        self.route_share = Gauge("petit_route_share", "Share of movable traffic per tier", ["tier"], registry=registry)
        self.downgrade_share = Gauge(
            "petit_autoscaler_downgrade_share",
            "Share of strong-routed movable traffic the plan downgrades, per tenant priority",
            ["priority"],
            registry=registry,
        )
        self.replicas = Gauge("petit_autoscaler_target_replicas", "Target replicas", ["model"], registry=registry)
        self.errors = Counter("petit_autoscaler_adapter_errors", "Adapter failures", ["adapter"], registry=registry)


class Controller:
    """One decision per `step(now)`; `run()` calls it every `period_s` until stopped."""

    def __init__(
        self,
        fleet: FleetConfig,
        supply: GpuSupplySource,
        signals: ModelSignalSource,
        replicas: ReplicaActuator | None,
        routing: RoutingActuator | None,
        metrics: Metrics,
        clock: Callable[[], float],
        tracer: trace.Tracer | None = None,
    ):
        self.fleet, self.supply, self.signals = fleet, supply, signals
        self.replicas, self.routing, self.metrics, self.clock = replicas, routing, metrics, clock
        self.tracer = tracer or trace.get_tracer("petit.autoscaler")
        self.state = initial_state(fleet)
        self.last_supply: GpuSupply | None = None
        self.last_plan: Plan | None = None
        self.recent: deque[Plan] = deque(maxlen=50)  # the last plans, newest last (for inspection)

    def gather(self, now: float) -> ScalingSnapshot:
        """A snapshot; stale when any source failed or reported staleness."""
        reasons = []
        try:
            supply = self.supply.read()
            self.last_supply = supply
            if supply.stale_reason:
                reasons.append(supply.stale_reason)
        except Exception as err:
            self.metrics.errors.labels("supply").inc()
            reasons.append(f"supply: {err}")
            supply = self.last_supply or GpuSupply(total=0.0, source="unknown")
        try:
            models = self.signals.read()
        except Exception as err:
            self.metrics.errors.labels("signals").inc()
            reasons.append(f"signals: {err}")
            models = {m: ModelSignals() for m in self.fleet.model_ids}
        return ScalingSnapshot(models, supply, now, stale=bool(reasons), stale_reason="; ".join(reasons))

    def step(self, now: float | None = None) -> Plan:
        """Gather, decide, apply, record. Never raises for adapter errors."""
        now = self.clock() if now is None else now
        with self.tracer.start_as_current_span("petit.autoscaler.decide") as span:
            snap = self.gather(now)
            plan, self.state = decide(snap, self.fleet, self.state, now)
            previous = self.last_plan
            self.last_plan = plan
            self.recent.append(plan)
            if plan.applied:
                self._apply(plan)
            self._record(plan, snap)
            span.set_attribute("petit.reason", plan.reason)
            span.set_attribute("petit.applied", plan.applied)
            span.set_attribute("petit.gpus_budget", float(min(plan.gpus_budget, 1e12)))
            span.set_attribute("petit.gpus_planned", float(plan.gpus_planned))
            span.set_attribute("petit.plan", json.dumps(plan.summary(), default=str))
        summary = plan.summary()
        # Every plan at DEBUG; a plan that differs from the previous one (time and mix aside) at INFO.
        changed = previous is None or _comparable(previous.summary()) != _comparable(summary)
        log.log(logging.INFO if changed else logging.DEBUG, "plan %s", json.dumps(summary, default=str))
        return plan

    def _apply(self, plan: Plan) -> None:
        if self.routing is not None:  # traffic first: it moves this period
            try:
                self.routing.push(plan.routing)
            except Exception as err:
                self.metrics.errors.labels("routing").inc()
                log.warning("routing push failed: %s", err)
        if self.replicas is not None:
            try:
                self.replicas.set_replicas(actuated_replicas(plan))
            except Exception as err:
                self.metrics.errors.labels("replicas").inc()
                log.warning("replica actuation failed: %s", err)

    def _record(self, plan: Plan, snap: ScalingSnapshot) -> None:
        m = self.metrics
        if snap.supply.total != float("inf"):
            m.gpu_supply.set(snap.supply.total)
        m.gpus_planned.set(plan.gpus_planned)
        tiers: dict[str, float] = {}
        for mid, t in plan.targets.items():
            m.decisions.labels(mid, t.reason.split(":")[0]).inc()
            m.replicas.labels(mid).set(t.replicas)
            tiers[t.tier] = tiers.get(t.tier, 0.0) + plan.routing.shares.get(mid, 0.0)
        for tier, share in tiers.items():
            m.route_share.labels(tier).set(share)
        for priority, share in plan.routing.downgrade_by_priority.items():
            m.downgrade_share.labels(priority).set(share)

    def run(self, stop: threading.Event) -> None:
        """Step every `autoscaler.period_s` until `stop` is set. Exceptions in a step are logged."""
        period = self.fleet.autoscaler.period_s
        while not stop.is_set():
            try:
                self.step()
            except Exception:  # a bug in one decision must not end control
                log.exception("autoscaler step failed")
            stop.wait(period)
