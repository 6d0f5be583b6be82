"""The per-request cost estimate reported in `x-petit-cost-usd`.

A replica costs `price_per_replica_hour` whether busy or idle, and at the SLO it
sustains `capacity_tokens_per_s` generated tokens per second. A request's share
of that replica is its engine time: generated tokens plus prompt tokens
weighted by `prefill_token_weight` (prefill is batched and much cheaper per
token than decode). So::

    cost_usd = price_per_replica_hour / 3600
               * (completion_tokens + prefill_token_weight * prompt_tokens)
               / capacity_tokens_per_s

This charges a fully used replica exactly its price; idle time is not spread
over requests. Pure module.
"""

from __future__ import annotations

from decimal import Decimal


def estimate_cost_usd(
    prompt_tokens: int,
    completion_tokens: int,
    price_per_replica_hour: float,
    capacity_tokens_per_s: float,
    prefill_token_weight: float,
) -> float:
    """Estimated USD cost of one request. Raises ValueError on negative counts or zero capacity."""
    if prompt_tokens < 0 or completion_tokens < 0:
        raise ValueError("token counts must be >= 0")
    if capacity_tokens_per_s <= 0:
        raise ValueError("capacity_tokens_per_s must be > 0")
    engine_seconds = (completion_tokens + prefill_token_weight * prompt_tokens) / capacity_tokens_per_s
    return price_per_replica_hour / 3600.0 * engine_seconds


def format_cost(usd: float) -> str:
    """Header form: plain decimal (no exponent), 10 significant digits."""
    return format(Decimal(f"{usd:.10g}"), "f")
