"""The allocation maths of the policy: demand, candidate plans, expected quality,
the best allocation for a GPU budget, and the routing that fits ready capacity.

Pure module. Loads are in *work tokens per second*: output tokens plus
`prefill_token_weight` x input tokens, the unit `capacity_tokens_per_s` uses.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from autoscaler.helpers import interpolate, replicas_for
from autoscaler.snapshot import ModelSignals
from serving.fleet.autoscaling import DEFAULT_TIER_QUALITY, AutoscalerConfig
from serving.fleet.schema import FleetConfig

QualityCurve = Sequence[tuple[float, float]]
"""Router quality curve: (share sent up, fraction of the quality gap recovered) points."""

_AVG_WORK_PER_QUEUED = 256.0  # work tokens assumed per queued request when no arrivals were seen


@dataclass(frozen=True)
class ModelView:
    """What the policy needs of one model: bounds, size, capacity at the SLO, price, quality."""

    id: str
    tier: str
    gpus: float
    min: int
    max: int
    capacity: float
    prefill_weight: float
    price: float
    quality: float


@dataclass(frozen=True)
class Demand:
    """Pinned load per model, and the movable pool split into output/input tokens/s."""

    pinned: dict[str, float]
    pool_out: float
    pool_in: float

    def pool_work(self, view: ModelView) -> float:
        return self.pool_out + view.prefill_weight * self.pool_in

    @property
    def total_tokens(self) -> float:
        return self.pool_out + self.pool_in + sum(self.pinned.values())


@dataclass(frozen=True)
class Allocation:
    """One allocation: replicas and movable-traffic shares per model."""

    replicas: dict[str, int]
    shares: dict[str, float]
    gpus: float
    cost: float
    quality: float
    serves_all: bool


def build_views(fleet: FleetConfig) -> list[ModelView]:
    """Model views sorted by quality (lowest first). Quality: model.quality, else
    autoscaler.quality[id], else autoscaler.quality[tier], else the tier default."""
    cfg = fleet.autoscaler
    views = []
    for m in fleet.models:
        q = m.quality
        if q is None:
            q = cfg.quality.get(m.id, cfg.quality.get(m.tier.value, DEFAULT_TIER_QUALITY[m.tier.value]))
        units = m.resources.cpus if cfg.budget_resource == "cpus" else m.resources.gpus
        views.append(
            ModelView(
                m.id,
                m.tier.value,
                units,
                m.replicas.min,
                m.replicas.max,
                m.capacity_tokens_per_s,
                m.prefill_token_weight,
                m.price_per_replica_hour,
                q,
            )
        )
    return sorted(views, key=lambda v: (v.quality, v.id))


def measure_demand(views: list[ModelView], signals: Mapping[str, ModelSignals], drain_s: float) -> Demand:
    """Demand from the window's rates plus a term that drains queued requests in `drain_s`."""
    pinned: dict[str, float] = {}
    pool_out = pool_in = 0.0
    for v in views:
        s = signals.get(v.id, ModelSignals())
        work = s.output_tokens_per_s + v.prefill_weight * s.input_tokens_per_s
        per_req = work / s.arrival_rps if s.arrival_rps > 0 else _AVG_WORK_PER_QUEUED
        backlog = s.queue_depth * per_req / drain_s
        mv = min(1.0, max(0.0, s.movable_fraction))
        pinned[v.id] = (1 - mv) * work + backlog
        pool_out += mv * s.output_tokens_per_s
        pool_in += mv * s.input_tokens_per_s
    return Demand(pinned, pool_out, pool_in)


def expected_quality(views: list[ModelView], shares: Mapping[str, float], curve: QualityCurve) -> float:
    """Expected quality of movable traffic: lowest quality plus, for each step up,
    the gap times the recovered fraction f(share sent at least that high)."""
    if not views:
        return 0.0
    ordered = [v for v in views if shares.get(v.id, 0.0) > 0] or views[:1]
    q = ordered[0].quality
    for j in range(1, len(ordered)):
        above = sum(shares.get(v.id, 0.0) for v in ordered[j:])
        q += (ordered[j].quality - ordered[j - 1].quality) * interpolate(curve, above)
    return q


def share_grid(ids: list[str]) -> Iterator[dict[str, float]]:
    """Share vectors over `ids` summing to 1 (step 1/20 for up to 3 models, coarser beyond)."""
    k = len(ids)
    if k == 0:
        return
    steps = 20 if k <= 3 else (10 if k == 4 else 5)
    for cut in itertools.combinations(range(steps + k - 1), k - 1):
        parts = [b - a - 1 for a, b in zip((-1,) + cut, cut + (steps + k - 1,))]
        yield {i: p / steps for i, p in zip(ids, parts)}


def candidate(
    views: list[ModelView],
    demand: Demand,
    shares: dict[str, float],
    util: float,
    scales: Mapping[str, float],
    curve: QualityCurve,
) -> Allocation:
    """Replicas each model needs to carry its pinned load plus its share of the pool."""
    reps: dict[str, int] = {}
    serves = True
    for v in views:
        load = demand.pinned.get(v.id, 0.0) + shares.get(v.id, 0.0) * demand.pool_work(v)
        need = replicas_for(load, v.capacity * scales.get(v.id, 1.0), util)
        if shares.get(v.id, 0.0) > 0:
            need = max(need, 1)
        if need > v.max:
            serves, need = False, v.max
        reps[v.id] = max(v.min, need)
    gpus = sum(v.gpus * reps[v.id] for v in views)
    cost = sum(v.price * reps[v.id] for v in views)
    return Allocation(reps, shares, gpus, cost, expected_quality(views, shares, curve), serves)


def best_allocation(
    views: list[ModelView],
    demand: Demand,
    budget: float,
    cfg: AutoscalerConfig,
    scales: Mapping[str, float],
    util: float,
) -> tuple[Allocation | None, Allocation | None]:
    """(chosen, unconstrained best). Chosen: among candidates that fit `budget` and
    serve all demand, the cheapest within `max_quality_drop` of the best quality.
    None when no candidate serves all demand within the budget (overload)."""
    curve = cfg.router_quality_curve
    cands = [candidate(views, demand, s, util, scales, curve) for s in share_grid([v.id for v in views])]
    serving = [c for c in cands if c.serves_all]
    ideal = max(serving, key=lambda c: (c.quality, -c.cost), default=None)
    fits = [c for c in serving if c.gpus <= budget + 1e-9]
    if not fits:
        return None, ideal
    q_star = max(c.quality for c in fits)
    good = [c for c in fits if c.quality >= q_star - cfg.max_quality_drop - 1e-9]
    return min(good, key=lambda c: (c.cost, -c.quality, c.gpus)), ideal


def overload_allocation(
    views: list[ModelView],
    demand: Demand,
    budget: float,
    scales: Mapping[str, float],
    curve: QualityCurve,
    base: Mapping[str, int] | None = None,
) -> Allocation:
    """More demand than the budget can carry: start from the minimum fleet plus `base`
    (replicas already on their way, which are kept while they fit) and add, one replica at a
    time, the one with the most quality-weighted goodput per GPU (useful capacity x quality /
    GPUs) that still fits. Budget left once no replica adds useful capacity still goes to
    replicas (best quality x capacity per GPU first): demand exceeds capacity, so no unit idles."""
    reps = {v.id: v.min for v in views}
    used = sum(v.gpus * v.min for v in views)
    for v in sorted(views, key=lambda v: -v.quality):
        while base and reps[v.id] < min(base.get(v.id, 0), v.max) and used + v.gpus <= budget + 1e-9:
            reps[v.id] += 1
            used += v.gpus
    left_pin = dict(demand.pinned)
    pool_left = {v.id: demand.pool_work(v) for v in views}  # pool expressed in each model's work units
    pool_frac_left = 1.0
    taken: dict[str, float] = {v.id: 0.0 for v in views}

    def absorb(v: ModelView) -> None:
        nonlocal pool_frac_left
        cap = v.capacity * scales.get(v.id, 1.0)
        use_pin = min(cap, left_pin.get(v.id, 0.0))
        left_pin[v.id] = left_pin.get(v.id, 0.0) - use_pin
        rest = cap - use_pin
        frac = min(pool_frac_left, rest / pool_left[v.id]) if pool_left[v.id] > 0 else 0.0
        pool_frac_left -= frac
        taken[v.id] += frac

    for v in views:
        for _ in range(reps[v.id]):
            absorb(v)
    while True:
        best, best_score = None, (0.0, 0.0)
        for v in views:
            if reps[v.id] >= v.max or used + v.gpus > budget + 1e-9:
                continue
            cap = v.capacity * scales.get(v.id, 1.0)
            useful = min(cap, left_pin.get(v.id, 0.0) + pool_frac_left * pool_left[v.id])
            score = (useful * v.quality / max(v.gpus, 1e-3), cap * v.quality / max(v.gpus, 1e-3))
            if score > best_score:
                best, best_score = v, score
        if best is None:
            break
        reps[best.id] += 1
        used += best.gpus
        absorb(best)
    total = sum(taken.values())
    shares = {k: t / total for k, t in taken.items()} if total > 0 else {views[0].id: 1.0}
    cost = sum(v.price * reps[v.id] for v in views)
    return Allocation(reps, shares, used, cost, expected_quality(views, shares, curve), False)


def split_traffic(
    views: list[ModelView],
    demand: Demand,
    ready: Mapping[str, int],
    util: float,
    scales: Mapping[str, float],
    curve: QualityCurve,
) -> tuple[dict[str, float], str]:
    """Shares of movable traffic that ready replicas can carry at `util`, highest
    expected quality first (then cheapest). Returns (shares, reason)."""
    live = [v for v in views if ready.get(v.id, 0) > 0]
    if not live:
        return {}, "no_ready_replicas"
    room = {v.id: ready[v.id] * v.capacity * scales.get(v.id, 1.0) * util - demand.pinned.get(v.id, 0.0) for v in live}
    best, best_key = None, None
    for shares in share_grid([v.id for v in live]):
        if all(shares[v.id] * demand.pool_work(v) <= max(room[v.id], 0.0) + 1e-9 for v in live):
            key = (
                expected_quality(views, shares, curve),
                -sum(shares[v.id] * v.price / max(v.capacity, 1e-9) for v in live),
            )
            if best_key is None or key > best_key:
                best, best_key = shares, key
    if best is not None:
        return best, "fits_ready_capacity"
    spare = {v.id: max(room[v.id], 0.0) / max(demand.pool_work(v), 1e-9) for v in live}
    total = sum(spare.values())
    if total <= 0:
        return {v.id: v.capacity / sum(x.capacity for x in live) for v in live}, "overload_no_spare_capacity"
    return {k: s / total for k, s in spare.items()}, "overload_shares_by_spare_capacity"


def gpus_of(views: list[ModelView], reps: Mapping[str, int]) -> float:
    """GPUs a replica assignment holds."""
    return sum(v.gpus * reps.get(v.id, 0) for v in views)


def ceil_div(a: float, b: float) -> int:
    return math.ceil(a / b - 1e-9) if b > 0 else 0
