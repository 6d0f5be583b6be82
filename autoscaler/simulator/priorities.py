"""Tenant priorities in the simulator: who sends each request, how the gateway routes each class
under the plan, and what each class got (pure; numpy).

A scenario's `tenants` ({name, priority, share}) assign every request a tenant, drawn by share
with the scenario's seed; its priority class decides which downgrade share the gateway applies
(`autoscaler.priority`). Without tenants every request is in no class and routes by the plan's
shares, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypedDict

import numpy as np
from numpy.typing import NDArray

from autoscaler.allocation import ModelView
from autoscaler.priority import priority_shares
from autoscaler.routing_bridge import routing_changes
from autoscaler.simulator.engine import TOO_LONG, Requests
from autoscaler.simulator.scenario import GpuEvent, TenantShare
from autoscaler.snapshot import Plan
from serving.fleet.tenants import PRIORITIES

NO_PRIORITY = len(PRIORITIES)  # the class index of a request without a tenant


class PriorityTotals(TypedDict):
    """One priority class's movable (`auto`) requests and what they got (`None`: no such request)."""

    requests: int
    strong_share: float | None
    strong_share_short: float | None
    slo_attainment: float | None


def assign_priorities(n: int, tenants: Sequence[TenantShare], seed: int) -> NDArray[np.int_]:
    """Each request's priority class index (`PRIORITIES` order), its tenant drawn by share;
    `NO_PRIORITY` for every request without tenants. Its own generator: other draws are unchanged."""
    if not tenants:
        return np.full(n, NO_PRIORITY, dtype=int)
    shares = np.array([t.share for t in tenants], dtype=float)
    pick = np.random.default_rng(seed + 6007).choice(len(tenants), size=n, p=shares / shares.sum())
    return np.array([PRIORITIES.index(t.priority) for t in tenants], dtype=int)[pick]


def movable_by_priority(priority: NDArray[np.int_], auto: NDArray[np.bool_], period_s: float) -> dict[str, float]:
    """Movable requests/s per class of requests with these classes and `auto` flags (classes without
    one left out), as an ingress reports them."""
    counts = np.bincount(priority[auto], minlength=NO_PRIORITY + 1)
    return {p: float(counts[i]) / period_s for i, p in enumerate(PRIORITIES) if counts[i] > 0}


def strong_ids(views: Sequence[ModelView]) -> set[str]:
    """The strong tier: the models of the highest quality (as the policy counts its strong share)."""
    top = max(v.quality for v in views)
    return {v.id for v in views if v.quality >= top}


def class_cums(
    plan: Plan | None, shares: Mapping[str, float], ids: list[str], strong: set[str]
) -> NDArray[np.float64] | None:
    """Cumulative model shares per class (rows in `PRIORITIES` order) as the gateway realises `plan`'s
    routing (`routing_bridge.routing_changes`); None when every class routes by `shares` alike."""
    if plan is None:
        return None
    changes = routing_changes(plan.routing)
    by, strong_share = changes["downgrade_share_by_priority"], changes["strong_share"]
    if by is None or strong_share is None:
        return None
    per = priority_shares(shares, strong, strong_share, by)
    rows = []
    for p in PRIORITIES:
        total = sum(per[p].values()) or 1.0
        rows.append(np.cumsum([per[p].get(i, 0.0) / total for i in ids]))
    return np.array(rows)


def gpus_short(arrival: NDArray[np.float64], events: Sequence[GpuEvent]) -> NDArray[np.bool_]:
    """Whether each request arrived while the cluster had fewer GPUs than at the start."""
    frac = np.ones(len(arrival))
    for e in events:
        frac[arrival >= e.at_min * 60.0] = e.gpus_fraction
    return frac < 1.0


def _share(hit: NDArray[np.bool_], sel: NDArray[np.bool_]) -> float | None:
    return float(hit[sel].mean()) if sel.any() else None


def priority_totals(
    req: Requests, strong_idx: NDArray[np.int_], within: NDArray[np.bool_], short: NDArray[np.bool_]
) -> dict[str, PriorityTotals]:
    """Per class with requests: its servable movable requests, the share of them routed to the strong
    tier (overall and while GPUs were short) and their TTFT-SLO attainment."""
    movable = req.auto & (req.status != TOO_LONG)
    strong = np.isin(req.model, strong_idx)
    out: dict[str, PriorityTotals] = {}
    for i, p in enumerate(PRIORITIES):
        sel = movable & (req.priority == i)
        if sel.any():
            out[p] = {
                "requests": int(sel.sum()),
                "strong_share": _share(strong, sel),
                "strong_share_short": _share(strong, sel & short),
                "slo_attainment": _share(within, sel),
            }
    return out


def priority_buckets(
    req: Requests, strong_idx: NDArray[np.int_], end: float, bucket_s: float
) -> dict[str, list[float | None]]:
    """Per class with requests, per `bucket_s` of arrivals (the buckets of `metrics.buckets`): the share
    of its movable requests routed to the strong tier."""
    edges = np.arange(0.0, end + bucket_s, bucket_s)
    bucket = np.clip(np.digitize(req.arrival, edges) - 1, 0, len(edges) - 1)
    movable = req.auto & (req.status != TOO_LONG)
    strong = np.isin(req.model, strong_idx)
    out: dict[str, list[float | None]] = {}
    for i, p in enumerate(PRIORITIES):
        cls = movable & (req.priority == i)
        if cls.any():
            out[p] = [_share(strong, cls & (bucket == b)) for b in range(len(edges) - 1)]
    return out
