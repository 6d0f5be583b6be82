"""Seams between the controller and the outside world (pure: typing only).

The controller calls these once per period; each may raise, and the controller
survives it (logs, marks the snapshot stale, skips the actuation).
"""

from __future__ import annotations

from typing import Protocol

from autoscaler.snapshot import GpuSupply, ModelSignals, RoutingPlan


class GpuSupplySource(Protocol):
    """Returns the GPUs the fleet may use now. `last_good()` is the last successful view."""

    def read(self) -> GpuSupply: ...


class ModelSignalSource(Protocol):
    """Per-model signals over the last window (Ray Serve / Prometheus side)."""

    def read(self) -> dict[str, ModelSignals]: ...


class ReplicaActuator(Protocol):
    """Sets the target replica count of each model's Ray Serve deployment.

    Expected Ray Serve implementation: for each model, set the deployment
    `model-<id>`'s `num_replicas` (or autoscaling min=max=target) through the
    Serve controller / `serve.run` with an updated config; must be idempotent
    and return without waiting for replicas to become ready.
    """

    def set_replicas(self, targets: dict[str, int]) -> None: ...


class RoutingActuator(Protocol):
    """Pushes the routing plan to the router (PetitIngress replicas).

    Expected Ray Serve implementation: a method on the ingress deployment
    (e.g. `handle.set_routing_plan.remote(plan_dict)` broadcast to every ingress
    replica, or a small shared actor the routing policy reads), applied to new
    requests only; `plan.shares` = model id -> share of movable traffic.
    """

    def push(self, plan: RoutingPlan) -> None: ...


class WorkerGroupActuator(Protocol):
    """Sets Ray worker-group pod counts (KubeRay) to hold the planned replicas."""

    def set_worker_replicas(self, groups: dict[str, int]) -> None: ...
