from __future__ import annotations

import pytest

from serving.router.constraints import ConstraintError, parse_constraints
from serving.router.state import RoutingState, RoutingStateHolder
from serving.router.types import RequestConstraints


@pytest.mark.parametrize(
    "kwargs",
    [
        {"strong_share": 1.5},
        {"downgrade_share": -0.1},
        {"allowed_tiers": {"huge"}},
        {"allowed_tiers": set()},
        {"threshold": float("nan")},
        {"downgrade_share_by_priority": {"gold": 0.5}},
        {"downgrade_share_by_priority": {"low": 1.5}},
        {"downgrade_share_by_priority": {"low": float("nan")}},
        {"downgrade_share_by_priority": {"low": True}},
        {"downgrade_share_by_priority": ["low"]},
    ],
)
def test_state_rejects_out_of_range(kwargs):
    with pytest.raises(ValueError):
        RoutingState(**kwargs)


def test_holder_set_update_bumps_version():
    h = RoutingStateHolder()
    assert h.get() == RoutingState()
    s = h.update(threshold=0.2, allowed_tiers={"small"})
    assert h.get() is s and s.version == 1 and s.allowed_tiers == frozenset({"small"})
    h.set(RoutingState(strong_share=0.3, version=7))
    assert h.get().strong_share == 0.3 and h.update(downgrade_share=0.5).version == 8
    with pytest.raises(ValueError):
        h.update(downgrade_share=3)
    assert h.get().downgrade_share == 0.5  # unchanged by the rejected update
    with pytest.raises(TypeError):
        h.set({"threshold": 1})


def test_downgrade_share_by_priority_overrides_the_share_for_the_classes_it_names():
    s = RoutingState(downgrade_share=0.4, downgrade_share_by_priority={"low": 1.0, "high": 0.0})
    assert [s.downgrade_share_for(p) for p in ("low", "high", "normal", None)] == [1.0, 0.0, 0.4, 0.4]
    assert RoutingState(downgrade_share=0.4).downgrade_share_for("low") == 0.4
    h = RoutingStateHolder(s)
    assert h.update(downgrade_share_by_priority=None).downgrade_share_for("low") == 0.4  # cleared by the bridge


@pytest.mark.parametrize(
    "body, headers, expected",
    [
        ({}, {}, RequestConstraints()),
        (
            {"petit": {"max_cost_usd": 0.001, "min_tier": "Large", "allow_downgrade": False}},
            {},
            RequestConstraints(0.001, "large", False),
        ),
        (
            {},
            {"X-Petit-Max-Cost-USD": "0.5", "x-petit-min-tier": "medium", "x-petit-allow-downgrade": "false"},
            RequestConstraints(0.5, "medium", False),
        ),
        (
            {"petit": {"min_tier": "small"}},
            {"x-petit-min-tier": "large", "x-petit-max-cost-usd": "1"},
            RequestConstraints(1.0, "small", True),
        ),
        ({"petit": {"max_cost_usd": None}}, {}, RequestConstraints()),
    ],
)
def test_parse_constraints(body, headers, expected):
    assert parse_constraints(body, headers) == expected


@pytest.mark.parametrize(
    "body, headers, param",
    [
        ({"petit": {"max_cost_usd": -1}}, {}, "petit.max_cost_usd"),
        ({"petit": {"max_cost_usd": 0}}, {}, "petit.max_cost_usd"),
        ({"petit": {"max_cost_usd": True}}, {}, "petit.max_cost_usd"),
        ({"petit": {"max_cost_usd": 1e9}}, {}, "petit.max_cost_usd"),
        ({}, {"x-petit-max-cost-usd": "inf"}, "x-petit-max-cost-usd"),
        ({}, {"x-petit-max-cost-usd": "cheap"}, "x-petit-max-cost-usd"),
        ({"petit": {"min_tier": "xl"}}, {}, "petit.min_tier"),
        ({"petit": {"min_tier": 2}}, {}, "petit.min_tier"),
        ({}, {"x-petit-allow-downgrade": "maybe"}, "x-petit-allow-downgrade"),
        ({"petit": {"allow_downgrade": "sometimes"}}, {}, "petit.allow_downgrade"),
        ({"petit": {"budget": 1}}, {}, "petit.budget"),
        ({"petit": "cheap"}, {}, "petit"),
    ],
)
def test_parse_constraints_errors(body, headers, param):
    with pytest.raises(ConstraintError) as exc:
        parse_constraints(body, headers)
    assert exc.value.param == param and isinstance(exc.value, ValueError)
