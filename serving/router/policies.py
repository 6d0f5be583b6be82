"""Every routing policy for `auto`, and `route()`, the one entry point (pure decisions; see `pipeline`).

- `cheapest_fit`: the cheapest ready model whose context holds the request;
- `learned`: the difficulty router (RouteLLM-style threshold on a learned score);
- `cascade`: the cheapest model first, the strongest allowed one on low confidence.

Each reads the routing state from a shared `RoutingStateHolder` at every
decision, so the autoscaler's plan (allowed tiers, strong share) and an
operator's changes apply to `auto` whatever the policy, without a restart.
Build them with `serving.router.build.build_router`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from serving.fleet.schema import AUTO_MODEL
from serving.router import artifact as artifacts
from serving.router.filters import FilterContext, run_filters
from serving.router.pipeline import candidates, gate, resolve_threshold, run_pipeline, tier_ranks
from serving.router.scorers import ScorerWeights
from serving.router.state import RoutingState, RoutingStateHolder
from serving.router.types import FleetSnapshot, RouteDecision, RouteRequest, RoutingError, RoutingPolicy

log = logging.getLogger("petit.router")

CHEAPEST_FIT_WEIGHTS = ScorerWeights(tier_fit=0.0, quality=0.0, price=1.0, headroom=0.0)
DEFAULT_STRONG_SHARE = 0.5


def cheapest_fit(request: RouteRequest, fleet: FleetSnapshot, state: RoutingState, label: str) -> RouteDecision:
    """The cheapest candidate that passes every filter (ties: lower tier). Raises RoutingError.

    The reason is `label`, plus `;skipped=<model>:<filter>,...` for models a filter removed.
    """
    d = run_pipeline(request, fleet, state, float("inf"), CHEAPEST_FIT_WEIGHTS, name=label)
    skipped = d.reason.partition(";skipped=")[2]
    return RouteDecision(
        d.model, label + (f";skipped={skipped}" if skipped else ""), expected_cost_usd=d.expected_cost_usd
    )


class CheapestFitPolicy:
    """The cheapest ready model whose context window holds the prompt plus `max_tokens`.

    Ties on price go to the lower tier. A model whose prompt token count is
    unknown (it could not be asked) is not a candidate; tiers the routing state
    closes (the autoscaler's plan under GPU scarcity) are not either.
    """

    name = "cheapest_fit"
    degraded = False
    degraded_reason: str | None = None

    def __init__(self, state: RoutingStateHolder | None = None) -> None:
        self.state = state or RoutingStateHolder()

    def choose(self, request: RouteRequest, fleet: FleetSnapshot) -> RouteDecision:
        """Raises RoutingError when no model passes the filters."""
        return cheapest_fit(request, fleet, self.state.get(), self.name)


class LearnedPolicy:
    """Route by the predicted difficulty of the prompt (RouteLLM-style threshold on a learned score).

    The request carries the predictor's `DifficultyPrediction` (computed off the
    event loop before routing). Without a usable artefact, or for a request
    without a prediction, it routes like `cheapest_fit` (the request's
    constraints and the state's tiers still apply) and says so in the reason.
    `degraded` / `degraded_reason` tell /health why; the cause is logged once.
    """

    name = "learned"

    def __init__(
        self,
        artifact: artifacts.RouterArtifact | None = None,
        state: RoutingStateHolder | None = None,
        weights: ScorerWeights | None = None,
        load: Callable[[], artifacts.RouterArtifact] = artifacts.load,
    ) -> None:
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
            return cheapest_fit(request, fleet, state, f"{self.name}:{why}->{CheapestFitPolicy.name}")
        return run_pipeline(request, fleet, state, self.threshold(), self.weights, name=self.name)


class CascadePolicy:
    """FrugalGPT-style cascade: answer with the cheapest allowed model, escalate on low confidence.

    The decision names the first model and, in `escalate_to`, the strongest
    allowed tier (None when they are the same). The gateway asks the first
    model for token logprobs and uses `serving.router.cascade` to decide
    whether to escalate. With a skip score (the routing state's
    `cascade_skip_score`, else the constructor's), a prompt whose predicted score
    reaches it goes straight to the strong model. `expected_cost_usd` is the
    first model's cost (escalation adds the second's; see `cascade.cascade_cost`).
    """

    name = "cascade"

    def __init__(self, state: RoutingStateHolder | None = None, skip_score: float | None = None) -> None:
        self.state = state or RoutingStateHolder()
        self.skip_score = skip_score

    degraded = False
    degraded_reason: str | None = None

    def choose(self, request: RouteRequest, fleet: FleetSnapshot) -> RouteDecision:
        """Raises RoutingError when no model passes the filters."""
        state = self.state.get()
        kept, notes = run_filters(candidates(request, fleet), FilterContext(request, state, tier_ranks(fleet)))
        first = min(kept, key=lambda c: (c.model.tier_rank, c.cost_usd or 0.0, c.model.id))
        strong = min(kept, key=lambda c: (-c.model.tier_rank, c.cost_usd or 0.0, c.model.id))
        skipped = f";skipped={','.join(notes)}" if notes else ""
        p = request.prediction
        skip = state.cascade_skip_score if state.cascade_skip_score is not None else self.skip_score
        if skip is not None and p is not None and p.score >= skip and gate(request, state, skip).want_strong:
            return RouteDecision(
                strong.model.id,
                f"cascade:skip_to_strong;score={p.score:.3f}{skipped}",
                expected_cost_usd=strong.cost_usd,
                strong_score=p.score,
            )
        escalate = strong.model.id if strong.model.tier_rank > first.model.tier_rank else None
        return RouteDecision(
            first.model.id,
            f"cascade:first={first.model.id};escalate_to={escalate}{skipped}",
            expected_cost_usd=first.cost_usd,
            escalate_to=escalate,
            strong_score=None if p is None else p.score,
        )


POLICY_NAMES = (CheapestFitPolicy.name, LearnedPolicy.name, CascadePolicy.name)


def route(request: RouteRequest, fleet: FleetSnapshot, policy: RoutingPolicy) -> RouteDecision:
    """Resolve a request to one model.

    An explicitly named model is served by that model (never swapped); `auto`
    goes through `policy`. Raises RoutingError: 404 for an unknown model (the
    message lists the served ids), 503 when the model has no ready replica,
    400 when the request cannot fit.
    """
    if request.model == AUTO_MODEL:
        return policy.choose(request, fleet)
    target = fleet.get(request.model)
    if target is None:
        ids = ", ".join([m.id for m in fleet.models] + [AUTO_MODEL])
        raise RoutingError(
            404,
            f"The model '{request.model}' does not exist. Served models: {ids}",
            param="model",
            code="model_not_found",
        )
    if target.ready_replicas <= 0:
        raise RoutingError(503, f"model '{target.id}' has no ready replica; retry later", code="no_ready_replica")
    return RouteDecision(target.id, "explicit")
