from __future__ import annotations

from pathlib import Path

import pytest

from serving.fleet.schema import FleetConfig, parse_fleet

ROOT = Path(__file__).resolve().parents[2]


def fleet_dict(**overrides) -> dict:
    base = {
        "name": "test",
        "models": [
            {
                "id": "small",
                "tier": "small",
                "source": {"packaged": "smollm2-135m-instruct"},
                "engine": {"max_model_len": 64},
                "price_per_replica_hour": 0.05,
                "capacity_tokens_per_s": 250,
            },
            {
                "id": "large",
                "tier": "large",
                "source": {"path": "/models/large"},
                "engine": {"max_model_len": 256},
                "price_per_replica_hour": 0.20,
                "capacity_tokens_per_s": 80,
            },
        ],
    }
    base.update(overrides)
    return base


@pytest.fixture
def fleet() -> FleetConfig:
    return parse_fleet(fleet_dict(), "test-fleet")
