from __future__ import annotations

import pytest

from serving.fleet.schema import RoutingConfig
from serving.router.build import build_router
from serving.router.policies import CheapestFitPolicy, route
from serving.router.state import RoutingState, RoutingStateHolder
from serving.router.types import FleetSnapshot, ModelSnapshot, RouteRequest, RoutingError


def snap(ready_small=1, ready_large=1, small_len=64, large_len=256, small_price=0.05, large_price=0.20):
    return FleetSnapshot(
        (
            ModelSnapshot("small", "small", 0, small_len, small_price, 250, 0.1, ready_small),
            ModelSnapshot("large", "large", 2, large_len, large_price, 80, 0.1, ready_large),
        )
    )


POLICY = CheapestFitPolicy()


@pytest.mark.parametrize(
    "case, request_, fleet, expected_model, reason_part",
    [
        (
            "short prompt goes small",
            RouteRequest("auto", 16, {"small": 10, "large": 12}),
            snap(),
            "small",
            "cheapest_fit",
        ),
        (
            "only large fits",
            RouteRequest("auto", 16, {"small": 60, "large": 60}),
            snap(),
            "large",
            "skipped=small:context",
        ),
        ("small down", RouteRequest("auto", 16, {"large": 10}), snap(ready_small=0), "large", "cheapest_fit"),
        (
            "price decides, not tier",
            RouteRequest("auto", 16, {"small": 10, "large": 10}),
            snap(small_price=5.0, large_price=0.01),
            "large",
            "cheapest_fit",
        ),
        ("explicit large stays large", RouteRequest("large", 16), snap(), "large", "explicit"),
        (
            "explicit small even if large is cheaper",
            RouteRequest("small", 16),
            snap(small_price=9),
            "small",
            "explicit",
        ),
    ],
)
def test_route(case, request_, fleet, expected_model, reason_part):
    d = route(request_, fleet, POLICY)
    assert d.model == expected_model, case
    assert reason_part in d.reason


def test_auto_decision_carries_expected_cost():
    d = route(RouteRequest("auto", 40, {"small": 10, "large": 10}), snap(), POLICY)
    assert d.model == "small"
    assert d.expected_cost_usd == pytest.approx(0.05 / 3600 * (40 + 1) / 250)


def test_exact_fit_boundary():
    assert route(RouteRequest("auto", 14, {"small": 50, "large": 50}), snap(), POLICY).model == "small"
    assert route(RouteRequest("auto", 15, {"small": 50, "large": 50}), snap(), POLICY).model == "large"


@pytest.mark.parametrize(
    "request_, fleet, status, param",
    [
        (RouteRequest("nope", 16), snap(), 404, "model"),
        (RouteRequest("small", 16), snap(ready_small=0), 503, None),
        (RouteRequest("auto", 16, {"small": 500, "large": 500}), snap(), 400, "messages"),
        (RouteRequest("auto", 16, {}), snap(ready_small=0, ready_large=0), 503, None),
        (RouteRequest("auto", 16, {}), snap(), 503, None),  # no model could count: retry later
    ],
)
def test_route_errors(request_, fleet, status, param):
    with pytest.raises(RoutingError) as exc:
        route(request_, fleet, POLICY)
    assert exc.value.status == status
    assert exc.value.param == param


def test_unknown_model_lists_served_ids():
    with pytest.raises(RoutingError, match="small, large, auto"):
        route(RouteRequest("gpt-5", 1), snap(), POLICY)


def test_build_router_cheapest_fit_only_needs_no_artefact():
    def no_artefact():
        raise AssertionError("cheapest_fit must not load the router artefact")

    r = build_router(RoutingConfig(), load=no_artefact)
    assert set(r.policies) == {"cheapest_fit"} and r.default.name == "cheapest_fit" and r.predictor is None


def test_cheapest_fit_follows_the_routing_state_tiers():
    holder = RoutingStateHolder()
    p = CheapestFitPolicy(holder)
    request = RouteRequest("auto", 16, {"small": 10, "large": 10})
    assert route(request, snap(), p).model == "small"
    holder.set(RoutingState(allowed_tiers=frozenset({"large"})))  # e.g. the small tier is being drained
    assert route(request, snap(), p).model == "large"
    holder.set(RoutingState(allowed_tiers=frozenset({"small"})))
    with pytest.raises(RoutingError) as exc:
        route(RouteRequest("auto", 16, {"small": 60, "large": 10}), snap(), p)
    assert exc.value.status == 503 and exc.value.code == "tier_unavailable"


def test_snapshot_from_config(fleet):
    s = FleetSnapshot.from_config(fleet, {"small": 2})
    assert s.get("small").ready_replicas == 2 and s.get("large").ready_replicas == 0
    assert s.get("large").tier_rank > s.get("small").tier_rank
    assert s.get("missing") is None
