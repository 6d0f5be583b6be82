"""What one simulated run measured: totals and per-bucket series over every arriving request.

Every policy is scored on the same denominators: requests whose prompt + output exceed every
model's context window (`too_long`, answered 400 by the gateway) are counted apart and left
out of the SLO and quality figures (no policy can serve them); every other arriving request
counts, answered late, rejected (429, queue timeout, never answered) or failed (its replica
died mid-stream) included. Cost is per 1M output tokens and per 1M total tokens of *all*
arriving requests, so the figures compare dollars for the same demand.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np
from numpy.typing import NDArray

from autoscaler.allocation import ModelView, QualityCurve, expected_quality
from autoscaler.simulator.engine import FAILED, OK, TOO_LONG, Requests
from autoscaler.simulator.priorities import PriorityTotals


class SimTotals(TypedDict, total=False):
    """Totals of one run (`None`: nothing to measure, e.g. no request served)."""

    requests: int
    servable: int
    too_long_share: float
    slo_attainment: float
    late_share: float
    rejected_share: float
    failed_share: float
    ttft_p95_s: float | None
    gpu_hours: float
    cost_usd: float
    cost_per_1m_output_tokens: float | None
    cost_per_1m_total_tokens: float | None
    expected_quality: float | None
    quality_within_slo: float
    upper_bound_gap: float | None
    duration_s: float
    start: str
    by_priority: dict[str, PriorityTotals]  # scenarios with tenants: what each priority class got


class BucketSeries(TypedDict, total=False):
    """One entry per `bucket_s` of arrivals (`None`: no request arrived, or none served, in the bucket)."""

    t: list[float]
    slo_attainment: list[float | None]
    rejected_share: list[float | None]
    expected_quality: list[float | None]
    strong_share_by_priority: dict[str, list[float | None]]  # scenarios with tenants


def totals(
    req: Requests, ids: list[str], views: list[ModelView], curve: QualityCurve, slo_s: float, gpu_s: float, price: float
) -> SimTotals:
    """Totals over every arriving request (see the module docstring for the denominators)."""
    servable = req.status != TOO_LONG
    n_serv = max(int(servable.sum()), 1)
    ok = req.status == OK
    within = ok & (req.ttft <= slo_s)
    cost = gpu_s / 3600.0 * price
    out_tok, all_tok = float(req.n_out.sum()), float((req.n_in + req.n_out).sum())
    q_in = quality_of(req, within, ids, views, curve) or 0.0
    return {
        "requests": int(len(req.arrival)),
        "servable": int(servable.sum()),
        "too_long_share": float((~servable).mean()) if len(req.arrival) else 0.0,
        "slo_attainment": float(within.sum()) / n_serv,
        "late_share": float((ok & ~within).sum()) / n_serv,
        "rejected_share": float((servable & ~ok).sum()) / n_serv,
        "failed_share": float((req.status == FAILED).sum()) / n_serv,
        "ttft_p95_s": float(np.nanpercentile(np.where(ok, req.ttft, np.nan), 95)) if ok.any() else None,
        "gpu_hours": gpu_s / 3600.0,
        "cost_usd": cost,
        "cost_per_1m_output_tokens": cost / out_tok * 1e6 if out_tok else None,
        "cost_per_1m_total_tokens": cost / all_tok * 1e6 if all_tok else None,
        "expected_quality": quality_of(req, ok, ids, views, curve),
        # Quality delivered per servable request: answers outside the TTFT SLO (or never given) count 0.
        "quality_within_slo": q_in * float(within.sum()) / n_serv,
    }


def buckets(
    req: Requests,
    ids: list[str],
    views: list[ModelView],
    curve: QualityCurve,
    slo_s: float,
    end: float,
    bucket_s: float,
) -> BucketSeries:
    """Per-bucket SLO attainment, rejected share and quality, by arrival time."""
    servable = req.status != TOO_LONG
    ok = req.status == OK
    within = ok & (req.ttft <= slo_s)
    edges = np.arange(0.0, end + bucket_s, bucket_s)
    bucket = np.clip(np.digitize(req.arrival, edges) - 1, 0, len(edges) - 1)
    b_slo: list[float | None] = []
    b_rej: list[float | None] = []
    b_q: list[float | None] = []
    for i in range(len(edges) - 1):
        sel = (bucket == i) & servable
        b_slo.append(float(within[sel].mean()) if sel.any() else None)
        b_rej.append(float((~ok[sel]).mean()) if sel.any() else None)
        b_q.append(quality_of(req, ok & sel, ids, views, curve) if (ok & sel).any() else None)
    return {"t": edges[:-1].tolist(), "slo_attainment": b_slo, "rejected_share": b_rej, "expected_quality": b_q}


def quality_of(
    req: Requests, sel: NDArray[np.bool_], ids: list[str], views: list[ModelView], curve: QualityCurve
) -> float | None:
    """Expected quality of the selected requests: auto ones by the realized shares through the
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
        weights.append(int(auto.sum()))
    pinned = sel & ~req.auto
    if pinned.any():
        parts.append(float(np.mean([qual[ids[k]] for k in req.model[pinned]])))
        weights.append(int(pinned.sum()))
    return float(np.average(parts, weights=weights))
