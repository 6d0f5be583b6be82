"""What an autoscaler `RoutingPlan` means for the router's `RoutingState` (pure)."""

from __future__ import annotations

from typing import TypedDict

from autoscaler.snapshot import RoutingPlan


class RoutingChanges(TypedDict):
    """The `serving.router.state.RoutingState` fields a plan sets (published as they are)."""

    allowed_tiers: list[str] | None
    strong_share: float | None
    downgrade_share: float
    downgrade_share_by_priority: dict[str, float] | None


def routing_changes(plan: RoutingPlan) -> RoutingChanges:
    """The RoutingState fields the plan sets.

    Unconstrained (GPUs suffice): the router routes by its own calibration (all
    tiers, its default strong share). Constrained (GPUs short, or a tier being
    removed): only the tiers the plan gives traffic to, and either
    - one cut for everyone (no priority mix to order, or the strong tier closed):
      the plan's strong-tier share as the router's target share (the router sends
      its hardest prompts there), no downgrade; or
    - scarcity by priority (the classes' downgrade shares differ): the strong share
      the plan would give with unlimited GPUs (the plan's share / (1 - downgrade)),
      and each priority class's downgrade share of the strong-routed requests
      (`downgrade_share_by_priority`; `downgrade_share`, their mean, for requests
      without a tenant), so the strong tier still gets the plan's share overall.
    """
    if not plan.constrained:
        return {
            "allowed_tiers": None,
            "strong_share": None,
            "downgrade_share": 0.0,
            "downgrade_share_by_priority": None,
        }
    tiers = list(plan.allowed_tiers) or None
    down, by_priority = plan.downgrade_share, plan.downgrade_by_priority
    if len(set(by_priority.values())) < 2 or down >= 1.0 or plan.strong_share <= 0:
        return {
            "allowed_tiers": tiers,
            "strong_share": plan.strong_share,
            "downgrade_share": 0.0,
            "downgrade_share_by_priority": None,
        }
    return {
        "allowed_tiers": tiers,
        "strong_share": min(1.0, plan.strong_share / (1.0 - down)),
        "downgrade_share": down,
        "downgrade_share_by_priority": dict(by_priority),
    }
