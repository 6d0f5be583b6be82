"""Plans made knowing the whole trace and every GPU event: the upper bound and the static optimum.

Per window of `window_s` the planner knows the movable load (output and input tokens/s of
the requests arriving then, those no context window fits left out) and the GPUs alive for
the whole window. A candidate is a replica count per model and a share of the load per
model (the share grid of the policy). Its value is the quality delivered within the SLO
per request: model m carries its load `x_m L_m` within the SLO up to its replicas'
capacity `n_m C_m` (C_m measured at the SLO on this trace's request sizes, see
capacity.py), so a fraction f_m = min(1, n_m C_m / x_m L_m) of its requests is on time;
value = expected_quality(shares of the on-time requests) x sum_m x_m f_m. Replicas beyond
what the load needs add nothing, so each candidate holds only what it needs (cost breaks
ties). The search is exhaustive over the share grid and the replica counts of every model
but the lowest-quality one, which takes the GPUs left (numpy, so 800 GPUs stay fast).

- `static_optimum`: the one candidate that is best summed over a run of windows, a fixed
  fleet losing replicas in proportion when GPUs go: over the whole trace, the static joint
  optimum; over each epoch as long as the slowest start-up, the upper bound's fleet (the
  fleet changes once per epoch, and the replicas of the next epoch start ahead of it).
- `plan_windows`: the best candidate per window within that window's GPUs (ignores
  start-up; kept as the per-window view).
- `best_split`: the upper bound's routing, from the replicas ready at each moment.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from autoscaler.allocation import ModelView, QualityCurve, build_views, share_grid
from autoscaler.simulator.capacity import capacity_at_slo
from autoscaler.simulator.scenario import Scenario
from autoscaler.simulator.traces import Trace
from serving.fleet.schema import FleetConfig

PLAN_UTILIZATION = 0.85
"""Replicas are planned to carry at most this share of their capacity at the SLO (head room
for the load's variation within a window); the upper-bound policy adds the GPUs a plan leaves."""


@dataclass(frozen=True)
class WindowLoad:
    """Movable load of one window (tokens/s) and the GPUs alive all through it."""

    start_s: float
    out_tps: float
    in_tps: float
    requests: int
    gpus: float


@dataclass(frozen=True)
class WindowPlan:
    """Replicas and shares for one window, with the value the planner expects of them."""

    start_s: float
    replicas: dict[str, int]
    shares: dict[str, float]
    value: float


def window_loads(
    arrival: np.ndarray,
    n_in: np.ndarray,
    n_out: np.ndarray,
    servable: np.ndarray,
    end_s: float,
    window_s: float,
    gpus_at: list[tuple[float, float]],
) -> list[WindowLoad]:
    """Loads per window; `gpus_at` is [(from_s, gpus)] sorted, the first from 0."""
    out: list[WindowLoad] = []
    edges = np.arange(0.0, end_s + window_s, window_s)
    for a, b in zip(edges[:-1], edges[1:]):
        sel = (arrival >= a) & (arrival < b) & servable
        alive = [g for t, g in gpus_at if a < t < b] + [next(g for t, g in reversed(gpus_at) if t <= a)]
        out.append(
            WindowLoad(
                float(a),
                float(n_out[sel].sum()) / window_s,
                float(n_in[sel].sum()) / window_s,
                int(sel.sum()),
                min(alive),
            )
        )
    return out


class _Candidates:
    """Every (shares, replicas) candidate as arrays: shares S[c, m], replica caps N[c, m]."""

    def __init__(self, views: list[ModelView], gpus: float, curve: QualityCurve):
        self.views, self.curve = views, curve
        self.g = np.array([v.gpus for v in views], dtype=float)
        grid = list(share_grid([v.id for v in views]))
        ranges = [range(v.min, min(v.max, int(gpus // max(v.gpus, 1e-9))) + 1) for v in views[1:]]
        rows_s, rows_n = [], []
        for shares in grid:
            s = [shares[v.id] for v in views]
            for upper in itertools.product(*ranges):
                left = gpus - float(np.dot(self.g[1:], upper))
                if left < views[0].min * views[0].gpus - 1e-9:
                    continue
                low = min(views[0].max, int(left // max(views[0].gpus, 1e-9)))
                rows_s.append(s)
                rows_n.append([low, *upper])
        self.S = np.array(rows_s, dtype=float)
        self.N = np.array(rows_n, dtype=float)
        q = np.array([v.quality for v in views])
        # expected_quality of share vectors, vectorised: lowest quality + gaps x curve(share at least that high)
        self._q = q
        self._xs = np.array([p[0] for p in curve])
        self._ys = np.array([p[1] for p in curve])

    def quality(self, shares: np.ndarray) -> np.ndarray:
        """Expected quality per row of `shares` (rows need not sum to 1; they are normalised)."""
        tot = shares.sum(axis=1, keepdims=True)
        s = np.divide(shares, tot, out=np.zeros_like(shares), where=tot > 0)
        above = np.cumsum(s[:, ::-1], axis=1)[:, ::-1]  # share at or above each model
        first = np.argmax(s > 0, axis=1)  # lowest model with traffic
        q = self._q[first].astype(float)
        for j in range(1, len(self._q)):
            gap = self._q[j] - self._q[j - 1]
            q = q + np.where(j > first, gap * np.interp(above[:, j], self._xs, self._ys), 0.0)
        return np.asarray(q, dtype=float)

    def evaluate(self, load: WindowLoad, caps: np.ndarray, weights: np.ndarray, gpus: float) -> tuple[int, float]:
        """(best row, its value) within `gpus`; replicas trimmed to what the load needs."""
        caps = caps * PLAN_UTILIZATION
        work = load.out_tps + weights * load.in_tps  # pool in each model's work units
        need_load = self.S * work[None, :]
        need = np.ceil(need_load / caps[None, :] - 1e-9)
        n = np.minimum(self.N, np.maximum(need, [v.min for v in self.views]))
        used = n @ self.g
        ok = used <= gpus + 1e-9
        f = np.where(need_load > 0, np.minimum(1.0, n * caps[None, :] / np.maximum(need_load, 1e-12)), 1.0)
        on_time = self.S * f
        value = np.where(ok, self.quality(on_time) * on_time.sum(axis=1), -1.0)
        cost = used
        best = int(np.lexsort((cost, -value))[0])
        return best, float(value[best])

    def replicas(self, row: int, load: WindowLoad, caps: np.ndarray, weights: np.ndarray) -> dict[str, int]:
        """The row's replicas for the load (at PLAN_UTILIZATION), no more."""
        work = self.S[row] * (load.out_tps + weights * load.in_tps)
        need = np.ceil(work / (caps * PLAN_UTILIZATION) - 1e-9)
        n = np.minimum(self.N[row], np.maximum(need, [v.min for v in self.views]))
        return {v.id: int(k) for v, k in zip(self.views, n)}


def best_split(
    views: list[ModelView],
    curve: QualityCurve,
    load: WindowLoad,
    caps: Mapping[str, float],
    ready: Mapping[str, int],
    backlog: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The shares that deliver the most quality within the SLO from the replicas ready now;
    `backlog` (work tokens/s that queued requests add to a model) takes its room first."""
    c = _Candidates(views, 0.0, curve)
    grid = np.array([[s[v.id] for v in views] for s in share_grid([v.id for v in views])])
    cap = np.array([caps[v.id] * PLAN_UTILIZATION for v in views])
    work = grid * (load.out_tps + np.array([v.prefill_weight for v in views]) * load.in_tps)[None, :]
    queued = np.array([(backlog or {}).get(v.id, 0.0) for v in views])
    room = np.maximum(np.array([ready.get(v.id, 0) for v in views], dtype=float) * cap - queued, 0.0)
    f = np.where(work > 0, np.minimum(1.0, room[None, :] / np.maximum(work, 1e-12)), 1.0)
    on_time = grid * f
    row = int(np.argmax(c.quality(on_time) * on_time.sum(axis=1)))
    return {v.id: float(x) for v, x in zip(views, grid[row]) if x > 0}


def plan_windows(
    views: list[ModelView], loads: list[WindowLoad], caps: Mapping[str, float], curve: QualityCurve
) -> list[WindowPlan]:
    """The best candidate per window within its GPUs (see the module docstring)."""
    c = _Candidates(views, max(w.gpus for w in loads), curve)
    cap = np.array([caps[v.id] for v in views])
    wts = np.array([v.prefill_weight for v in views])
    plans = []
    for w in loads:
        row, value = c.evaluate(w, cap, wts, w.gpus)
        shares = {v.id: float(s) for v, s in zip(views, c.S[row]) if s > 0}
        plans.append(WindowPlan(w.start_s, c.replicas(row, w, cap, wts), shares, value))
    return plans


def static_optimum(
    views: list[ModelView], loads: list[WindowLoad], caps: Mapping[str, float], curve: QualityCurve
) -> WindowPlan:
    """One fleet and one split for the whole trace, best summed over the windows' requests."""
    full = max(w.gpus for w in loads)
    c = _Candidates(views, full, curve)
    cap = np.array([caps[v.id] for v in views])
    wts = np.array([v.prefill_weight for v in views])
    total = np.zeros(len(c.S))
    for w in loads:
        if not w.requests:
            continue
        work = w.out_tps + wts * w.in_tps
        need_load = c.S * work[None, :]
        n = c.N * min(1.0, w.gpus / full)  # a fixed fleet loses replicas with its GPUs
        room = n * cap[None, :] * PLAN_UTILIZATION
        ratio = room / np.maximum(need_load, 1e-12)
        f = np.where(need_load > 0, np.minimum(1.0, ratio), 1.0)
        on_time = c.S * f
        # ties (every request on time) go to the candidate with the most head room where the load is
        spare = (c.S * np.minimum(np.where(need_load > 0, ratio, 0.0), 3.0)).sum(axis=1)
        total += w.requests * (c.quality(on_time) * on_time.sum(axis=1) + 1e-3 * spare)
    row = int(np.argmax(total))
    shares = {v.id: float(s) for v, s in zip(views, c.S[row]) if s > 0}
    reps = {v.id: int(k) for v, k in zip(views, c.N[row])}
    return WindowPlan(0.0, reps, shares, float(total[row] / max(sum(w.requests for w in loads), 1)))


@dataclass(frozen=True)
class Hindsight:
    """What the hindsight policies are built from: the window plans, the static optimum, and the
    capacities (work tokens/s per replica at the SLO on this trace) they assumed."""

    window_s: float
    epoch_s: float
    plans: list[WindowPlan]
    static: WindowPlan
    capacities: dict[str, float]
    loads: list[WindowLoad]


def build_hindsight(
    views: list[ModelView],
    curve: QualityCurve,
    caps: Mapping[str, float],
    arrival: np.ndarray,
    n_in: np.ndarray,
    n_out: np.ndarray,
    servable: np.ndarray,
    gpus_at: list[tuple[float, float]],
    window_s: float,
    epoch_s: float,
) -> Hindsight:
    """Window loads, the per-epoch plans (`epoch_s`, a whole number of windows: the fleet
    changes once per epoch, so replicas started ahead are ready when it begins) and the
    static optimum in one go."""
    end = float(arrival[-1]) if len(arrival) else window_s
    loads = window_loads(arrival, n_in, n_out, servable, end, window_s, gpus_at)
    per = max(1, round(epoch_s / window_s))
    plans = [static_optimum(views, loads[k : k + per], caps, curve) for k in range(0, len(loads), per)]
    return Hindsight(window_s, per * window_s, plans, static_optimum(views, loads, caps, curve), dict(caps), loads)


def hindsight_for(sc: Scenario, fleet: FleetConfig, trace: Trace, quick: bool = False) -> Hindsight:
    """The hindsight plans of a scenario: capacities measured at the SLO on its request sizes
    (each model on the requests its context window fits), its GPU events, its windows.
    `quick` measures on shorter runs (for tests)."""
    views = build_views(fleet)
    need = trace.input_tokens + trace.output_tokens
    ctx = {m: fleet.model(m).engine.max_model_len for m in fleet.model_ids}
    servable = need <= max(ctx.values())
    caps = {}
    for v in views:
        fits = need <= ctx[v.id]
        n_in, n_out = (trace.input_tokens[fits], trace.output_tokens[fits]) if fits.any() else (need[:1], need[:1])
        slo_s, prof = fleet.slo.ttft_p95_ms / 1000, sc.profile(v.id)
        if quick:
            c = capacity_at_slo(prof, v.gpus, n_in, n_out, slo_s, v.prefill_weight, 120.0, 30.0, 0.1, iterations=7)
        else:
            c = capacity_at_slo(prof, v.gpus, n_in, n_out, slo_s, v.prefill_weight)
        caps[v.id] = max(c.work_tokens_per_s, 1e-6)
    nodes = sc.gpus.total // sc.gpus.per_node
    gpus_at = [(0.0, float(sc.gpus.total))] + [
        (e.at_min * 60.0, float(round(e.gpus_fraction * nodes) * sc.gpus.per_node)) for e in sc.events
    ]
    return build_hindsight(
        views,
        fleet.autoscaler.router_quality_curve,
        caps,
        trace.arrival_s,
        trace.input_tokens,
        trace.output_tokens,
        servable,
        gpus_at,
        sc.window_s,
        max(sc.window_s, max(sc.profile(m).startup_s for m in fleet.model_ids)),
    )
