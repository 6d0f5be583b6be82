from __future__ import annotations

import pytest

from serving.router.filters import CONTEXT, MAX_COST, MIN_TIER, READY, SERVES, STATE_TIERS, FilterContext, run_filters
from serving.router.pipeline import candidates, tier_ranks
from serving.router.scorers import ScoreContext, ScorerWeights, headroom, price, quality, score_all, tier_fit
from serving.router.state import RoutingState
from serving.router.types import DifficultyPrediction, RoutingError

from .helpers import fleet, req


def kept(f, request, fl, state=RoutingState()):
    ctx = FilterContext(request, state, tier_ranks(fl))
    return [c.model.id for c in candidates(request, fl) if f.keep(c, ctx)]


@pytest.mark.parametrize(
    "f, request_, fl, state, expected",
    [
        (READY, req(), fleet(ready_small=0), RoutingState(), ["large"]),
        (SERVES, req(tokens={"large": 10}), fleet(), RoutingState(), ["large"]),
        (CONTEXT, req(tokens={"small": 50, "large": 50}), fleet(), RoutingState(), ["large"]),
        (CONTEXT, req(tokens={"small": 48, "large": 50}), fleet(), RoutingState(), ["small", "large"]),
        (MIN_TIER, req(min_tier="medium"), fleet(), RoutingState(), ["large"]),
        (MIN_TIER, req(min_tier="small"), fleet(), RoutingState(), ["small", "large"]),
        (MAX_COST, req(max_cost_usd=1e-6), fleet(), RoutingState(), ["small"]),
        (MAX_COST, req(max_cost_usd=1e-9), fleet(), RoutingState(), []),
        (STATE_TIERS, req(), fleet(), RoutingState(allowed_tiers={"large"}), ["large"]),
        (STATE_TIERS, req(), fleet(), RoutingState(), ["small", "large"]),
    ],
)
def test_filter_table(f, request_, fl, state, expected):
    assert kept(f, request_, fl, state) == expected


@pytest.mark.parametrize(
    "request_, fl, state, status, param",
    [
        (req(), fleet(ready_small=0, ready_large=0), RoutingState(), 503, None),
        (req(tokens={"small": 500, "large": 500}), fleet(), RoutingState(), 400, "messages"),
        (req(tokens={}), fleet(), RoutingState(), 503, None),  # no count (timeout, overload): retry, not a false 400
        (
            req(tokens={"small": 60, "large": 10}, min_tier="medium", max_cost_usd=1e-9),
            fleet(),
            RoutingState(),
            400,
            "petit.max_cost_usd",
        ),
        (req(tokens={"small": 10, "large": 500}, min_tier="large"), fleet(), RoutingState(), 400, "petit.min_tier"),
        (req(tokens={"small": 10, "large": 500}), fleet(), RoutingState(allowed_tiers={"large"}), 503, None),
    ],
)
def test_run_filters_errors(request_, fl, state, status, param):
    with pytest.raises(RoutingError) as exc:
        run_filters(candidates(request_, fl), FilterContext(request_, state, tier_ranks(fl)))
    assert (exc.value.status, exc.value.param) == (status, param)


def test_run_filters_notes_skipped():
    r = req(tokens={"small": 60, "large": 10})
    cands, notes = run_filters(candidates(r, fleet()), FilterContext(r, RoutingState(), tier_ranks(fleet())))
    assert [c.model.id for c in cands] == ["large"] and notes == ["small:context"]


def sctx(want_strong=False, state=RoutingState(), pred=DifficultyPrediction(0.3, 0.6, 0.9), ready_medium=0):
    fl = fleet(ready_medium=ready_medium)
    return ScoreContext(tuple(candidates(req(), fl)), state, pred, want_strong)


def by_id(fn, ctx):
    return {c.model.id: round(fn(c, ctx), 6) for c in ctx.cands}


def test_scorers_in_unit_range_and_values():
    assert by_id(tier_fit, sctx(True, ready_medium=1)) == {"small": 0.0, "medium": 0.5, "large": 1.0}
    assert by_id(tier_fit, sctx(False)) == {"small": 1.0, "large": 0.0}
    assert by_id(quality, sctx(ready_medium=1)) == {"small": 0.6, "medium": 0.75, "large": 0.9}
    assert by_id(quality, sctx(pred=None)) == {"small": 0.5, "large": 0.5}
    assert by_id(price, sctx()) == {"small": 1.0, "large": 0.0}
    assert by_id(headroom, sctx()) == {"small": 0.5, "large": 0.5}


def test_score_all_weights():
    totals = score_all(sctx(True), ScorerWeights(tier_fit=1, quality=0, price=0, headroom=0))
    assert totals["large"][0] == 1.0 and set(totals["large"][1]) == {"tier_fit"}
    with pytest.raises(ValueError):
        ScorerWeights(price=-1)
