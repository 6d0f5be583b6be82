"""Routing filters: which models may answer a request (pure; no I/O).

Each filter takes the candidates left by the previous one and returns those it
keeps. When one empties the list, the pipeline raises that filter's
RoutingError (status, message, param, code), so the client learns why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from serving.router.state import RoutingState
from serving.router.types import ModelSnapshot, RouteRequest, RoutingError, fits


@dataclass(frozen=True)
class Candidate:
    model: ModelSnapshot
    prompt_tokens: int | None  # None until the model's own count is known
    cost_usd: float | None = None  # prompt + max_tokens at the model's price


@dataclass(frozen=True)
class FilterContext:
    request: RouteRequest
    state: RoutingState
    tier_ranks: dict[str, int]  # tier name -> rank, for constraints naming a tier absent from the fleet


@dataclass(frozen=True)
class Filter:
    name: str
    keep: Callable[[Candidate, FilterContext], bool]
    empty_error: Callable[[list[Candidate], FilterContext], RoutingError]


def _ready(c: Candidate, ctx: FilterContext) -> bool:
    return c.model.ready_replicas > 0


def _serves(c: Candidate, ctx: FilterContext) -> bool:
    return c.prompt_tokens is not None  # the model counted this prompt: it serves this kind of request


def _fits(c: Candidate, ctx: FilterContext) -> bool:
    return c.prompt_tokens is not None and fits(c.model, c.prompt_tokens, ctx.request.max_tokens)


def _min_tier(c: Candidate, ctx: FilterContext) -> bool:
    t = ctx.request.constraints.min_tier
    return t is None or c.model.tier_rank >= ctx.tier_ranks[t]


def _max_tier(c: Candidate, ctx: FilterContext) -> bool:
    t = ctx.request.constraints.max_tier
    return t is None or c.model.tier_rank <= ctx.tier_ranks[t]


def _max_cost(c: Candidate, ctx: FilterContext) -> bool:
    limit = ctx.request.constraints.max_cost_usd
    return limit is None or (c.cost_usd is not None and c.cost_usd <= limit)


def _state_tiers(c: Candidate, ctx: FilterContext) -> bool:
    allowed = ctx.state.allowed_tiers
    return allowed is None or c.model.tier in allowed


def _no_ready(cands: list[Candidate], ctx: FilterContext) -> RoutingError:
    return RoutingError(503, "no model of the fleet has a ready replica", code="no_ready_replica")


def _no_fit(cands: list[Candidate], ctx: FilterContext) -> RoutingError:
    largest = max((c.model for c in cands), key=lambda m: m.max_model_len, default=None)
    where = f" (largest: {largest.id}, {largest.max_model_len} tokens)" if largest else ""
    return RoutingError(
        400,
        f"the prompt plus max_tokens ({ctx.request.max_tokens}) does not fit any ready model's context window{where}",
        param="messages",
        code="context_length_exceeded",
    )


def _no_count(cands: list[Candidate], ctx: FilterContext) -> RoutingError:
    # The gateway raises a model's 4xx count answer itself (the prompt is invalid); a missing count
    # means the count timed out, was refused (overload) or failed: a retry may succeed.
    return RoutingError(
        503,
        "no ready model could count the prompt's tokens in time (overloaded or failing); retry later",
        code="count_unavailable",
    )


def _no_tier(cands: list[Candidate], ctx: FilterContext) -> RoutingError:
    have = ", ".join(sorted({c.model.tier for c in cands}))
    return RoutingError(
        400,
        f"no ready model of tier {ctx.request.constraints.min_tier} or above can take this "
        f"request (fitting tiers: {have})",
        param="petit.min_tier",
        code="constraint_unsatisfiable",
    )


def _no_tier_below(cands: list[Candidate], ctx: FilterContext) -> RoutingError:
    have = ", ".join(sorted({c.model.tier for c in cands}))
    return RoutingError(
        400,
        f"no ready model of tier {ctx.request.constraints.max_tier} or below can take this request "
        f"(fitting tiers: {have})",
        param="petit.max_tier",
        code="constraint_unsatisfiable",
    )


def _no_cost(cands: list[Candidate], ctx: FilterContext) -> RoutingError:
    cheapest = min((c.cost_usd for c in cands if c.cost_usd is not None), default=None)
    hint = f"; the cheapest allowed model would cost about ${cheapest:.6g}" if cheapest is not None else ""
    return RoutingError(
        400,
        f"no model can answer within max_cost_usd={ctx.request.constraints.max_cost_usd:g}{hint}",
        param="petit.max_cost_usd",
        code="constraint_unsatisfiable",
    )


def _state_closed(cands: list[Candidate], ctx: FilterContext) -> RoutingError:
    return RoutingError(
        503,
        f"routing currently allows tiers {sorted(ctx.state.allowed_tiers or ())} only, and "
        "none of them can take this request; retry later",
        code="tier_unavailable",
    )


READY = Filter("ready", _ready, _no_ready)
SERVES = Filter("serves", _serves, _no_count)
CONTEXT = Filter("context", _fits, _no_fit)
MIN_TIER = Filter("min_tier", _min_tier, _no_tier)
MAX_TIER = Filter("max_tier", _max_tier, _no_tier_below)
MAX_COST = Filter("max_cost", _max_cost, _no_cost)
STATE_TIERS = Filter("state_tiers", _state_tiers, _state_closed)
DEFAULT_FILTERS = (READY, SERVES, CONTEXT, MIN_TIER, MAX_TIER, MAX_COST, STATE_TIERS)


def run_filters(
    cands: list[Candidate], ctx: FilterContext, filters: tuple[Filter, ...] = DEFAULT_FILTERS
) -> tuple[list[Candidate], list[str]]:
    """Apply `filters` in order. Returns (kept, notes like 'small:context'). Raises the emptying filter's error."""
    notes: list[str] = []
    for f in filters:
        kept = [c for c in cands if f.keep(c, ctx)]
        if not kept:
            raise f.empty_error(cands, ctx)
        if f is not READY:
            notes += [f"{c.model.id}:{f.name}" for c in cands if c not in kept]
        cands = kept
    return cands, notes
