"""Ray Serve's custom autoscaling-policy hook for model deployments: Petit's autoscaler decides.

Why this hook and not a redeploy with a new `num_replicas`: a redeploy from the
autoscaler process would fight the owner of the application (KubeRay's
`serveConfigV2`, or `petit run`), and fixed `num_replicas` cannot be 0. With
the hook the application is deployed once with `autoscaling_config.policy` =
`PetitReplicaPolicy`; Serve's controller calls it every control-loop tick, the
policy returns the target the Petit autoscaler last set on the board, and Serve
starts/stops replicas (clamped to the model's min/max) as it does for its own
policy. Serve's own delays are set to 0: Petit's policy does the hysteresis.

The hook also reports the deployment's load (requests at the deployment,
queued requests, running replicas) to the board, which the autoscaler's signal
source reads. It never blocks Serve's control loop: board reads are issued as
calls whose result is collected on a later tick (`ray.wait(timeout=0)`).
Until the autoscaler has set a target, the deployment keeps its current target.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import ray

from serving.control.board import find_board

POLICY_PATH = "serving.control.serve_policy:PetitReplicaPolicy"
log = logging.getLogger("ray.serve")


def planned_replicas(targets: dict, model: str, current_target: int, lower: int, upper: int) -> int:
    """The autoscaler's target for `model` clamped to [lower, upper]; the current target when it set none."""
    want = targets.get(model)
    if not isinstance(want, int) or isinstance(want, bool) or want < 0:
        return current_target
    return max(lower, min(upper, want))


def serve_load(ctx: Any) -> dict:
    """The load figures of one deployment from Serve's AutoscalingContext (numbers only)."""
    queued = ctx.total_queued_requests
    return {
        "requests": float(ctx.total_num_requests or 0.0),
        "queued": float(queued or 0.0),
        "running_replicas": len(ctx.running_replicas),
        "current_replicas": int(ctx.current_num_replicas),
        "target_replicas": int(ctx.target_num_replicas),
    }


class PetitReplicaPolicy:
    """Serve instantiates it once per deployment (policy_kwargs: `model`, `poll_s`) and calls it per tick."""

    def __init__(self, model: str, poll_s: float = 1.0) -> None:
        self.model, self.poll_s = model, poll_s
        self._board: Any = None
        self._pending: Any = None
        self._targets: dict = {}
        self._version = 0
        self._next_poll = 0.0

    def __call__(self, ctx: Any) -> tuple[int, dict]:
        try:
            self._poll(ctx)
        except Exception:  # never break Serve's control loop; hold and retry later
            log.debug("petit replica policy: board poll failed", exc_info=True)
            self._board = self._pending = None
        target = planned_replicas(
            self._targets,
            self.model,
            ctx.target_num_replicas,
            ctx.capacity_adjusted_min_replicas,
            ctx.capacity_adjusted_max_replicas,
        )
        return target, {}

    def _poll(self, ctx: Any) -> None:
        if self._pending is not None:
            done, _ = ray.wait([self._pending], timeout=0)
            if not done:
                return
            version, targets = ray.get(self._pending)
            self._pending = None
            if version > self._version:
                self._version, self._targets = version, dict(targets)
                log.info("petit replica policy %s: targets v%d %s", self.model, version, targets)
        now = time.monotonic()
        if now < self._next_poll:
            return
        self._next_poll = now + self.poll_s
        if self._board is None:
            self._board = find_board()
            if self._board is None:
                return
        self._board.report.remote(f"serve:{self.model}", "serve", {"model": self.model, **serve_load(ctx)}, time.time())
        self._pending = self._board.read_replicas.remote()


def autoscaling_config(model: str, lower: int, upper: int, start: int) -> dict:
    """The `autoscaling_config` of one model deployment under Petit's autoscaler."""
    return {
        "min_replicas": lower,
        "max_replicas": upper,
        "initial_replicas": start,
        "upscale_delay_s": 0.0,
        "downscale_delay_s": 0.0,
        "downscale_to_zero_delay_s": 0.0,
        "metrics_interval_s": 1.0,
        "look_back_period_s": 5.0,
        "policy": {"policy_function": POLICY_PATH, "policy_kwargs": {"model": model}},
    }
