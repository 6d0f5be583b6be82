"""Scarcity by priority: whose movable traffic leaves the strong tier first when GPUs are short (pure).

The plan's downgrade share (the share of movable traffic sent below the tier it would get with
unlimited GPUs) is split over the tenants' priority classes by their demand mix: `low` is
downgraded first, up to all of it, then `normal`, `high` last, so that the mix-weighted mean
stays the plan's share and the strong tier carries what the plan gives it. The gateway applies
a class's share to its tenants' strong-routed requests
(`serving.router.state.RoutingState.downgrade_share_by_priority`); the simulator realises the
same split per request (`priority_shares`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from autoscaler.snapshot import ModelSignals
from serving.fleet.tenants import PRIORITIES


def priority_mix(signals: Mapping[str, ModelSignals]) -> dict[str, float]:
    """Movable requests/s per priority class, summed over models; classes without demand are left out."""
    mix: dict[str, float] = {}
    for s in signals.values():
        for p, rps in s.movable_rps_by_priority.items():
            if p in PRIORITIES and math.isfinite(rps) and rps > 0:
                mix[p] = mix.get(p, 0.0) + rps
    return mix


def split_downgrade(share: float, mix: Mapping[str, float] | None) -> dict[str, float]:
    """The downgrade share of each priority class (every one in `PRIORITIES`, lowest first).

    Promises: each value in [0, 1]; non-increasing from `low` to `high`; the mean weighted by
    `mix` (demand per class, any unit) equals `share` clamped to [0, 1]. The classes fill up
    like a water level: a class is downgraded only once every lower class is entirely, and a
    class without demand takes the level where it stands (1 below the partly downgraded class,
    0 above it). Without a mix to order (none, no demand, or demand in one class only) every
    class gets `share`: priority only matters when a class can yield to another.
    """
    share = min(1.0, max(0.0, share)) if math.isfinite(share) else 0.0
    weights = {p: max(0.0, float(mix.get(p, 0.0))) if mix else 0.0 for p in PRIORITIES}
    weights = {p: w if math.isfinite(w) else 0.0 for p, w in weights.items()}
    if sum(1 for w in weights.values() if w > 0) < 2:
        return dict.fromkeys(PRIORITIES, share)
    total = sum(weights.values())
    weights = {p: w / total for p, w in weights.items()}  # fractions: tiny demands must not underflow `need`
    need, level = share, 0.0
    for rank, p in enumerate(PRIORITIES):
        if need <= 0:
            break
        w = weights[p]
        if w <= 0:
            continue
        take = min(need, w)
        level, need = rank + take / w, need - take
    return {p: min(1.0, max(0.0, level - rank)) for rank, p in enumerate(PRIORITIES)}


def priority_shares(
    shares: Mapping[str, float],
    strong_ids: Collection[str],
    strong_share: float,
    by_priority: Mapping[str, float],
) -> dict[str, dict[str, float]]:
    """Per priority class, the movable-traffic share per model that the gateway realises.

    The router sends `strong_share` (the routing state's share: the plan's strong share before
    the downgrade) of a class's requests to the strong tier and downgrades its class's share of
    those: the strong models get `strong_share * (1 - d)` (split as in `shares`), the other
    models the rest, split as in `shares`. With no weaker model in `shares` a class keeps
    `shares` (nowhere to downgrade to).
    """
    strong_total = sum(v for k, v in shares.items() if k in strong_ids)
    weak_total = sum(v for k, v in shares.items() if k not in strong_ids)
    out: dict[str, dict[str, float]] = {}
    for p in PRIORITIES:
        d = min(1.0, max(0.0, by_priority.get(p, 0.0)))
        strong = min(1.0, max(0.0, strong_share * (1 - d)))
        if weak_total <= 0 or strong_total <= 0:
            out[p] = dict(shares)
            continue
        out[p] = {
            k: v * (strong / strong_total if k in strong_ids else (1 - strong) / weak_total) for k, v in shares.items()
        }
    return out
