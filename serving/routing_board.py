"""The routing board: one named Ray actor holding the latest routing-state changes.

The autoscaler (or an operator) publishes a change set; every ingress replica
follows the board (polls it each second) and applies a newer version to its
own `RoutingStateHolder`. A change thus reaches every ingress replica, without
a restart and without addressing replicas one by one. Changes patch the state:
fields not in a change set keep their value. Ray adapter: imports Ray.
"""

from __future__ import annotations

import logging
from typing import Any

import ray

BOARD_NAME = "petit-routing-board"
BOARD_NAMESPACE = "serve"
log = logging.getLogger("petit.routing_board")


@ray.remote(num_cpus=0)
class RoutingBoard:
    def __init__(self) -> None:
        self._version, self._changes = 0, {}

    def publish(self, changes: dict) -> int:
        """Record `changes` as the newest version and return that version."""
        self._version += 1
        self._changes = dict(changes)
        return self._version

    def read(self) -> tuple[int, dict]:
        return self._version, self._changes


def get_board() -> Any:
    """The board's actor handle, created on first use (detached: it outlives its creator)."""
    return RoutingBoard.options(name=BOARD_NAME, namespace=BOARD_NAMESPACE, get_if_exists=True,
                                lifetime="detached").remote()


class BoardFollower:
    """Applies board versions newer than the last one applied to a routing-state holder."""

    def __init__(self, holder: Any, board: Any = None) -> None:
        self.holder = holder
        self.board = board
        self.applied = 0

    async def poll_once(self) -> bool:
        """Read the board; apply a newer version. Returns whether something was applied.

        A change set the holder rejects (ValueError/TypeError) is logged and skipped,
        so one bad publish cannot wedge the follower.
        """
        if self.board is None:
            self.board = get_board()
        version, changes = await self.board.read.remote()
        if version <= self.applied:
            return False
        self.applied = version
        try:
            self.holder.update(**changes)
        except (ValueError, TypeError) as err:
            log.warning("routing board version %d rejected: %s", version, err)
            return False
        log.info("routing state updated from board version %d: %s", version, changes)
        return True


class BoardRoutingActuator:
    """The autoscaler's `RoutingActuator` over the board."""

    def __init__(self, board: Any = None) -> None:
        self.board = board if board is not None else get_board()

    def push(self, plan: Any) -> None:
        from autoscaler.routing_bridge import routing_changes

        ray.get(self.board.publish.remote(routing_changes(plan)), timeout=10)
