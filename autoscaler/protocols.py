"""Seams between the controller and the outside world (pure: typing only).

The controller calls these once per period; each may raise, and the controller
survives it (logs, marks the snapshot stale, skips the actuation).
"""

from __future__ import annotations

from typing import Protocol

from autoscaler.snapshot import GpuSupply, ModelSignals, RoutingPlan


class GpuSupplySource(Protocol):
    """Returns the GPUs the fleet may use now: a fresh view, or the last good one with
    `stale_reason` set (the controller then holds); raises when there never was one."""

    def read(self) -> GpuSupply: ...


class ModelSignalSource(Protocol):
    """Per-model signals over the last window (`signals_serve.ServeLoadSignals`: the board's load reports)."""

    def read(self) -> dict[str, ModelSignals]: ...


class ReplicaActuator(Protocol):
    """Sets the target replica count of each model's Ray Serve deployment.

    `board_adapters.BoardReplicaActuator` writes the targets on the control
    board, where each deployment's Serve autoscaling-policy hook
    (`serving.control.serve_policy`) reads them. Idempotent; returns without
    waiting for replicas to become ready.
    """

    def set_replicas(self, targets: dict[str, int]) -> None: ...


class RoutingActuator(Protocol):
    """Pushes the routing plan to the router (every PetitIngress replica).

    `board_adapters.BoardRoutingActuator` publishes `routing_bridge.routing_changes(plan)`
    (allowed tiers, strong share) on the control board; each ingress replica
    follows the board and patches its routing state, for new requests only.
    """

    def push(self, plan: RoutingPlan) -> None: ...


class WorkerGroupActuator(Protocol):
    """Sets Ray worker-group pod counts (KubeRay) to hold the planned replicas."""

    def set_worker_replicas(self, groups: dict[str, int]) -> None: ...
