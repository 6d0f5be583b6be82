"""Scarcity by priority: the split of the plan's downgrade share over priority classes, and its bridge."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.priority import priority_mix, priority_shares, split_downgrade
from autoscaler.routing_bridge import routing_changes
from autoscaler.snapshot import ModelSignals, RoutingPlan
from serving.fleet.tenants import PRIORITIES
from serving.router.state import RoutingState

demand = st.floats(
    min_value=0.0, max_value=1e6, allow_nan=False, allow_subnormal=False
)  # the check's own sums underflow on subnormals
mixes = st.fixed_dictionaries({p: demand for p in PRIORITIES})


@settings(max_examples=300, deadline=None)
@given(share=st.floats(min_value=0.0, max_value=1.0), mix=mixes)
def test_split_conserves_the_mean_is_monotone_and_bounded(share, mix):
    d = split_downgrade(share, mix)
    assert set(d) == set(PRIORITIES)
    assert all(0.0 <= v <= 1.0 for v in d.values())
    assert d["low"] >= d["normal"] >= d["high"]
    total = sum(mix.values())
    if total > 0:
        mean = sum(mix[p] * d[p] for p in PRIORITIES) / total
        assert mean == pytest.approx(share, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(a=st.floats(min_value=0.0, max_value=1.0), b=st.floats(min_value=0.0, max_value=1.0), mix=mixes)
def test_a_deeper_cut_never_downgrades_a_class_less(a, b, mix):
    lo, hi = split_downgrade(min(a, b), mix), split_downgrade(max(a, b), mix)
    assert all(lo[p] <= hi[p] + 1e-12 for p in PRIORITIES)


@pytest.mark.parametrize(
    "share, mix, expected",
    [
        (0.3, {"low": 0.5, "high": 0.5}, {"low": 0.6, "normal": 0.0, "high": 0.0}),
        (0.7, {"low": 0.5, "high": 0.5}, {"low": 1.0, "normal": 1.0, "high": 0.4}),  # normal: no demand, below
        (0.5, {"low": 1, "normal": 2, "high": 1}, {"low": 1.0, "normal": 0.5, "high": 0.0}),
        (1.0, {"low": 1, "normal": 2, "high": 1}, {"low": 1.0, "normal": 1.0, "high": 1.0}),
        (0.0, {"low": 1, "normal": 2, "high": 1}, {"low": 0.0, "normal": 0.0, "high": 0.0}),
        (0.2, {"normal": 3, "high": 1}, {"low": 1.0, "normal": 0.2 * 4 / 3, "high": 0.0}),  # low: none, so 1
    ],
)
def test_lowest_priority_is_downgraded_first(share, mix, expected):
    assert split_downgrade(share, mix) == pytest.approx(expected)


@pytest.mark.parametrize("mix", [None, {}, {"low": 0.0, "high": 0.0}, {"normal": 5.0}, {"high": float("nan")}])
def test_without_a_mix_to_order_every_class_gets_the_plan_share(mix):
    assert split_downgrade(0.4, mix) == dict.fromkeys(PRIORITIES, 0.4)


def test_priority_mix_sums_movable_demand_over_models_and_ignores_unknown_classes():
    signals = {
        "s": ModelSignals(movable_rps_by_priority={"low": 2.0, "high": 1.0}),
        "l": ModelSignals(movable_rps_by_priority={"low": 1.0, "gold": 9.0, "normal": 0.0}),
        "m": ModelSignals(),
    }
    assert priority_mix(signals) == {"low": 3.0, "high": 1.0}


def test_priority_shares_give_each_class_its_strong_share_and_keep_the_plan_on_average():
    shares, mix = {"s": 0.7, "l": 0.3}, {"low": 0.5, "normal": 0.2, "high": 0.3}
    down = 1 - 0.3 / 0.6  # the plan's strong share 0.3, 0.6 with unlimited GPUs
    by = split_downgrade(down, mix)
    per = priority_shares(shares, {"l"}, 0.6, by)
    assert per["high"]["l"] == pytest.approx(0.6) and per["low"]["l"] == pytest.approx(0.0)
    for p in PRIORITIES:
        assert sum(per[p].values()) == pytest.approx(1.0)
    for m in shares:
        assert sum(mix[p] * per[p][m] for p in PRIORITIES) == pytest.approx(shares[m])
    assert priority_shares({"l": 1.0}, {"l"}, 1.0, by)["low"] == {"l": 1.0}  # nowhere to downgrade to


def _plan(strong, down, by, constrained=True):
    return RoutingPlan({}, ("large", "small"), strong, down, 0.0, "test", constrained, by)


def test_bridge_sets_the_unconstrained_strong_share_and_the_shares_by_priority():
    by = split_downgrade(0.5, {"low": 1, "high": 1})
    ch = routing_changes(_plan(0.3, 0.5, by))
    assert ch["strong_share"] == pytest.approx(0.6) and ch["downgrade_share"] == 0.5
    assert ch["downgrade_share_by_priority"] == {"low": 1.0, "normal": 0.0, "high": 0.0}
    RoutingState(**{**ch, "allowed_tiers": frozenset(ch["allowed_tiers"])})  # the state accepts it


@pytest.mark.parametrize(
    "plan",
    [
        _plan(0.3, 0.5, dict.fromkeys(PRIORITIES, 0.5)),  # no mix: one cut, hardest prompts first
        _plan(0.0, 1.0, dict.fromkeys(PRIORITIES, 1.0)),  # the strong tier is closed
        _plan(0.3, 0.5, {}),  # a hold plan
    ],
)
def test_bridge_keeps_one_cut_for_everyone_without_an_order(plan):
    ch = routing_changes(plan)
    assert ch["strong_share"] == plan.strong_share and ch["downgrade_share"] == 0.0
    assert ch["downgrade_share_by_priority"] is None


def test_bridge_clears_the_shares_when_the_plan_is_unconstrained():
    ch = routing_changes(_plan(1.0, 0.0, {"low": 1.0, "normal": 0.0, "high": 0.0}, constrained=False))
    assert ch == {
        "allowed_tiers": None,
        "strong_share": None,
        "downgrade_share": 0.0,
        "downgrade_share_by_priority": None,
    }
