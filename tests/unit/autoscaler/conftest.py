from __future__ import annotations

import pytest

from serving.fleet.schema import parse_fleet


def gpu_fleet_dict(**auto) -> dict:
    return {
        "name": "t",
        "models": [
            {
                "id": "s",
                "tier": "small",
                "source": {"hf": "a/s"},
                "resources": {"gpus": 1},
                "replicas": {"min": 1, "max": 8, "initial": 1},
                "price_per_replica_hour": 2.5,
                "capacity_tokens_per_s": 6000,
                "quality": 69.4,
            },
            {
                "id": "l",
                "tier": "large",
                "source": {"hf": "a/l"},
                "resources": {"gpus": 4},
                "replicas": {"min": 0, "max": 4, "initial": 2},
                "price_per_replica_hour": 10,
                "capacity_tokens_per_s": 1200,
                "quality": 83.6,
            },
        ],
        "autoscaler": auto,
    }


@pytest.fixture
def gfleet():
    return parse_fleet(gpu_fleet_dict(), "t")
