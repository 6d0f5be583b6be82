"""The routing pipeline: candidates -> filters -> difficulty gate -> scorers -> picker (pure; no I/O).

`run_pipeline` returns a RouteDecision value (model, reason, expected cost,
predicted quality, the score used) or raises RoutingError from the filter
that left no model.
"""

from __future__ import annotations

from dataclasses import dataclass

from serving.router.calibration import threshold_for_share
from serving.router.filters import DEFAULT_FILTERS, Candidate, Filter, FilterContext, run_filters
from serving.router.scorers import ScoreContext, ScorerWeights, score_all
from serving.router.state import TIERS, RoutingState
from serving.router.types import FleetSnapshot, RouteDecision, RouteRequest


@dataclass(frozen=True)
class Gate:
    """The difficulty gate's verdict: does this prompt want the strong tier, and why."""

    want_strong: bool
    note: str


def candidates(request: RouteRequest, fleet: FleetSnapshot) -> list[Candidate]:
    """Every fleet model with its prompt token count (None if it could not count) and expected cost."""
    out = []
    for m in fleet.models:
        n = request.prompt_tokens.get(m.id)
        out.append(Candidate(m, n, None if n is None else m.cost(n, request.max_tokens)))
    return out


def tier_ranks(fleet: FleetSnapshot) -> dict[str, int]:
    """Tier name -> rank: the canonical tier order, with the fleet's own ranks where they differ."""
    ranks = {t: i for i, t in enumerate(TIERS)}
    ranks.update({m.tier: m.tier_rank for m in fleet.models})
    return ranks


def resolve_threshold(state: RoutingState, quantiles: list[float] | None, default_share: float) -> float:
    """The score threshold in force.

    Without a state threshold: the state's strong share (or `default_share`) calibrated on
    `quantiles`. With both (a calibrated threshold and the autoscaler's share under GPU
    scarcity): the stricter of the two, so the plan's share caps the strong calls.
    """

    def of_share(share: float) -> float:
        if not quantiles:
            return float("inf") if share < 0.5 else float("-inf")
        return threshold_for_share(quantiles, share)

    if state.threshold is not None:
        cap = -float("inf") if state.strong_share is None else of_share(state.strong_share)
        return max(float(state.threshold), cap)
    return of_share(state.strong_share if state.strong_share is not None else default_share)


def gate(request: RouteRequest, state: RoutingState, threshold: float) -> Gate:
    """Strong iff the prediction's score >= threshold; a downgrade-share slice of those (the request's
    priority class's share, when the state has one) goes weak when allowed."""
    p = request.prediction
    if p is None:
        return Gate(False, "no_prediction")
    if p.score < threshold:
        return Gate(False, f"score={p.score:.3f}<thr={threshold:.3f}")
    note = f"score={p.score:.3f}>=thr={threshold:.3f}"
    if request.constraints.allow_downgrade and request.route_key < state.downgrade_share_for(request.priority):
        return Gate(False, note + ";downgraded" + (f":{request.priority}" if request.priority else ""))
    return Gate(True, note)


def pick(scored: dict[str, tuple[float, dict[str, float]]], cands: list[Candidate]) -> Candidate:
    """Highest weighted total; ties go to the cheaper, then the lower tier, then the id."""
    return min(
        cands, key=lambda c: (-round(scored[c.model.id][0], 9), c.cost_usd or 0.0, c.model.tier_rank, c.model.id)
    )


def run_pipeline(
    request: RouteRequest,
    fleet: FleetSnapshot,
    state: RoutingState,
    threshold: float,
    weights: ScorerWeights,
    name: str = "learned",
    filters: tuple[Filter, ...] = DEFAULT_FILTERS,
) -> RouteDecision:
    """Route one `auto` request. Raises RoutingError (see `filters`)."""
    ctx = FilterContext(request, state, tier_ranks(fleet))
    kept, notes = run_filters(candidates(request, fleet), ctx, filters)
    g = gate(request, state, threshold)
    sctx = ScoreContext(tuple(kept), state, request.prediction, g.want_strong)
    scored = score_all(sctx, weights)
    best = pick(scored, kept)
    parts = scored[best.model.id][1]
    reason = f"{name}:{'strong' if g.want_strong else 'weak'};{g.note}"
    if notes:
        reason += f";skipped={','.join(notes)}"
    quality = parts.get("quality") if request.prediction is not None else None
    return RouteDecision(
        best.model.id,
        reason,
        expected_cost_usd=best.cost_usd,
        predicted_quality=quality,
        strong_score=None if request.prediction is None else request.prediction.score,
    )
