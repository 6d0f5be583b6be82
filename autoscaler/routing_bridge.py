"""What an autoscaler `RoutingPlan` means for the router's `RoutingState` (pure)."""

from __future__ import annotations

from autoscaler.snapshot import RoutingPlan


def routing_changes(plan: RoutingPlan) -> dict:
    """The RoutingState fields the plan sets: allowed tiers (None: all), strong-call share, downgrade share."""
    return {"allowed_tiers": list(plan.allowed_tiers) or None, "strong_share": plan.strong_share,
            "downgrade_share": plan.downgrade_share}
