"""The routing seam: pure decisions over a fleet snapshot.

The ingress builds a :class:`FleetSnapshot` (what models exist, their tiers,
context windows, prices and ready replicas) and a :class:`RouteRequest` (what
the client asked for, with the prompt's token count per model), and asks a
:class:`RoutingPolicy` for a :class:`RouteDecision`. Policies are plain objects
with one method; the learned router and the cascade plug in here without
touching the ingress.

Pure module: no Ray, vLLM or FastAPI imports, no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

from serving.config import AUTO_MODEL, FleetConfig, ModelConfig
from serving.cost import estimate_cost_usd


@dataclass(frozen=True)
class ModelSnapshot:
    id: str
    tier: str
    tier_rank: int
    max_model_len: int
    price_per_replica_hour: float
    capacity_tokens_per_s: float
    prefill_token_weight: float
    ready_replicas: int

    @classmethod
    def from_config(cls, m: ModelConfig, ready_replicas: int) -> "ModelSnapshot":
        return cls(m.id, m.tier.value, m.tier.rank, m.engine.max_model_len, m.price_per_replica_hour,
                   m.capacity_tokens_per_s, m.prefill_token_weight, ready_replicas)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return estimate_cost_usd(prompt_tokens, completion_tokens, self.price_per_replica_hour,
                                 self.capacity_tokens_per_s, self.prefill_token_weight)


@dataclass(frozen=True)
class FleetSnapshot:
    models: tuple[ModelSnapshot, ...]

    @classmethod
    def from_config(cls, fleet: FleetConfig, ready: Mapping[str, int]) -> "FleetSnapshot":
        return cls(tuple(ModelSnapshot.from_config(m, ready.get(m.id, 0)) for m in fleet.models))

    def get(self, model_id: str) -> ModelSnapshot | None:
        return next((m for m in self.models if m.id == model_id), None)


@dataclass(frozen=True)
class RequestConstraints:
    """What one request allows the router to do (parsed by `serving.router.constraints`).

    `max_cost_usd`: the most this request may cost (estimated with its max_tokens);
    `min_tier`: the lowest quality tier that may answer it; `allow_downgrade`:
    whether the router may send it below the tier it would pick when the fleet
    is short of capacity (the routing state's downgrade share).
    """

    max_cost_usd: float | None = None
    min_tier: str | None = None
    allow_downgrade: bool = True


@dataclass(frozen=True)
class DifficultyPrediction:
    """What the difficulty predictor says about a prompt (see `serving.router.predictor`).

    `score`: the routing score, same scale as the routing threshold (>= threshold:
    worth the strong model); `p_weak_ok` / `p_strong_ok`: predicted chance that
    the cheapest / the strongest tier answers well.
    """

    score: float
    p_weak_ok: float
    p_strong_ok: float


@dataclass(frozen=True)
class RouteRequest:
    model: str  # what the client sent: a fleet model id or "auto"
    max_tokens: int  # requested output budget (or the fleet default)
    prompt_tokens: Mapping[str, int] = field(default_factory=dict)  # per candidate model id
    constraints: RequestConstraints = RequestConstraints()
    prediction: DifficultyPrediction | None = None  # None: no prediction (policies fall back)
    route_key: float = 0.5  # uniform in [0, 1) per request (e.g. from a hash of its id), for share splits


@dataclass(frozen=True)
class RouteDecision:
    model: str
    reason: str
    expected_cost_usd: float | None = None
    predicted_quality: float | None = None
    escalate_to: str | None = None  # cascade: the model to retry with when the first answer is not confident
    strong_score: float | None = None  # the prediction's routing score, when one was used


class RoutingError(Exception):
    """No model can take the request. Carries the HTTP status and OpenAI error fields."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


class RoutingPolicy(Protocol):
    name: str

    def choose(self, request: RouteRequest, fleet: FleetSnapshot) -> RouteDecision:
        """Pick a model for an `auto` request. Raises RoutingError."""


def fits(m: ModelSnapshot, prompt_tokens: int, max_tokens: int) -> bool:
    return prompt_tokens + max_tokens <= m.max_model_len


class CheapestFitPolicy:
    """The cheapest ready model whose context window holds the prompt plus `max_tokens`.

    Ties on price go to the lower tier. A model whose prompt token count is
    unknown (it could not be asked) is not a candidate.
    """

    name = "cheapest_fit"

    def choose(self, request: RouteRequest, fleet: FleetSnapshot) -> RouteDecision:
        ready = [m for m in fleet.models if m.ready_replicas > 0]
        if not ready:
            raise RoutingError(503, "no model of the fleet has a ready replica", code="no_ready_replica")
        counted = [m for m in ready if m.id in request.prompt_tokens]
        fitting = [m for m in counted if fits(m, request.prompt_tokens[m.id], request.max_tokens)]
        if not fitting:
            largest = max(counted or ready, key=lambda m: m.max_model_len)
            raise RoutingError(
                400,
                f"the prompt plus max_tokens ({request.max_tokens}) does not fit any ready model's context "
                f"window (largest: {largest.id}, {largest.max_model_len} tokens)",
                param="messages",
                code="context_length_exceeded",
            )
        best = min(fitting, key=lambda m: (m.cost(request.prompt_tokens[m.id], request.max_tokens), m.tier_rank))
        skipped = [m.id for m in counted if m not in fitting]
        reason = "cheapest_fit"
        if skipped:
            reason += f";skipped={','.join(skipped)}:context"
        prompt = request.prompt_tokens[best.id]
        return RouteDecision(best.id, reason, expected_cost_usd=best.cost(prompt, request.max_tokens))


def _learned() -> RoutingPolicy:
    # serving.router imports this module: import it at call time.
    from serving.router.policies import LearnedPolicy

    return LearnedPolicy()


def _cascade() -> RoutingPolicy:
    from serving.router.policies import CascadePolicy

    return CascadePolicy()


# name -> zero-argument factory. "learned" and "cascade" load the shipped router
# artefact; to share one artefact and routing state with a predictor, build
# them with serving.router.predictor.build_learned_router instead.
POLICIES: dict[str, Callable[[], RoutingPolicy]] = {
    CheapestFitPolicy.name: CheapestFitPolicy, "learned": _learned, "cascade": _cascade}


def build_policy(name: str) -> RoutingPolicy:
    """Construct the routing policy called `name`. Raises KeyError with the known names."""
    try:
        return POLICIES[name]()
    except KeyError:
        raise KeyError(f"unknown routing policy '{name}'; known: {', '.join(POLICIES)}") from None


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
        raise RoutingError(404, f"The model '{request.model}' does not exist. Served models: {ids}",
                           param="model", code="model_not_found")
    if target.ready_replicas <= 0:
        raise RoutingError(503, f"model '{target.id}' has no ready replica; retry later", code="no_ready_replica")
    return RouteDecision(target.id, "explicit")
