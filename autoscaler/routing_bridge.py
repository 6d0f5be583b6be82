"""What an autoscaler `RoutingPlan` means for the router's `RoutingState` (pure)."""

from __future__ import annotations

from autoscaler.snapshot import RoutingPlan


def routing_changes(plan: RoutingPlan) -> dict:
    """The RoutingState fields the plan sets.

    Unconstrained (GPUs suffice): the router routes by its own calibration (all
    tiers, its default strong share). Constrained (GPUs short, or a tier being
    removed): only the tiers the plan gives traffic to, and the plan's strong-tier
    share as the router's target share (the router sends its hardest prompts there).
    `downgrade_share` is left at 0: the strong share already carries the cut.
    """
    if not plan.constrained:
        return {"allowed_tiers": None, "strong_share": None, "downgrade_share": 0.0}
    return {
        "allowed_tiers": list(plan.allowed_tiers) or None,
        "strong_share": plan.strong_share,
        "downgrade_share": 0.0,
    }
