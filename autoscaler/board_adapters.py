"""The autoscaler's actuators and load source over the control board (`serving.control.board`).

Ray adapter: imports Ray.
"""

from __future__ import annotations

from typing import Any

import ray

from autoscaler.routing_bridge import routing_changes
from autoscaler.snapshot import RoutingPlan
from serving.control.board import get_board


class BoardReplicaActuator:
    """The autoscaler's `ReplicaActuator` over the board: Serve's policy hook applies the targets."""

    def __init__(self, board: Any = None) -> None:
        self.board = board if board is not None else get_board()

    def set_replicas(self, targets: dict[str, int]) -> None:
        ray.get(self.board.set_replicas.remote(targets), timeout=10)


class BoardReports:
    """Reads every load report on the board (for `autoscaler.signals_serve.ServeLoadSignals`)."""

    def __init__(self, board: Any = None, timeout_s: float = 5.0) -> None:
        self.board = board if board is not None else get_board()
        self.timeout_s = timeout_s

    def __call__(self) -> dict:
        return ray.get(self.board.reports.remote(), timeout=self.timeout_s)


class BoardRoutingActuator:
    """The autoscaler's `RoutingActuator` over the board."""

    def __init__(self, board: Any = None) -> None:
        self.board = board if board is not None else get_board()

    def push(self, plan: RoutingPlan) -> None:
        ray.get(self.board.publish.remote(routing_changes(plan)), timeout=10)
