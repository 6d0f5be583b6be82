"""Run one policy over one scenario: the clock, arrivals, routing, control, metrics.

`simulate` is deterministic for a given scenario (seeded routing draws). Start
(`scenario.start`): `steady` (default) puts each policy's own steady state for the first
minute's load in place, ready, before the first request; `cold` starts every policy from
the same fleet, the models' initial replicas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np

from autoscaler.allocation import build_views
from autoscaler.simulator.engine import OK, REJECTED, TOO_LONG, Cluster, Fleet, Requests
from autoscaler.simulator.metrics import BucketSeries, SimTotals, buckets, totals
from autoscaler.simulator.policies import SimPolicy
from autoscaler.simulator.priorities import (
    NO_PRIORITY,
    assign_priorities,
    class_cums,
    gpus_short,
    movable_by_priority,
    priority_buckets,
    priority_totals,
    strong_ids,
)
from autoscaler.simulator.scenario import Scenario
from autoscaler.simulator.traces import Trace
from autoscaler.snapshot import GpuSupply, ModelSignals, Plan, ScalingSnapshot
from serving.fleet.schema import FleetConfig

_TTFT_WINDOW_S = 30.0


class ControlSeries(TypedDict, total=False):
    """One entry per control period: time, GPUs there and held, ready replicas and shares per model id."""

    t: list[float]
    gpus: list[float]
    held: list[float]
    ready: dict[str, list[int]]
    shares: dict[str, list[float]]


Reason = tuple[float, str, dict[str, str], str]
"""One Petit decision: time, plan reason, reason per model id, routing reason."""


@dataclass
class SimResult:
    """Totals and time series (per control period and per bucket) of one policy run."""

    policy: str
    totals: SimTotals = field(default_factory=SimTotals)
    control: ControlSeries = field(default_factory=ControlSeries)
    buckets: BucketSeries = field(default_factory=BucketSeries)
    reasons: list[Reason] = field(default_factory=list)


class _Sim:
    def __init__(self, sc: Scenario, fleet: FleetConfig, trace: Trace, policy: SimPolicy):
        self.sc, self.fleet, self.policy = sc, fleet, policy
        self.ids = fleet.model_ids
        self.top = build_views(fleet)[-1].id
        ms = [fleet.model(i) for i in self.ids]
        self.cluster = Cluster(sc.gpus.total, sc.gpus.per_node, sc.seed)
        self.fleet_sim = Fleet(
            [m.resources.gpus for m in ms],
            [sc.profile(i) for i in self.ids],
            [m.max_queued_requests for m in ms],
            self.cluster,
        )
        self.req = Requests(trace.arrival_s, trace.input_tokens, trace.output_tokens)
        rng = np.random.default_rng(sc.seed)
        self.u_route = rng.random(len(trace))
        self.req.auto = rng.random(len(trace)) < sc.auto_fraction
        self.req.priority = assign_priorities(len(trace), sc.tenants, sc.seed)
        self.cum = np.array([1.0] + [0.0] * (len(self.ids) - 1))
        self.class_cum: np.ndarray | None = None  # per priority class, when the plan downgrades by class
        self.strong = strong_ids(build_views(fleet))
        self.ctx = np.array([m.engine.max_model_len for m in ms], dtype=float)
        q = {v.id: v.quality for v in build_views(fleet)}
        self.by_quality = sorted(range(len(self.ids)), key=lambda k: -q[self.ids[k]])
        self.slo_s = fleet.slo.ttft_p95_ms / 1000.0
        self.series: ControlSeries = {
            "t": [],
            "gpus": [],
            "held": [],
            "ready": {i: [] for i in self.ids},
            "shares": {i: [] for i in self.ids},
        }
        self.reasons: list[Reason] = []

    def set_shares(self, shares: dict[str, float], plan: Plan | None = None) -> None:
        if not shares or sum(shares.values()) <= 0:
            shares = {self.top: 1.0}
        total = sum(shares.values())
        self.cum = np.cumsum([shares.get(i, 0.0) / total for i in self.ids])
        self.class_cum = class_cums(plan, shares, self.ids, self.strong)

    def route(self, rid: int) -> int:
        """The model a request goes to, or -1 when its prompt + output fit no context window it
        may use (the gateway answers 400). `auto` goes by the shares, but only to models whose
        context window fits it (the router's filter): the fitting model with the largest share."""
        need = self.req.n_in[rid] + self.req.n_out[rid]
        if not self.req.auto[rid]:
            k = self.ids.index(self.top)
            return k if self.ctx[k] >= need else -1
        p = self.req.priority[rid]
        cum = self.cum if self.class_cum is None or p >= NO_PRIORITY else self.class_cum[p]
        k = int(min(np.searchsorted(cum, self.u_route[rid], side="right"), len(self.ids) - 1))
        if self.ctx[k] >= need:
            return k
        share = np.diff(cum, prepend=0.0)
        fits = [j for j in self.by_quality if self.ctx[j] >= need]
        return max(fits, key=lambda j: share[j]) if fits else -1

    def snapshot(self, now: float, lo: int, hi: int) -> ScalingSnapshot:
        req, period = self.req, max(self.fleet.autoscaler.period_s, 1e-9)
        w_lo = int(np.searchsorted(req.arrival, now - _TTFT_WINDOW_S))
        models: dict[str, ModelSignals] = {}
        for k, mid in enumerate(self.ids):
            sel = req.model[lo:hi] == k
            recent = req.model[w_lo:hi] == k
            tt = req.ttft[w_lo:hi][recent]
            waiting = now - req.arrival[w_lo:hi][recent]
            tt = np.where(np.isnan(tt), waiting, tt)
            models[mid] = ModelSignals(
                arrival_rps=sel.sum() / period,
                input_tokens_per_s=float(req.n_in[lo:hi][sel].sum()) / period,
                output_tokens_per_s=float(req.n_out[lo:hi][sel].sum()) / period,
                queue_depth=len(self.fleet_sim.queues[k]),
                in_flight=sum(r.active for r in self.fleet_sim.replicas[k]),
                ttft_p95_ms=float(np.percentile(tt, 95) * 1000) if len(tt) else None,
                ready_replicas=self.fleet_sim.ready(k, now),
                pending_replicas=self.fleet_sim.count(k) - self.fleet_sim.ready(k, now),
                movable_fraction=float(req.auto[lo:hi][sel].mean()) if sel.any() else 1.0,
                movable_rps_by_priority=movable_by_priority(req.priority[lo:hi][sel], req.auto[lo:hi][sel], period),
            )
        pending = sum(self.fleet_sim.pending[k] * self.fleet_sim.gpus[k] for k in range(len(self.ids)))
        supply = GpuSupply(self.cluster.gpus, self.cluster.gpus - self.cluster.held, pending, "simulated")
        return ScalingSnapshot(models, supply, now)

    def warm_up(self) -> tuple[dict[str, int], dict[str, float]]:
        """The policy's own steady state on the first minute's load: it decides 16 times, 5 min
        apart (cooldowns and stabilization pass), on signals of that load split by its own
        shares, with the replicas it asked for ready and Little's-law in-flight counts."""
        req = self.req
        span = min(60.0, float(req.arrival[-1]) + 1.0)
        n = int(np.searchsorted(req.arrival, span))
        rps, auto = n / span, float(req.auto[:n].mean()) if n else 1.0
        mix = movable_by_priority(req.priority[:n], req.auto[:n], max(float(req.auto[:n].sum()), 1.0))
        mean_in, mean_out = (float(req.n_in[:n].mean()), float(req.n_out[:n].mean())) if n else (0.0, 0.0)
        targets = {mid: self.fleet.model(mid).replicas.start for mid in self.ids}
        shares: dict[str, float] = {self.top: 1.0}
        for i in range(16):
            now = -300.0 * (16 - i)
            total = sum(shares.values()) or 1.0
            models: dict[str, ModelSignals] = {}
            for k, mid in enumerate(self.ids):
                moved = auto * shares.get(mid, 0.0) / total
                frac = moved + (1 - auto) * (mid == self.top)
                p = self.fleet_sim.profiles[k]
                latency = (p.prefill_ms_per_token * mean_in + 1.3 * p.t0_ms * mean_out) / 1000.0
                models[mid] = ModelSignals(
                    arrival_rps=rps * frac,
                    input_tokens_per_s=rps * frac * mean_in,
                    output_tokens_per_s=rps * frac * mean_out,
                    in_flight=round(rps * frac * latency),
                    ready_replicas=targets.get(mid, 0),
                    movable_fraction=moved / frac if frac > 0 else 1.0,
                    movable_rps_by_priority={p: rps * moved * m for p, m in mix.items()},
                )
            supply = GpuSupply(self.cluster.gpus, 0.0, 0.0, "simulated")
            targets, shares = self.policy.control(ScalingSnapshot(models, supply, now), now)
        return targets, shares

    def control(self, now: float, lo: int, hi: int, warm: bool = False) -> None:
        snap = self.snapshot(now, lo, hi)
        targets, shares = self.warm_up() if warm else self.policy.control(snap, now)
        for k, mid in enumerate(self.ids):
            self.fleet_sim.reconcile(k, targets.get(mid, 0), now)
        if warm:  # the fleet is up before the trace starts
            for reps in self.fleet_sim.replicas:
                for r in reps:
                    r.ready_at = now
        plan = self.policy.last_plan
        self.set_shares(shares, plan)
        if plan is not None:
            self.reasons.append((now, plan.reason, {m: t.reason for m, t in plan.targets.items()}, plan.routing.reason))
        self.record(now)

    def record(self, now: float) -> None:
        s = self.series
        s["t"].append(now)
        s["gpus"].append(self.cluster.gpus)
        s["held"].append(self.fleet_sim.held_gpus())
        for k, mid in enumerate(self.ids):
            s["ready"][mid].append(self.fleet_sim.ready(k, now))
            s["shares"][mid].append(float(self.cum[k] - (self.cum[k - 1] if k else 0.0)))


def simulate(
    sc: Scenario, fleet: FleetConfig, trace: Trace, policy: SimPolicy, progress: Callable[[float], None] | None = None
) -> SimResult:
    """Run `policy` over the trace; returns totals and time series."""
    sim = _Sim(sc, fleet, trace, policy)
    req, dt, period = sim.req, sc.tick_s, fleet.autoscaler.period_s
    end = float(trace.arrival_s[-1]) + 2 * sc.queue_timeout_s
    events = [(e.at_min * 60.0, e.gpus_fraction) for e in sc.events]
    if sc.start == "cold":  # every policy from the fleet's initial replicas, ready; it scales from there
        for k, mid in enumerate(sim.ids):
            sim.fleet_sim.reconcile(k, fleet.model(mid).replicas.start, 0.0)
            for r in sim.fleet_sim.replicas[k]:
                r.ready_at = 0.0
        sim.record(0.0)  # the first decision comes after one period of signals, as in the live loop
    else:
        sim.control(0.0, 0, 0, warm=True)
    ptr, last_ctl_ptr, next_ctl, gpu_s = 0, 0, period, 0.0
    n_ticks, tick = int(np.ceil(end / dt)), 0
    while tick < n_ticks:
        t = tick * dt
        while events and events[0][0] <= t:
            died = sim.cluster.set_fraction(events.pop(0)[1])
            sim.fleet_sim.kill_nodes(died, req)
            sim.fleet_sim.place_pending(t)
        hi = int(np.searchsorted(req.arrival, t + dt, side="left"))
        for rid in range(ptr, hi):
            k = sim.route(rid)
            req.model[rid] = k
            if k < 0:
                req.status[rid] = TOO_LONG
            else:
                sim.fleet_sim.enqueue(k, rid, req)
        ptr = hi
        sim.fleet_sim.step(t, dt, req, sc.queue_timeout_s)
        gpu_s += sim.fleet_sim.held_gpus() * dt
        if t + dt >= next_ctl:
            sim.control(t + dt, last_ctl_ptr, ptr)
            last_ctl_ptr, next_ctl = ptr, next_ctl + period
        tick += 1
        if progress and tick % 400 == 0:
            progress(tick / n_ticks)
    for q in sim.fleet_sim.queues:  # still waiting at the end: never answered
        for rid in q:
            req.status[rid] = REJECTED
    return _result(sim, policy.name, gpu_s, end)


def _result(sim: _Sim, name: str, gpu_s: float, end: float) -> SimResult:
    req, fleet, sc = sim.req, sim.fleet, sim.sc
    views, curve = build_views(fleet), fleet.autoscaler.router_quality_curve
    tot = totals(req, sim.ids, views, curve, sim.slo_s, gpu_s, fleet.autoscaler.price_per_gpu_hour)
    tot["duration_s"] = end
    tot["start"] = sc.start
    series = buckets(req, sim.ids, views, curve, sim.slo_s, end, sc.bucket_s)
    if sc.tenants:
        strong = np.array([k for k, mid in enumerate(sim.ids) if mid in sim.strong], dtype=int)
        within = (req.status == OK) & (req.ttft <= sim.slo_s)
        tot["by_priority"] = priority_totals(req, strong, within, gpus_short(req.arrival, sc.events))
        series["strong_share_by_priority"] = priority_buckets(req, strong, end, sc.bucket_s)
    return SimResult(name, tot, sim.series, series, sim.reasons)
