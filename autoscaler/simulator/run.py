"""Run one policy over one scenario: the clock, arrivals, routing, control, metrics.

`simulate` is deterministic for a given scenario (seeded routing draws).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
from numpy.typing import NDArray

from autoscaler.allocation import ModelView, QualityCurve, build_views, expected_quality
from autoscaler.simulator.engine import OK, REJECTED, Cluster, Fleet, Requests
from autoscaler.simulator.policies import SimPolicy
from autoscaler.simulator.scenario import Scenario
from autoscaler.simulator.traces import Trace
from autoscaler.snapshot import GpuSupply, ModelSignals, ScalingSnapshot
from serving.fleet.schema import FleetConfig

_TTFT_WINDOW_S = 30.0


class SimTotals(TypedDict, total=False):
    """Totals of one run (`None`: nothing to measure, e.g. no request served)."""

    requests: int
    slo_attainment: float
    ttft_p95_s: float | None
    rejected_share: float
    gpu_hours: float
    cost_usd: float
    cost_per_1m_tokens: float | None
    expected_quality: float | None
    quality_within_slo: float
    duration_s: float


class ControlSeries(TypedDict, total=False):
    """One entry per control period: time, GPUs there and held, ready replicas and shares per model id."""

    t: list[float]
    gpus: list[float]
    held: list[float]
    ready: dict[str, list[int]]
    shares: dict[str, list[float]]


class BucketSeries(TypedDict, total=False):
    """One entry per `bucket_s` of arrivals (`None`: no request arrived, or none served, in the bucket)."""

    t: list[float]
    slo_attainment: list[float | None]
    rejected_share: list[float | None]
    expected_quality: list[float | None]


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
        self.cluster = Cluster(sc.gpus.total, sc.gpus.per_node)
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
        self.cum = np.array([1.0] + [0.0] * (len(self.ids) - 1))
        self.slo_s = fleet.slo.ttft_p95_ms / 1000.0
        self.series: ControlSeries = {
            "t": [],
            "gpus": [],
            "held": [],
            "ready": {i: [] for i in self.ids},
            "shares": {i: [] for i in self.ids},
        }
        self.reasons: list[Reason] = []

    def set_shares(self, shares: dict[str, float]) -> None:
        if not shares or sum(shares.values()) <= 0:
            shares = {self.top: 1.0}
        total = sum(shares.values())
        self.cum = np.cumsum([shares.get(i, 0.0) / total for i in self.ids])

    def route(self, rid: int) -> int:
        if not self.req.auto[rid]:
            return self.ids.index(self.top)
        return int(min(np.searchsorted(self.cum, self.u_route[rid], side="right"), len(self.ids) - 1))

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
            )
        pending = sum(self.fleet_sim.pending[k] * self.fleet_sim.gpus[k] for k in range(len(self.ids)))
        supply = GpuSupply(self.cluster.gpus, self.cluster.gpus - self.cluster.held, pending, "simulated")
        return ScalingSnapshot(models, supply, now)

    def control(self, now: float, lo: int, hi: int, warm: bool = False) -> None:
        targets, shares = self.policy.control(self.snapshot(now, lo, hi), now)
        for k, mid in enumerate(self.ids):
            self.fleet_sim.reconcile(k, targets.get(mid, 0), now)
        if warm:  # the fleet is up before the trace starts
            for reps in self.fleet_sim.replicas:
                for r in reps:
                    r.ready_at = now
        self.set_shares(shares)
        plan = self.policy.last_plan
        if plan is not None:
            self.reasons.append((now, plan.reason, {m: t.reason for m, t in plan.targets.items()}, plan.routing.reason))
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
    views = build_views(fleet)
    curve = fleet.autoscaler.router_quality_curve
    price = fleet.autoscaler.price_per_gpu_hour
    ok = req.status == OK
    within = ok & (req.ttft <= sim.slo_s)
    tokens = float((req.n_in[ok] + req.n_out[ok]).sum())
    cost = gpu_s / 3600.0 * price
    totals: SimTotals = {
        "requests": int(len(req.arrival)),
        "slo_attainment": float(within.mean()),
        "ttft_p95_s": float(np.nanpercentile(np.where(ok, req.ttft, np.nan), 95)) if ok.any() else None,
        "rejected_share": float((req.status != OK).mean()),
        "gpu_hours": gpu_s / 3600.0,
        "cost_usd": cost,
        "cost_per_1m_tokens": cost / tokens * 1e6 if tokens else None,
        "expected_quality": _quality(req, ok, sim.ids, views, curve),
        # Quality delivered per arriving request: answers outside the TTFT SLO (or never given) count 0.
        "quality_within_slo": (_quality(req, within, sim.ids, views, curve) or 0.0) * float(within.mean()),
        "duration_s": end,
    }
    edges = np.arange(0.0, end + sc.bucket_s, sc.bucket_s)
    bucket = np.clip(np.digitize(req.arrival, edges) - 1, 0, len(edges) - 1)
    b_slo: list[float | None] = []
    b_rej: list[float | None] = []
    b_q: list[float | None] = []
    for i in range(len(edges) - 1):
        sel = bucket == i
        b_slo.append(float(within[sel].mean()) if sel.any() else None)
        b_rej.append(float((req.status[sel] != OK).mean()) if sel.any() else None)
        b_q.append(_quality(req, ok & sel, sim.ids, views, curve) if (ok & sel).any() else None)
    buckets: BucketSeries = {
        "t": edges[:-1].tolist(),
        "slo_attainment": b_slo,
        "rejected_share": b_rej,
        "expected_quality": b_q,
    }
    return SimResult(name, totals, sim.series, buckets, sim.reasons)


def _quality(
    req: Requests, sel: NDArray[np.bool_], ids: list[str], views: list[ModelView], curve: QualityCurve
) -> float | None:
    """Expected quality of served requests: auto ones by the realized shares through the
    router curve, pinned ones at their model's quality."""
    if not sel.any():
        return None
    auto = sel & req.auto
    qual = {v.id: v.quality for v in views}
    parts: list[float] = []
    weights: list[int] = []
    if auto.any():
        counts = np.bincount(req.model[auto], minlength=len(ids))
        shares = {mid: counts[k] / counts.sum() for k, mid in enumerate(ids)}
        parts.append(expected_quality(views, shares, curve))
        weights.append(auto.sum())
    pinned = sel & ~req.auto
    if pinned.any():
        parts.append(float(np.mean([qual[ids[k]] for k in req.model[pinned]])))
        weights.append(pinned.sum())
    return float(np.average(parts, weights=weights))
