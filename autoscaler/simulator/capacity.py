"""Capacity of one replica at the SLO, measured on the simulator (pure; numpy only).

`capacity_at_slo` drives one warm replica of a profile with Poisson arrivals
whose sizes are drawn from a trace, and bisects the arrival rate for the
highest one whose TTFT p95 stays within the SLO. The answer is in the unit of
the fleet config's `capacity_tokens_per_s`: work tokens per second, output
tokens plus `prefill_token_weight` x input tokens. `petit simulate --capacity`
prints it next to each model's configured figure, so the config can be set
from a measurement rather than by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autoscaler.simulator.engine import OK, Cluster, Fleet, Requests
from autoscaler.simulator.profiles import ReplicaProfile


@dataclass(frozen=True)
class Capacity:
    rate_rps: float
    work_tokens_per_s: float
    ttft_p95_s: float


def replay_warm(
    profile: ReplicaProfile,
    gpus: float,
    replicas: int,
    req: Requests,
    tick_s: float,
    until_s: float,
    timeout_s: float | None = None,
    max_queue: int = 10**9,
) -> Requests:
    """Every request of `req` pinned to `replicas` warm replicas of one profile, simulated until
    `until_s`; fills `req` in place and returns it. Requests still queued at the end are left
    unanswered (status 0); `timeout_s` (default: never) rejects those queued longer."""
    per_node = int(np.ceil(max(gpus, 1)))
    fleet = Fleet([gpus], [profile], [max_queue], Cluster(per_node * max(replicas, 1), per_node))
    fleet.reconcile(0, replicas, 0.0)
    for r in fleet.replicas[0]:
        r.ready_at = 0.0
    ptr, tick, n_ticks = 0, 0, int(np.ceil(until_s / tick_s))
    while tick < n_ticks:
        t = tick * tick_s
        hi = int(np.searchsorted(req.arrival, t + tick_s, side="left"))
        for rid in range(ptr, hi):
            req.model[rid] = 0
            fleet.enqueue(0, rid, req)
        ptr = hi
        fleet.step(t, tick_s, req, timeout_s=until_s if timeout_s is None else timeout_s)
        tick += 1
    return req


def _ttft_p95(
    profile: ReplicaProfile,
    gpus: float,
    rate: float,
    n_in: np.ndarray,
    n_out: np.ndarray,
    duration_s: float,
    warmup_s: float,
    tick_s: float,
    seed: int,
) -> float:
    """TTFT p95 (s) of requests arriving after the warm-up; inf when some were never answered."""
    rng = np.random.default_rng(seed)
    n = max(1, int(rate * duration_s))
    arrival = np.sort(rng.uniform(0.0, duration_s, n))
    pick = rng.integers(0, len(n_in), n)
    req = replay_warm(
        profile,
        gpus,
        1,
        Requests(arrival, n_in[pick].astype(float), n_out[pick].astype(float)),
        tick_s,
        duration_s * 1.5,
    )
    measured = arrival >= warmup_s
    tt = np.where(req.status[measured] == OK, req.ttft[measured], np.inf)
    tt = np.where(np.isnan(tt), np.inf, tt)
    return float(np.percentile(tt, 95, method="higher")) if len(tt) else 0.0


def capacity_at_slo(
    profile: ReplicaProfile,
    gpus: float,
    n_in: np.ndarray,
    n_out: np.ndarray,
    slo_s: float,
    prefill_weight: float,
    duration_s: float = 240.0,
    warmup_s: float = 60.0,
    tick_s: float = 0.05,
    seed: int = 0,
    iterations: int = 12,
) -> Capacity:
    """The highest Poisson rate (bisected) whose TTFT p95 <= `slo_s` on one warm replica."""
    work = float(np.mean(n_out + prefill_weight * n_in))
    lo, hi = 0.0, 1.0
    while _ttft_p95(profile, gpus, hi, n_in, n_out, duration_s, warmup_s, tick_s, seed) <= slo_s:
        lo, hi = hi, hi * 2
        if hi > 1e4:
            break
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if _ttft_p95(profile, gpus, mid, n_in, n_out, duration_s, warmup_s, tick_s, seed) <= slo_s:
            lo = mid
        else:
            hi = mid
    p95 = _ttft_p95(profile, gpus, lo, n_in, n_out, duration_s, warmup_s, tick_s, seed) if lo > 0 else 0.0
    return Capacity(lo, lo * work, p95)
