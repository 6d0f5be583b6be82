"""The `learned` and `cascade` routing policies (pure decisions; see `pipeline`).

Both read the routing state from a shared `RoutingStateHolder` at every
decision, so the autoscaler can change thresholds, tiers and shares at run time.
"""

from __future__ import annotations

import logging
from typing import Callable

from serving.routing import FleetSnapshot, RouteDecision, RouteRequest
from serving.router import artifact as artifacts
from serving.router.filters import FilterContext, run_filters
from serving.router.pipeline import candidates, gate, resolve_threshold, run_pipeline, tier_ranks
from serving.router.scorers import ScorerWeights
from serving.router.state import RoutingStateHolder

log = logging.getLogger("petit.router")

CHEAPEST_FIT_WEIGHTS = ScorerWeights(tier_fit=0.0, quality=0.0, price=1.0, headroom=0.0, traffic=0.0)
DEFAULT_STRONG_SHARE = 0.5


class LearnedPolicy:
    """Route by the predicted difficulty of the prompt (RouteLLM-style threshold on a learned score).

    The request carries the predictor's `DifficultyPrediction` (computed off the
    event loop before routing). Without a usable artefact, or for a request
    without a prediction, it routes like `cheapest_fit` (the request's
    constraints and the state's tiers still apply) and says so in the reason.
    `degraded` / `degraded_reason` tell /health why; the cause is logged once.
    """

    name = "learned"

    def __init__(self, artifact: artifacts.RouterArtifact | None = None, state: RoutingStateHolder | None = None,
                 weights: ScorerWeights | None = None,
                 load: Callable[[], artifacts.RouterArtifact] = artifacts.load) -> None:
        self.state = state or RoutingStateHolder()
        self.weights = weights or ScorerWeights()
        self._degraded: str | None = None
        if artifact is None:
            try:
                artifact = load()
            except artifacts.ArtifactError as err:
                self.mark_degraded(f"router artefact unusable: {err}")
        self.artifact = artifact

    @property
    def degraded(self) -> bool:
        return self._degraded is not None

    @property
    def degraded_reason(self) -> str | None:
        return self._degraded

    def mark_degraded(self, reason: str) -> None:
        """Switch to the cheapest-fit fallback for good (e.g. the encoder cannot load). Logs the first cause."""
        if self._degraded is None:
            self._degraded = reason
            log.warning("learned routing degraded, falling back to cheapest_fit: %s", reason)

    def threshold(self) -> float:
        """The score threshold in force now (state threshold, else its share calibrated on the artefact)."""
        meta = self.artifact.metadata if self.artifact is not None else {}
        quantiles = meta.get("calibration", {}).get("score_quantiles")
        default_share = meta.get("default_strong_share", DEFAULT_STRONG_SHARE)
        return resolve_threshold(self.state.get(), quantiles, default_share)

    def choose(self, request: RouteRequest, fleet: FleetSnapshot) -> RouteDecision:
        """Raises RoutingError when no model passes the filters."""
        state = self.state.get()
        if self.degraded or request.prediction is None:
            why = "degraded" if self.degraded else "no_prediction"
            d = run_pipeline(request, fleet, state, float("inf"), CHEAPEST_FIT_WEIGHTS, name=self.name)
            skipped = d.reason.partition(";skipped=")[2]
            reason = f"{self.name}:{why}->cheapest_fit" + (f";skipped={skipped}" if skipped else "")
            return RouteDecision(d.model, reason, expected_cost_usd=d.expected_cost_usd)
        return run_pipeline(request, fleet, state, self.threshold(), self.weights, name=self.name)


class CascadePolicy:
    """FrugalGPT-style cascade: answer with the cheapest allowed model, escalate on low confidence.

    The decision names the first model and, in `escalate_to`, the strongest
    allowed tier (None when they are the same). The gateway asks the first
    model for token logprobs and uses `serving.router.cascade` to decide
    whether to escalate. With `skip_score`, a prompt whose predicted score
    reaches it goes straight to the strong model. `expected_cost_usd` is the
    first model's cost (escalation adds the second's; see `cascade.cascade_cost`).
    """

    name = "cascade"

    def __init__(self, state: RoutingStateHolder | None = None, skip_score: float | None = None) -> None:
        self.state = state or RoutingStateHolder()
        self.skip_score = skip_score
        self.degraded, self.degraded_reason = False, None

    def choose(self, request: RouteRequest, fleet: FleetSnapshot) -> RouteDecision:
        """Raises RoutingError when no model passes the filters."""
        state = self.state.get()
        kept, notes = run_filters(candidates(request, fleet), FilterContext(request, state, tier_ranks(fleet)))
        first = min(kept, key=lambda c: (c.model.tier_rank, c.cost_usd or 0.0, c.model.id))
        strong = min(kept, key=lambda c: (-c.model.tier_rank, c.cost_usd or 0.0, c.model.id))
        skipped = f";skipped={','.join(notes)}" if notes else ""
        p = request.prediction
        if (self.skip_score is not None and p is not None and p.score >= self.skip_score
                and gate(request, state, self.skip_score).want_strong):
            return RouteDecision(strong.model.id, f"cascade:skip_to_strong;score={p.score:.3f}{skipped}",
                                 expected_cost_usd=strong.cost_usd, strong_score=p.score)
        escalate = strong.model.id if strong.model.tier_rank > first.model.tier_rank else None
        return RouteDecision(first.model.id, f"cascade:first={first.model.id};escalate_to={escalate}{skipped}",
                             expected_cost_usd=first.cost_usd, escalate_to=escalate,
                             strong_score=None if p is None else p.score)
