"""The hindsight planner (issue 13, item 1): the upper bound and the static joint optimum."""

from __future__ import annotations

import numpy as np
import pytest

from autoscaler.allocation import build_views, expected_quality
from autoscaler.simulator.hindsight import _Candidates, build_hindsight


def test_vectorised_quality_matches_the_policy(gfleet):
    views = build_views(gfleet)
    curve = gfleet.autoscaler.router_quality_curve
    c = _Candidates(views, 16, curve)
    rng = np.random.default_rng(0)
    shares = rng.random((50, len(views))) * (rng.random((50, len(views))) > 0.3)
    shares[0] = 0.0
    shares[0, -1] = 1.0
    got = c.quality(shares)
    for row, q in zip(shares, got):
        tot = row.sum()
        want = expected_quality(views, {v.id: s / tot for v, s in zip(views, row)}, curve) if tot else views[0].quality
        assert q == pytest.approx(want)


def test_window_plans_fit_each_windows_gpus_and_follow_the_load(gfleet):
    views = build_views(gfleet)  # s: 1 GPU, l: 4 GPUs (max 4)
    arrival = np.arange(0.0, 600.0, 0.1)
    n_in = np.full(len(arrival), 1000.0)
    n_out = np.where(arrival < 300, 100.0, 400.0)  # load rises 3x at 5 min
    hs = build_hindsight(
        views,
        gfleet.autoscaler.router_quality_curve,
        {"s": 6000.0, "l": 1200.0},
        arrival,
        n_in,
        n_out,
        np.ones(len(arrival), dtype=bool),
        [(0.0, 16.0), (400.0, 8.0)],
        60.0,
        60.0,
    )
    assert len(hs.plans) == 10
    for p in hs.plans:
        gpus = 16 if p.start_s + 60 <= 400 else 8
        assert sum(v.gpus * p.replicas[v.id] for v in views) <= gpus
        assert sum(p.shares.values()) == pytest.approx(1.0)
    light, heavy = hs.plans[1], hs.plans[8]
    assert light.value >= heavy.value  # fewer GPUs and more load: less quality on time
    assert light.shares.get("l", 0) > heavy.shares.get("l", 0)
    assert sum(v.gpus * hs.static.replicas[v.id] for v in views) <= 16
