from __future__ import annotations

import numpy as np
import pytest

from serving.router.calibration import (
    score_quantiles,
    share_for_budget,
    share_for_threshold,
    threshold_for_budget,
    threshold_for_share,
)
from serving.router.training.metrics import apgr, apgr10, bootstrap, cpt, curve, router_summary

# 4 prompts: weak right on 0,1; strong right on 0,2,3. weak acc 0.5, strong 0.75, gap 0.25.
WEAK = np.array([1, 1, 0, 0], bool)
STRONG = np.array([1, 0, 1, 1], bool)


def test_curve_by_hand():
    # order by score: 2, 3, 0, 1 -> gains +1, +1, 0, -1
    c = curve(np.array([0.5, 0.1, 0.9, 0.8]), WEAK, STRONG)
    assert c.quality.tolist() == [0.5, 0.75, 1.0, 1.0, 0.75]
    assert c.pgr.tolist() == [0.0, 1.0, 2.0, 2.0, 1.0]
    # trapezoids with width 1/4: (0+1)/2 + (1+2)/2 + (2+2)/2 + (2+1)/2 = 0.5+1.5+2+1.5 = 5.5 -> /4
    assert apgr(c) == pytest.approx(5.5 / 4)
    assert cpt(c, 0.5) == 0.25 and cpt(c, 0.8) == 0.25


def test_worst_router_and_apgr10():
    c = curve(np.array([0.9, 1.0, 0.1, 0.0]), WEAK, STRONG)  # the only-weak prompt first
    assert c.pgr.tolist() == [0.0, -1.0, -1.0, 0.0, 1.0]
    assert apgr(c) == pytest.approx((-0.5 - 1 - 0.5 + 0.5) / 4)
    assert cpt(c, 0.8) == 1.0
    # PGR at share k/10 is k/10: mean over k = 1..10 is 0.55
    assert apgr10(curve(np.arange(10.0), np.zeros(10, bool), np.ones(10, bool))) == pytest.approx(0.55)


def test_random_router_is_about_half():
    rng = np.random.default_rng(1)
    w, s = rng.random(4000) < 0.6, rng.random(4000) < 0.8
    assert router_summary(rng.random(4000), w, s)["apgr"] == pytest.approx(0.5, abs=0.05)


def test_curve_errors():
    with pytest.raises(ValueError):
        curve(np.array([1.0]), np.array([True]), np.array([True]))
    with pytest.raises(ValueError):
        curve(np.array([1.0, 2.0]), np.array([True]), np.array([True, False]))


def test_bootstrap_paired_and_cis_contain_point():
    rng = np.random.default_rng(0)
    w, s = rng.random(300) < 0.6, rng.random(300) < 0.8
    oracle = s.astype(float) - w
    res = bootstrap({"oracle": lambda i, r: oracle[i], "random": lambda i, r: r.random(len(i))}, w, s, n_boot=100)
    for name in ("oracle", "random"):
        lo, hi = res[name]["apgr"]["ci"]
        assert lo <= res[name]["apgr"]["value"] <= hi and res[name]["n_boot"] == 100
    assert res["oracle"]["diff_apgr"]["random"]["ci"][0] > 0


def test_threshold_for_share():
    q = score_quantiles(np.linspace(0, 1, 1001))
    assert threshold_for_share(q, 0.25) == pytest.approx(0.75)
    assert threshold_for_share(q, 1.0) == 0.0 and threshold_for_share(q, 0.0) == float("inf")
    assert share_for_threshold(q, 0.75) == pytest.approx(0.25) and share_for_threshold(q, float("inf")) == 0.0
    with pytest.raises(ValueError):
        threshold_for_share(q, 1.2)


@pytest.mark.parametrize(
    "budget, weak, strong, share",
    [(0.5, 0.0, 1.0, 0.5), (0.1, 0.2, 1.0, 0.0), (5.0, 0.2, 1.0, 1.0), (0.6, 0.2, 1.0, 0.5), (0.1, 0.3, 0.3, 1.0)],
)
def test_share_for_budget(budget, weak, strong, share):
    assert share_for_budget(budget, weak, strong) == pytest.approx(share)


def test_threshold_for_budget_and_errors():
    q = score_quantiles(np.linspace(0, 1, 101))
    assert threshold_for_budget(q, 0.6, 0.2, 1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        share_for_budget(-1, 0, 1)
