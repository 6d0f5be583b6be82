"""The router's values: what routing sees, what it is asked, what it answers.

The ingress builds a :class:`FleetSnapshot` (what models exist, their tiers,
context windows, prices and ready replicas) and a :class:`RouteRequest` (what
the client asked for, with the prompt's token count per model), and asks a
:class:`RoutingPolicy` (see `serving.router.policies`) for a
:class:`RouteDecision`.

Pure module: no Ray, vLLM or FastAPI imports, no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from serving.fleet.cost import estimate_cost_usd
from serving.fleet.schema import FleetConfig, ModelConfig


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
    def from_config(cls, m: ModelConfig, ready_replicas: int) -> ModelSnapshot:
        return cls(
            m.id,
            m.tier.value,
            m.tier.rank,
            m.engine.max_model_len,
            m.price_per_replica_hour,
            m.capacity_tokens_per_s,
            m.prefill_token_weight,
            ready_replicas,
        )

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return estimate_cost_usd(
            prompt_tokens,
            completion_tokens,
            self.price_per_replica_hour,
            self.capacity_tokens_per_s,
            self.prefill_token_weight,
        )


@dataclass(frozen=True)
class FleetSnapshot:
    models: tuple[ModelSnapshot, ...]

    @classmethod
    def from_config(cls, fleet: FleetConfig, ready: Mapping[str, int]) -> FleetSnapshot:
        return cls(tuple(ModelSnapshot.from_config(m, ready.get(m.id, 0)) for m in fleet.models))

    def get(self, model_id: str) -> ModelSnapshot | None:
        return next((m for m in self.models if m.id == model_id), None)


@dataclass(frozen=True)
class RequestConstraints:
    """What one request allows the router to do (parsed by `serving.router.constraints`).

    `max_cost_usd`: the most this request may cost (estimated with its max_tokens);
    `min_tier`: the lowest quality tier that may answer it; `allow_downgrade`:
    whether the router may send it below the tier it would pick when the fleet
    is short of capacity (the routing state's downgrade share); `max_tier`: the
    highest tier that may answer it (a client's cap, or its tenant's limit or
    budget downgrade).
    """

    max_cost_usd: float | None = None
    min_tier: str | None = None
    allow_downgrade: bool = True
    max_tier: str | None = None


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
    priority: str | None = None  # the tenant's priority class (its downgrade share under scarcity); None: no tenant


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
    """A way to pick a model for `auto`. `degraded` (with a reason) when it runs on a fallback."""

    name: str

    @property
    def degraded(self) -> bool: ...

    @property
    def degraded_reason(self) -> str | None: ...

    def choose(self, request: RouteRequest, fleet: FleetSnapshot) -> RouteDecision:
        """Pick a model for an `auto` request. Raises RoutingError."""


def fits(m: ModelSnapshot, prompt_tokens: int, max_tokens: int) -> bool:
    return prompt_tokens + max_tokens <= m.max_model_len
