"""Routing scorers: each maps a candidate to a score in [0, 1] (pure; no I/O).

- `tier_fit`: 1 for the tier the difficulty gate asks for (strongest candidate
  tier when the prediction's score reaches the threshold, else the cheapest),
  falling linearly with the distance in tier rank;
- `quality`: predicted chance the model answers well (interpolated by tier
  between the prediction's p_weak_ok and p_strong_ok);
- `price`: 1 for the cheapest candidate, 0 for the dearest (expected cost);
- `headroom`: spare capacity, from the model's ready replicas.
"""

from __future__ import annotations

from dataclasses import dataclass

from serving.router.filters import Candidate
from serving.router.state import RoutingState
from serving.router.types import DifficultyPrediction


@dataclass(frozen=True)
class ScorerWeights:
    """Weights of the scorers in the picker's sum (non-negative). The default lets the gate dominate."""

    tier_fit: float = 1.0
    quality: float = 0.25
    price: float = 0.25
    headroom: float = 0.1

    def __post_init__(self) -> None:
        for k, v in self.__dict__.items():
            if v < 0:
                raise ValueError(f"scorer weight {k} must be >= 0, got {v}")


@dataclass(frozen=True)
class ScoreContext:
    cands: tuple[Candidate, ...]
    state: RoutingState
    prediction: DifficultyPrediction | None
    want_strong: bool

    @property
    def rank_span(self) -> tuple[int, int]:
        ranks = [c.model.tier_rank for c in self.cands]
        return min(ranks), max(ranks)


def _tier_frac(c: Candidate, ctx: ScoreContext) -> float:
    lo, hi = ctx.rank_span
    return 0.0 if hi == lo else (c.model.tier_rank - lo) / (hi - lo)


def tier_fit(c: Candidate, ctx: ScoreContext) -> float:
    frac = _tier_frac(c, ctx)
    return frac if ctx.want_strong else 1.0 - frac


def quality(c: Candidate, ctx: ScoreContext) -> float:
    p = ctx.prediction
    if p is None:
        return 0.5
    return min(1.0, max(0.0, p.p_weak_ok + (p.p_strong_ok - p.p_weak_ok) * _tier_frac(c, ctx)))


def price(c: Candidate, ctx: ScoreContext) -> float:
    costs = [x.cost_usd for x in ctx.cands if x.cost_usd is not None]
    if c.cost_usd is None or not costs or max(costs) == min(costs):
        return 1.0
    return (max(costs) - c.cost_usd) / (max(costs) - min(costs))


def headroom(c: Candidate, ctx: ScoreContext) -> float:
    return 1.0 - 1.0 / (1.0 + max(c.model.ready_replicas, 0))


SCORERS = {"tier_fit": tier_fit, "quality": quality, "price": price, "headroom": headroom}


def score_all(ctx: ScoreContext, weights: ScorerWeights) -> dict[str, tuple[float, dict[str, float]]]:
    """Per model id: (weighted total, per-scorer scores). Scorers with weight 0 are skipped."""
    out = {}
    for c in ctx.cands:
        parts = {n: f(c, ctx) for n, f in SCORERS.items() if getattr(weights, n) > 0}
        out[c.model.id] = (sum(getattr(weights, n) * s for n, s in parts.items()), parts)
    return out
