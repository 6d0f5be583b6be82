"""Policies the simulator compares, all behind one interface:
``control(snapshot, now) -> (replica targets, movable-traffic shares)``.

- large_only: static; every GPU to the top-quality model, all traffic there.
- static_mix: static; `static_mix_large_fraction` of GPUs to the top model, the
  rest to the cheapest; traffic split by capacity.
- queue_based: what Ray Serve does by default, per model: replicas =
  ongoing requests / target, with up/down delays, no GPU awareness; fixed shares.
- priority_trade: Dynamo's planner shape: each pool sizes itself for its own load (work
  tokens/s plus queued work, at `target_utilization` of its configured capacity); when the
  pools together ask for more GPUs than exist, the least important pool (lowest quality)
  donates first. Fixed shares, as queue_based.
- static_optimum: the one fleet and split best for the whole trace, chosen in hindsight
  (hindsight.py), never changed.
- upper_bound: the hindsight plan per window, replicas started ahead by their start-up time.
- petit: :func:`autoscaler.policy.decide`, exactly as the live controller runs it.
"""

from __future__ import annotations

import math
from typing import Protocol

from autoscaler.allocation import ModelView, build_views, measure_demand
from autoscaler.helpers import replicas_for
from autoscaler.policy import decide, initial_state
from autoscaler.simulator.hindsight import Hindsight, best_split
from autoscaler.simulator.scenario import Baselines, Scenario
from autoscaler.snapshot import Plan, ScalingSnapshot
from serving.fleet.schema import FleetConfig


class SimPolicy(Protocol):
    """What the simulator drives: a name, one control step per period, and its last plan (None: it plans none)."""

    name: str
    last_plan: Plan | None

    def control(self, snap: ScalingSnapshot, now: float) -> tuple[dict[str, int], dict[str, float]]:
        """Replica targets per model id and movable-traffic shares, given the snapshot at `now`."""
        ...


class PetitPolicy:
    """The live policy, fed simulated snapshots."""

    name = "petit"

    def __init__(self, fleet: FleetConfig):
        self.fleet, self.state = fleet, initial_state(fleet)
        self.last_plan: Plan | None = None

    def control(self, snap: ScalingSnapshot, now: float) -> tuple[dict[str, int], dict[str, float]]:
        plan, self.state = decide(snap, self.fleet, self.state, now)
        self.last_plan = plan
        return {m: t.replicas for m, t in plan.targets.items()}, dict(plan.routing.shares)


class StaticPolicy:
    """Fixed replicas and shares."""

    last_plan: Plan | None = None

    def __init__(self, name: str, targets: dict[str, int], shares: dict[str, float]):
        self.name, self.targets, self.shares = name, targets, shares

    def control(self, snap: ScalingSnapshot, now: float) -> tuple[dict[str, int], dict[str, float]]:
        return dict(self.targets), dict(self.shares)


def large_only(fleet: FleetConfig, gpus: int) -> StaticPolicy:
    views = build_views(fleet)
    top = views[-1]
    n = min(top.max, int(gpus // top.gpus))
    targets = {v.id: 0 for v in views}
    targets[top.id] = n
    return StaticPolicy("large_only", targets, {top.id: 1.0})


def static_mix(fleet: FleetConfig, gpus: int, b: Baselines) -> StaticPolicy:
    views = build_views(fleet)
    top, cheap = views[-1], views[0]
    n_top = min(top.max, int(gpus * b.static_mix_large_fraction // top.gpus))
    n_cheap = min(cheap.max, int((gpus - n_top * top.gpus) // cheap.gpus))
    targets = {v.id: 0 for v in views}
    targets.update({top.id: n_top, cheap.id: n_cheap})
    cap = {top.id: n_top * top.capacity, cheap.id: n_cheap * cheap.capacity}
    total = sum(cap.values()) or 1.0
    return StaticPolicy("static_mix", targets, {k: c / total for k, c in cap.items()})


class QueueBasedPolicy:
    """Per-model autoscaling on ongoing requests (Ray Serve's default policy shape)."""

    last_plan: Plan | None = None

    name = "queue_based"

    def __init__(self, fleet: FleetConfig, b: Baselines):
        self.views, self.b = build_views(fleet), b
        self.targets = {m.id: m.replicas.start for m in fleet.models}
        self.want_since: dict[str, tuple[int, float]] = {}
        top, cheap = self.views[-1], self.views[0]
        self.shares = {top.id: b.fixed_strong_share, cheap.id: 1 - b.fixed_strong_share}

    def control(self, snap: ScalingSnapshot, now: float) -> tuple[dict[str, int], dict[str, float]]:
        for v in self.views:
            s = snap.models[v.id]
            want = max(v.min, min(v.max, math.ceil((s.in_flight + s.queue_depth) / self.b.queue_target_ongoing)))
            cur = self.targets[v.id]
            if want == cur:
                self.want_since.pop(v.id, None)
                continue
            prev = self.want_since.get(v.id)
            since = prev[1] if prev and (prev[0] > cur) == (want > cur) else now
            self.want_since[v.id] = (want, since)
            delay = self.b.queue_upscale_delay_s if want > cur else self.b.queue_downscale_delay_s
            if now - since >= delay:
                self.targets[v.id] = want
                self.want_since.pop(v.id, None)
        return dict(self.targets), dict(self.shares)


class PriorityTradePolicy:
    """Per-pool sizing with a priority trade of the GPU budget (see the module docstring)."""

    last_plan: Plan | None = None
    name = "priority_trade"

    def __init__(self, fleet: FleetConfig, b: Baselines):
        self.views, self.cfg = build_views(fleet), fleet.autoscaler
        top, cheap = self.views[-1], self.views[0]
        self.shares = {top.id: b.fixed_strong_share, cheap.id: 1 - b.fixed_strong_share}
        self.targets = {m.id: m.replicas.start for m in fleet.models}

    def control(self, snap: ScalingSnapshot, now: float) -> tuple[dict[str, int], dict[str, float]]:
        sc = self.cfg.scaling
        demand = measure_demand(self.views, snap.models, sc.backlog_drain_s)
        want = {}
        for v in self.views:
            s = snap.models[v.id]
            load = demand.pinned[v.id] + s.movable_fraction * (
                s.output_tokens_per_s + v.prefill_weight * s.input_tokens_per_s
            )
            want[v.id] = max(v.min, min(v.max, replicas_for(load, v.capacity, sc.target_utilization)))
        budget = snap.supply.total
        for v in self.views:  # lowest quality first: the least important pool donates
            while sum(w.gpus * want[w.id] for w in self.views) > budget + 1e-9 and want[v.id] > v.min:
                want[v.id] -= 1
        self.targets = want
        return dict(want), dict(self.shares)


class UpperBoundPolicy:
    """Replays the hindsight plan: each window's replicas, those a later window needs started
    ahead by their start-up time (GPUs permitting), and the split that delivers the most
    quality within the SLO from the replicas ready now, for the window's known load."""

    last_plan: Plan | None = None
    name = "upper_bound"

    def __init__(self, fleet: FleetConfig, sc: Scenario, hs: Hindsight):
        self.views, self.hs, self.period = build_views(fleet), hs, fleet.autoscaler.period_s
        self.curve = fleet.autoscaler.router_quality_curve
        self.drain_s = fleet.autoscaler.scaling.backlog_drain_s
        self.startup = {v.id: sc.profile(v.id).startup_s for v in self.views}

    def _at(self, t: float) -> int:
        return max(0, min(len(self.hs.plans) - 1, int(t // self.hs.epoch_s)))

    def control(self, snap: ScalingSnapshot, now: float) -> tuple[dict[str, int], dict[str, float]]:
        i, budget = self._at(now), snap.supply.total
        targets = dict(self.hs.plans[i].replicas)
        ready = {v.id: snap.models[v.id].ready_replicas for v in self.views}
        used = sum(v.gpus * targets[v.id] for v in self.views)

        def add(v: ModelView, upto: int) -> None:
            nonlocal used
            while targets[v.id] < min(upto, v.max) and used + v.gpus <= budget + 1e-9:
                targets[v.id] += 1
                used += v.gpus

        for v in sorted(self.views, key=lambda v: -self.startup[v.id]):  # start what later windows need
            last = self._at(now + self.startup[v.id] + self.period)
            add(v, max(p.replicas[v.id] for p in self.hs.plans[i : last + 1]))
        for v in self.views:  # ready replicas stay while the GPUs are not needed elsewhere
            add(v, ready[v.id])
        load = self.hs.loads[max(0, min(len(self.hs.loads) - 1, int(now // self.hs.window_s)))]
        work = {
            v.id: self.hs.plans[i].shares.get(v.id, 0.0) * (load.out_tps + v.prefill_weight * load.in_tps)
            for v in self.views
        }
        while True:  # the GPUs left: head room where the load per replica is highest
            fits = [
                v for v in self.views if work[v.id] > 0 and targets[v.id] < v.max and used + v.gpus <= budget + 1e-9
            ]
            if not fits:
                break
            v = max(fits, key=lambda v: work[v.id] / (self.hs.capacities[v.id] * max(targets[v.id], 1e-9)))
            add(v, targets[v.id] + 1)
        if not any(ready.values()):
            return targets, dict(self.hs.plans[i].shares)
        per_req = {
            v.id: (load.out_tps + v.prefill_weight * load.in_tps) * self.hs.window_s / max(load.requests, 1)
            for v in self.views
        }
        backlog = {v.id: snap.models[v.id].queue_depth * per_req[v.id] / self.drain_s for v in self.views}
        return targets, best_split(self.views, self.curve, load, self.hs.capacities, ready, backlog)


def build_policy(name: str, fleet: FleetConfig, sc: Scenario, hs: Hindsight | None = None) -> SimPolicy:
    """A fresh policy object by scenario name (`hs` is needed by upper_bound and static_optimum)."""
    gpus, b = sc.gpus.total, sc.baselines
    if name == "petit":
        return PetitPolicy(fleet)
    if name == "large_only":
        return large_only(fleet, gpus)
    if name == "static_mix":
        return static_mix(fleet, gpus, b)
    if name == "queue_based":
        return QueueBasedPolicy(fleet, b)
    if name == "priority_trade":
        return PriorityTradePolicy(fleet, b)
    if name in ("upper_bound", "static_optimum"):
        if hs is None:
            raise ValueError(f"policy '{name}' needs the hindsight plans")
        if name == "upper_bound":
            return UpperBoundPolicy(fleet, sc, hs)
        return StaticPolicy("static_optimum", dict(hs.static.replicas), dict(hs.static.shares))
    raise ValueError(f"unknown policy '{name}'")
