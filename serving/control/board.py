"""The board: one named Ray actor, the control channel between Petit's autoscaler and the Serve application.

- Routing: the autoscaler (or an operator) publishes a change set; every
  ingress replica follows the board (polls it each second) and applies a newer
  version to its own `RoutingStateHolder`. A change thus reaches every ingress
  replica, without a restart and without addressing replicas one by one.
  Changes patch the state: fields not in a change set keep their value.
- Replicas: the autoscaler sets target replicas per model; the Serve
  autoscaling policy of each model deployment (`serving.control.serve_policy`)
  reads them.
- Learning: ingress replicas merge the cascade's labels into one table
  (`serving.router.online`, `serving.control.learning`).
- Load: ingress replicas report their token counters and latency percentiles,
  the Serve policies their deployment's request counts and running replicas;
  the autoscaler's signal source reads all reports at once.

This module is the serving side (the actor, the ingress's follower); the
autoscaler's adapters over it live in `autoscaler.board_adapters`.
Ray adapter: imports Ray.
"""

from __future__ import annotations

import logging
from typing import Any

import ray

from serving.fleet.schema import OnlineLearningConfig
from serving.router.online import CompetenceTable, merge_into
from serving.router.state import RoutingStateHolder

BOARD_NAME = "petit-routing-board"  # the actor's name; kept so running clusters find it
BOARD_NAMESPACE = "serve"
log = logging.getLogger("petit.control.board")


@ray.remote(num_cpus=0)
class ControlBoard:
    def __init__(self) -> None:
        self._version, self._changes = 0, {}
        self._replicas_version, self._replicas = 0, {}
        self._reports: dict[str, tuple[str, dict, float]] = {}
        self._competence: CompetenceTable | None = None

    def publish(self, changes: dict) -> int:
        """Record `changes` as the newest version and return that version."""
        self._version += 1
        self._changes = dict(changes)
        return self._version

    def read(self) -> tuple[int, dict]:
        return self._version, self._changes

    def set_replicas(self, targets: dict) -> int:
        """Record target replicas per model id (a full set) and return its version."""
        self._replicas_version += 1
        self._replicas = {str(k): int(v) for k, v in targets.items()}
        return self._replicas_version

    def read_replicas(self) -> tuple[int, dict]:
        return self._replicas_version, self._replicas

    def merge_competence(self, observations: dict, config: dict) -> dict:
        """Merge one replica's cascade labels into the fleet's table; return the table."""
        self._competence = merge_into(self._competence, observations, OnlineLearningConfig.model_validate(config))
        return self._competence.to_dict()

    def report(self, source: str, kind: str, data: dict, at: float) -> None:
        """Keep the latest report of one source ("ingress:<replica>", "serve:<model>")."""
        self._reports[source] = (kind, data, at)

    def reports(self) -> dict:
        return dict(self._reports)


# Ray's resource of the head node: the control plane (board, ingress) lives there, so losing a
# worker node takes model replicas with it, never the routing state (measured: a board on the lost
# node froze every plan until a new one was created).
ON_HEAD = {"node:__internal_head__": 0.001}


def get_board() -> Any:
    """The board's actor handle, created on first use (detached: it outlives its creator; on the head)."""
    return ControlBoard.options(
        name=BOARD_NAME, namespace=BOARD_NAMESPACE, get_if_exists=True, lifetime="detached", resources=ON_HEAD
    ).remote()


class BoardFollower:
    """Applies board versions newer than the last one applied to a routing-state holder."""

    def __init__(self, holder: RoutingStateHolder) -> None:
        self.holder = holder
        self.applied = 0

    async def poll_once(self, board: Any) -> bool:
        """Read `board`; apply a newer version. Returns whether something was applied.

        A change set the holder rejects (ValueError/TypeError) is logged and skipped,
        so one bad publish cannot wedge the follower.
        """
        version, changes = await board.read.remote()
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


def find_board() -> Any:
    """The board's handle if it exists, else None (never creates it)."""
    try:
        return ray.get_actor(BOARD_NAME, namespace=BOARD_NAMESPACE)
    except ValueError:
        return None
