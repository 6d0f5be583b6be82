from __future__ import annotations

import logging

import pytest

from serving.fleet.schema import RoutingConfig
from serving.router import artifact as artifacts
from serving.router.build import build_router
from serving.router.pipeline import gate, resolve_threshold
from serving.router.policies import POLICY_NAMES, CascadePolicy, CheapestFitPolicy, LearnedPolicy, route
from serving.router.scorers import ScorerWeights
from serving.router.state import RoutingState, RoutingStateHolder
from serving.router.types import RequestConstraints, RouteRequest, RoutingError

from .helpers import fleet, req


def broken_load():
    raise artifacts.ArtifactError("x.npz: sha256 does not match")


@pytest.fixture(scope="module")
def shipped():
    return artifacts.load()


def learned(shipped, **state):
    return LearnedPolicy(shipped, RoutingStateHolder(RoutingState(**state)))


@pytest.mark.parametrize(
    "score, state, key, constraints, expected, reason_part",
    [
        (0.3, {"threshold": 0.2}, 0.5, {}, "large", "learned:strong;score=0.300>=thr=0.200"),
        (0.1, {"threshold": 0.2}, 0.5, {}, "small", "learned:weak;score=0.100<thr=0.200"),
        (0.3, {"threshold": 0.2, "downgrade_share": 0.6}, 0.5, {}, "small", "downgraded"),
        (0.3, {"threshold": 0.2, "downgrade_share": 0.6}, 0.7, {}, "large", "learned:strong"),
        (0.3, {"threshold": 0.2, "downgrade_share": 0.6}, 0.5, {"allow_downgrade": False}, "large", "learned:strong"),
        (0.1, {"threshold": 0.2}, 0.5, {"min_tier": "large"}, "large", "skipped=small:min_tier"),
        (0.3, {"threshold": 0.2, "allowed_tiers": {"small"}}, 0.5, {}, "small", "skipped=large:state_tiers"),
        (0.3, {"threshold": 0.2}, 0.5, {"max_cost_usd": 1e-6}, "small", "skipped=large:max_cost"),
    ],
)
def test_learned_decisions(shipped, score, state, key, constraints, expected, reason_part):
    d = route(req(score, key=key, **constraints), fleet(), learned(shipped, **state))
    assert d.model == expected and reason_part in d.reason, d.reason
    assert d.strong_score == score and d.expected_cost_usd > 0 and 0 <= d.predicted_quality <= 1


def test_strong_share_calibrates_threshold(shipped):
    q = shipped.score_quantiles
    p_all = learned(shipped, strong_share=1.0)
    p_none = learned(shipped, strong_share=0.0)
    assert p_all.threshold() == pytest.approx(q[0]) and p_none.threshold() == float("inf")
    assert route(req(float(q[0])), fleet(), p_all).model == "large"
    assert route(req(float(q[-1])), fleet(), p_none).model == "small"
    assert resolve_threshold(RoutingState(), None, 0.7) == float("-inf")


def test_state_changes_apply_without_rebuilding(shipped):
    holder = RoutingStateHolder(RoutingState(threshold=0.5))
    p = LearnedPolicy(shipped, holder)
    assert route(req(0.3), fleet(), p).model == "small"
    holder.update(threshold=0.1)
    assert route(req(0.3), fleet(), p).model == "large"


def test_headroom_can_break_ties_between_same_tier():
    from serving.router.types import FleetSnapshot, ModelSnapshot

    fl = FleetSnapshot(
        (ModelSnapshot("a", "small", 0, 64, 0.05, 250, 0.1, 1), ModelSnapshot("b", "small", 0, 64, 0.05, 250, 0.1, 3))
    )
    p = LearnedPolicy(artifacts.load(), RoutingStateHolder(RoutingState(threshold=0.5)))
    assert route(req(0.1, tokens={"a": 5, "b": 5}), fl, p).model == "b"


def test_degraded_falls_back_to_cheapest_fit_and_logs_once(caplog):
    with caplog.at_level(logging.WARNING, "petit.router"):
        p = LearnedPolicy(load=broken_load)
        p.mark_degraded("second cause")
    assert p.degraded and "sha256" in p.degraded_reason
    assert len([r for r in caplog.records if "degraded" in r.message]) == 1
    for r in (req(0.9), req(None), req(0.9, tokens={"small": 60, "large": 10})):
        assert route(r, fleet(), p).model == route(r, fleet(), CheapestFitPolicy()).model
    d = route(req(0.9, tokens={"small": 60, "large": 10}), fleet(), p)
    assert d.reason == "learned:degraded->cheapest_fit;skipped=small:context"
    assert route(req(0.9, min_tier="large"), fleet(), p).model == "large"  # constraints still hold


def test_no_prediction_routes_cheapest(shipped):
    d = route(req(None), fleet(), learned(shipped, threshold=-1.0))
    assert d.model == "small" and d.reason == "learned:no_prediction->cheapest_fit" and not learned(shipped).degraded


@pytest.mark.parametrize(
    "kwargs, request_, model, escalate, reason_part",
    [
        ({}, req(0.9), "small", "large", "cascade:first=small;escalate_to=large"),
        ({}, req(None, tokens={"small": 60, "large": 10}), "large", None, "skipped=small:context"),
        ({"skip_score": 0.5}, req(0.9), "large", None, "skip_to_strong"),
        ({"skip_score": 0.5}, req(0.1), "small", "large", "first=small"),
        ({}, req(0.1, min_tier="large"), "large", None, "escalate_to=None"),
    ],
)
def test_cascade_policy(kwargs, request_, model, escalate, reason_part):
    d = route(request_, fleet(), CascadePolicy(**kwargs))
    assert (d.model, d.escalate_to) == (model, escalate) and reason_part in d.reason


def test_cascade_policy_errors_like_the_pipeline():
    with pytest.raises(RoutingError) as exc:
        route(req(None, tokens={"small": 10_000, "large": 10_000}), fleet(), CascadePolicy())
    assert exc.value.param == "messages"  # too long for every model: the pipeline's context error


def test_one_builder_and_defaults():
    assert set(POLICY_NAMES) == {"cheapest_fit", "learned", "cascade"}
    r = build_router(RoutingConfig(default_policy="learned", enabled_policies=["cascade", "cheapest_fit"]))
    assert set(r.policies) == set(POLICY_NAMES) and r.default.name == "learned" and not r.default.degraded
    assert r.predictor is not None
    r.state.update(allowed_tiers=["large"])  # one state, shared by every policy
    for p in r.policies.values():
        assert route(req(0.0), fleet(), p).model == "large"
    r = RouteRequest("auto", 8)  # old-style construction keeps working
    assert r.prediction is None and r.constraints.allow_downgrade and r.route_key == 0.5


def test_gate_downgrade_only_for_strong():
    assert not gate(req(0.1, key=0.0), RoutingState(downgrade_share=1.0), 0.2).want_strong
    assert gate(req(0.3, key=0.99), RoutingState(downgrade_share=0.5), 0.2).want_strong


def test_gate_downgrades_by_the_tenant_priority_when_the_state_has_shares_by_priority():
    from dataclasses import replace

    state = RoutingState(downgrade_share=0.5, downgrade_share_by_priority={"low": 1.0, "normal": 0.5, "high": 0.0})
    strong = req(0.3, key=0.9)
    assert gate(strong, state, 0.2).want_strong  # no tenant: the mean share (0.5), key 0.9 stays strong
    low = gate(replace(strong, priority="low"), state, 0.2)
    assert not low.want_strong and low.note.endswith(";downgraded:low")
    assert gate(replace(strong, priority="high", route_key=0.0), state, 0.2).want_strong
    assert gate(
        replace(strong, priority="low", constraints=RequestConstraints(allow_downgrade=False)), state, 0.2
    ).want_strong


def test_weights_can_disable_the_gate(shipped):
    p = LearnedPolicy(
        shipped,
        RoutingStateHolder(RoutingState(threshold=0.0)),
        ScorerWeights(tier_fit=0, quality=0, price=1, headroom=0),
    )
    assert route(req(0.9), fleet(), p).model == "small"
