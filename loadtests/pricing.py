"""Cost of a request when the target does not report it, and each model's tier.

Two sources, both optional:

- a Petit fleet config: the same formula Petit uses (serving/fleet/cost.py), and the
  models' tiers;
- a simple price table YAML (USD per 1M tokens, like API price lists)::

      models:
        gpt-4o-mini: {input_per_1m_usd: 0.15, output_per_1m_usd: 0.60, tier: small}
        default:     {input_per_1m_usd: 1.0,  output_per_1m_usd: 3.0}

Pure module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from loadtests.config_files import LoadTestInputError, load_yaml
from serving.fleet.cost import estimate_cost_usd
from serving.fleet.schema import FleetConfig, FleetConfigError, load_fleet

TIERS = ("small", "medium", "large")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelPrice(_Strict):
    input_per_1m_usd: float = Field(ge=0, description="USD per 1M prompt tokens.")
    output_per_1m_usd: float = Field(ge=0, description="USD per 1M generated tokens.")
    tier: Literal["small", "medium", "large"] | None = None


class PriceTableFile(_Strict):
    models: dict[str, ModelPrice] = Field(min_length=1, description="Model id (or `default`) -> prices.")


class PriceTable:
    """Looks up a model's cost and tier. Empty tables price nothing (cost None)."""

    def __init__(self, table: PriceTableFile | None = None, fleet: FleetConfig | None = None):
        self.table = table
        self.fleet = fleet

    def cost_usd(self, model: str | None, prompt_tokens: int | None, output_tokens: int | None) -> float | None:
        """Estimated USD for one request; None when the model has no price or counts are unknown."""
        if model is None or output_tokens is None:
            return None
        p_in = prompt_tokens or 0
        if self.fleet is not None and model in self.fleet.model_ids:
            m = self.fleet.model(model)
            return estimate_cost_usd(
                p_in, output_tokens, m.price_per_replica_hour, m.capacity_tokens_per_s, m.prefill_token_weight
            )
        price = self._price(model)
        if price is None:
            return None
        return (p_in * price.input_per_1m_usd + output_tokens * price.output_per_1m_usd) / 1e6

    def tier(self, model: str | None) -> str | None:
        """The model's tier ("small" < "medium" < "large"), or None when unknown."""
        if model is None:
            return None
        if self.fleet is not None and model in self.fleet.model_ids:
            return self.fleet.model(model).tier.value
        price = self._price(model)
        return price.tier if price is not None else None

    def _price(self, model: str) -> ModelPrice | None:
        if self.table is None:
            return None
        return self.table.models.get(model) or self.table.models.get("default")


def tier_rank(tier: str) -> int:
    return TIERS.index(tier)


def load_price_table(prices: str | Path | None = None, fleet: str | Path | None = None) -> PriceTable:
    """Build a PriceTable from a price YAML and/or a fleet config. Raises LoadTestInputError."""
    table = load_yaml(prices, PriceTableFile, "price table") if prices else None
    fleet_cfg = None
    if fleet:
        try:
            fleet_cfg = load_fleet(fleet)
        except FleetConfigError as err:
            raise LoadTestInputError(str(err)) from None
    return PriceTable(table, fleet_cfg)
