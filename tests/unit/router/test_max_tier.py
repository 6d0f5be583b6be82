"""The max_tier constraint: parsed from the body or a header, lowered by a tenant's cap, enforced by a filter."""

from __future__ import annotations

import pytest

from serving.router.constraints import ConstraintError, parse_constraints, with_max_tier
from serving.router.filters import MAX_TIER, FilterContext, run_filters
from serving.router.pipeline import candidates, tier_ranks
from serving.router.policies import CheapestFitPolicy, route
from serving.router.state import RoutingState
from serving.router.types import RequestConstraints, RoutingError
from tests.unit.router.helpers import fleet, req


def test_parsed_from_body_and_header():
    assert parse_constraints({"petit": {"max_tier": "Small"}}).max_tier == "small"
    assert parse_constraints(None, {"X-Petit-Max-Tier": "medium"}).max_tier == "medium"
    with pytest.raises(ConstraintError) as err:
        parse_constraints({"petit": {"max_tier": "tiny"}})
    assert err.value.param == "petit.max_tier"


@pytest.mark.parametrize(
    ("mine", "cap", "want"),
    [(None, None, None), (None, "small", "small"), ("large", "small", "small"), ("small", "large", "small")],
)
def test_a_cap_only_lowers(mine, cap, want):
    assert with_max_tier(RequestConstraints(max_tier=mine), cap).max_tier == want


@pytest.mark.parametrize(("cap", "kept"), [(None, ["small", "medium", "large"]), ("medium", ["small", "medium"]),
                                           ("small", ["small"])])  # fmt: skip
def test_filter_keeps_tiers_at_or_below(cap, kept):
    r, f = req(max_tier=cap), fleet(ready_medium=1)
    out, _ = run_filters(candidates(r, f), FilterContext(r, RoutingState(), tier_ranks(f)), (MAX_TIER,))
    assert [c.model.id for c in out] == kept


def test_routing_under_a_cap():
    policy = CheapestFitPolicy()
    long = {"small": 60, "large": 10}  # does not fit small's 64-token window with 16 max_tokens
    assert route(req(tokens=long), fleet(), policy).model == "large"
    with pytest.raises(RoutingError) as err:
        route(req(tokens=long, max_tier="small"), fleet(), policy)
    assert err.value.status == 400 and err.value.param == "petit.max_tier"
    assert route(req(max_tier="small", min_tier=None), fleet(small_price=9), policy).model == "small"
