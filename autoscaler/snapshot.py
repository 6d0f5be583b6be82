"""Values that flow through the autoscaler: what it sees, what it decides, what it remembers.

Pure module: frozen dataclasses only. Adapters fill a :class:`ScalingSnapshot`;
:func:`autoscaler.policy.decide` turns it into a :class:`Plan` and a new
:class:`PolicyState`; actuators apply the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSignals:
    """One model over the last control window. Rates are per second, latencies in ms.

    `movable_fraction` is the share of this model's traffic the router may move
    to another tier (`auto` plus downgrade-allowed requests); the rest named
    this model and stays on it. `movable_rps_by_priority`: movable requests/s
    by the tenants' priority class (`serving.fleet.tenants.PRIORITIES`; empty
    without tenants), the demand mix that orders who is downgraded first.
    """

    arrival_rps: float = 0.0
    input_tokens_per_s: float = 0.0
    output_tokens_per_s: float = 0.0
    queue_depth: int = 0
    in_flight: int = 0
    ttft_p95_ms: float | None = None
    itl_p95_ms: float | None = None
    ready_replicas: int = 0
    pending_replicas: int = 0
    movable_fraction: float = 1.0
    movable_rps_by_priority: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GpuSupply:
    """GPUs the fleet may use right now.

    `total` is the fleet's budget (GPUs on eligible nodes not held by others),
    `free` those not requested by any pod, `pending` GPUs requested by the
    fleet's unschedulable pods. `stale_reason` (empty when fresh) says why a
    source returned its last good view instead of a new one.
    """

    total: float
    free: float = 0.0
    pending: float = 0.0
    source: str = "fixed"
    stale_reason: str = ""


@dataclass(frozen=True)
class ScalingSnapshot:
    """Everything `decide` sees. `taken_at` is when the signals were gathered;
    `stale` is set by an adapter that could not refresh (decide never scales on it)."""

    models: dict[str, ModelSignals]
    supply: GpuSupply
    taken_at: float
    stale: bool = False
    stale_reason: str = ""


@dataclass(frozen=True)
class ModelTarget:
    """Target replicas for one model, with why."""

    model: str
    tier: str
    replicas: int
    previous: int
    gpus: float
    reason: str


@dataclass(frozen=True)
class RoutingPlan:
    """What the router should do with movable traffic until the next plan.

    `shares` maps model id to the share of movable traffic it should take
    (sums to 1 over `allowed` models). `strong_share` is the share going to the
    highest-quality tier; `downgrade_share` the share of movable traffic sent
    below the tier it would get with unlimited GPUs (relative to that plan's
    strong share); `downgrade_by_priority` that share split over the tenants'
    priority classes by their demand mix (`autoscaler.priority.split_downgrade`:
    low first, high last; the same share for every class without a mix).
    """

    shares: dict[str, float]
    allowed_tiers: tuple[str, ...]
    strong_share: float
    downgrade_share: float
    expected_quality: float
    reason: str
    constrained: bool = False  # GPUs force traffic off where the router would send it (see routing_bridge)
    downgrade_by_priority: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """One decision. `applied` is False when the plan only holds the current state
    (stale data, autoscaler disabled)."""

    at: float
    targets: dict[str, ModelTarget]
    routing: RoutingPlan
    gpus_planned: float
    gpus_budget: float
    reason: str
    applied: bool = True

    def summary(self) -> dict[str, object]:
        """A JSON-ready view for logs and spans."""
        return {
            "at": self.at,
            "reason": self.reason,
            "applied": self.applied,
            "gpus_planned": self.gpus_planned,
            "gpus_budget": self.gpus_budget,
            "targets": {
                m: {"replicas": t.replicas, "previous": t.previous, "reason": t.reason} for m, t in self.targets.items()
            },
            "routing": {
                "shares": {k: round(v, 4) for k, v in self.routing.shares.items()},
                "strong_share": round(self.routing.strong_share, 4),
                "downgrade_share": round(self.routing.downgrade_share, 4),
                "downgrade_by_priority": {k: round(v, 4) for k, v in self.routing.downgrade_by_priority.items()},
                "expected_quality": round(self.routing.expected_quality, 3),
                "constrained": self.routing.constrained,
                "reason": self.routing.reason,
            },
        }


@dataclass(frozen=True)
class ModelState:
    """Per-model memory: the current target, when it last moved, recent recommendations."""

    target: int
    last_up: float = float("-inf")
    last_down: float = float("-inf")
    recommendations: tuple[tuple[float, int], ...] = ()
    capacity_scale: float = 1.0


@dataclass(frozen=True)
class PolicyState:
    """What `decide` remembers between calls. Build the first one with
    :func:`autoscaler.policy.initial_state`."""

    models: dict[str, ModelState]
    shares: dict[str, float] = field(default_factory=dict)
    last_at: float | None = None
