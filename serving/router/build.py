"""The one builder of routing policies: what an ingress replica (or a test, or a benchmark) routes with.

`build_router(routing)` makes every policy the fleet's `routing:` section
enables, around one shared `RoutingStateHolder` (so a routing change reaches
all of them) and, when `learned` or `cascade` is enabled, one router artefact
and one `DifficultyPredictor` (its encoder loads on first use or on
`await router.predictor.warm_up()`). Never raises for a bad artefact or
encoder: the learned policy then runs degraded (cheapest-fit) and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from serving.fleet.schema import RoutingConfig
from serving.router import artifact as artifacts
from serving.router.policies import CascadePolicy, CheapestFitPolicy, LearnedPolicy
from serving.router.predictor import DifficultyPredictor, Encoder, default_encoder_factory
from serving.router.scorers import ScorerWeights
from serving.router.state import RoutingState, RoutingStateHolder
from serving.router.types import RoutingPolicy

NEEDS_PREDICTOR = frozenset({LearnedPolicy.name, CascadePolicy.name})


@dataclass
class Router:
    """The enabled policies by name, the default one, the predictor (None: none needed or degraded) and the state."""

    policies: dict[str, RoutingPolicy]
    default: RoutingPolicy
    predictor: DifficultyPredictor | None
    state: RoutingStateHolder

    @classmethod
    def of(
        cls,
        default: RoutingPolicy,
        *others: RoutingPolicy,
        predictor: DifficultyPredictor | None = None,
        state: RoutingStateHolder | None = None,
    ) -> Router:
        """A router over policies made by hand (tests, tools); the first is the default."""
        return cls({p.name: p for p in (default, *others)}, default, predictor, state or RoutingStateHolder())


def build_router(
    routing: RoutingConfig,
    state: RoutingStateHolder | None = None,
    weights: ScorerWeights | None = None,
    load: Callable[[], artifacts.RouterArtifact] = artifacts.load,
    encoder_factory: Callable[[int], Encoder] = default_encoder_factory,
) -> Router:
    """The policies `routing` enables (its default and `enabled_policies`), sharing one state and artefact.

    The artefact is read (and torch/ONNX Runtime touched) only when `learned` or `cascade` is enabled.
    """
    state = state or RoutingStateHolder(RoutingState(**routing.initial_state.model_dump()))
    names = {routing.default_policy, *routing.enabled_policies}
    policies: dict[str, RoutingPolicy] = {CheapestFitPolicy.name: CheapestFitPolicy(state)}
    predictor = None
    if names & NEEDS_PREDICTOR:
        learned = LearnedPolicy(state=state, weights=weights, load=load)
        if learned.artifact is not None:
            predictor = DifficultyPredictor(learned.artifact, encoder_factory, on_failure=learned.mark_degraded)
        policies[LearnedPolicy.name] = learned
        policies[CascadePolicy.name] = CascadePolicy(state=state)
    enabled: dict[str, RoutingPolicy] = {n: p for n, p in policies.items() if n in names}
    return Router(enabled, enabled[routing.default_policy], predictor, state)
