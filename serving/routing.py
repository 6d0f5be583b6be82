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
from typing import Mapping, Protocol

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
class RouteRequest:
    model: str  # what the client sent: a fleet model id or "auto"
    max_tokens: int  # requested output budget (or the fleet default)
    prompt_tokens: Mapping[str, int] = field(default_factory=dict)  # per candidate model id


@dataclass(frozen=True)
class RouteDecision:
    model: str
    reason: str
    expected_cost_usd: float | None = None
    predicted_quality: float | None = None


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


POLICIES: dict[str, type] = {CheapestFitPolicy.name: CheapestFitPolicy}


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
