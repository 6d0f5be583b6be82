"""Shared tenant test values: a fleet with tenants, keys and their hashes, a settable clock."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from tests.unit.conftest import fleet_dict

KEYS = {"alpha": "key-alpha-1", "beta": "key-beta-1", "gamma": "key-gamma-1"}
# 2025-01-31 23:59:00 UTC: a minute before a day and a month end
EVE = datetime(2025, 1, 31, 23, 59, 0, tzinfo=timezone.utc).timestamp()


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def tenant(name: str, **fields) -> dict:
    return {"name": name, "key_sha256": [sha(KEYS.get(name, name))], **fields}


def tenants_fleet(*tenants: dict, **overrides) -> dict:
    return fleet_dict(tenants=list(tenants), **overrides)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: float = EVE) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
