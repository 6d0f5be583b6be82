"""The polled timeline (budget, replicas, plan) and quality under load: parsing, series, report sections. Pure."""

from __future__ import annotations

import json
import math

import pytest

from loadtests.metrics import RequestSample
from loadtests.pricing import PriceTable
from loadtests.prompts import Prompt
from loadtests.quality import quality_rows, quality_series
from loadtests.report import render_html
from loadtests.report_sections import fleet_html, quality_html
from loadtests.results import RunResult, summary
from loadtests.scenario import ScenarioSpec
from loadtests.timeline import (
    TimelinePoint,
    budget_series,
    poll_errors,
    polled,
    read_budget,
    read_metrics,
    read_models,
    read_plan,
    step_series,
)
from loadtests.workload import Workload

PLAN = {
    "plan": {
        "at": 1.0,
        "reason": "budget",
        "gpus_budget": None,
        "targets": {"small": {"replicas": 1, "previous": 1, "reason": "x"}, "large": {"replicas": 0, "reason": "y"}},
        "routing": {"shares": {"small": 1.0}, "strong_share": 0.0, "constrained": True, "reason": "budget"},
    }
}
MODELS = {
    "object": "list",
    "data": [
        {"id": "small", "petit": {"tier": "small", "ready_replicas": 1}},
        {"id": "large", "petit": {"tier": "large", "ready_replicas": 0}},
        {"id": "auto", "petit": {"alias": True}},
    ],
}


def test_polled_answers_fill_a_point():
    p = TimelinePoint(2.0)
    read_models(p, json.dumps(MODELS))
    read_budget(p, '{"gpus": 1, "unit": "cpus", "changed_at": 5}')
    read_plan(p, json.dumps(PLAN))
    assert p.ready == {"small": 1, "large": 0} and (p.budget, p.budget_unit) == (1.0, "cpus")
    assert p.shares == {"small": 1.0} and p.strong_share == 0.0 and p.constrained is True
    assert p.target_replicas == {"small": 1, "large": 0} and p.plan_reason == "budget" and polled([p])
    unlimited = TimelinePoint(0.0)
    read_budget(unlimited, '{"gpus": null, "unit": "cpus"}')
    read_plan(unlimited, '{"plan": null}')  # before the first decision: nothing to record
    assert unlimited.budget is None and unlimited.budget_unlimited and not unlimited.shares


def test_prometheus_gauges_fill_tier_shares_and_the_budget_the_admin_did_not_give():
    text = (
        '# TYPE petit_route_share gauge\npetit_route_share{tier="small"} 0.25\npetit_route_share{tier="large"} 0.75\n'
        "# TYPE petit_autoscaler_gpu_supply gauge\npetit_autoscaler_gpu_supply 4.0\n"
        '# TYPE petit_autoscaler_target_replicas gauge\npetit_autoscaler_target_replicas{model="m"} 2.0\n'
    )
    p = TimelinePoint(0.0)
    read_metrics(p, text)
    assert p.tier_shares == {"small": 0.25, "large": 0.75} and p.budget == 4.0 and p.target_replicas == {"m": 2}
    q = TimelinePoint(0.0, budget=1.0)
    read_metrics(q, text)
    assert q.budget == 1.0  # the admin's number wins


@pytest.mark.parametrize(
    "reader, body, message",
    [
        (read_models, "<html>", "/v1/models: not JSON"),
        (read_models, '{"object": "list"}', "no `data` list"),
        (read_budget, "[1]", 'expected {"gpus": N}'),
        (read_budget, '{"gpus": "two"}', "gpus is 'two'"),
        (read_plan, '{"routing": {}}', 'expected {"plan": ...}'),
    ],
)
def test_answers_of_another_shape_raise_with_the_source(reader, body, message):
    with pytest.raises(ValueError, match=message):
        reader(TimelinePoint(0.0), body)


def test_series_leave_gaps_where_a_poll_did_not_answer():
    pts = [
        TimelinePoint(0.0, budget_unlimited=True, ready={"a": 1, "b": 1}),
        TimelinePoint(2.0, errors=["models: ConnectionRefusedError: refused", "budget: HTTP 500"]),
        TimelinePoint(4.0, budget=1.0, ready={"a": 1}, errors=["budget: x"]),
    ]
    ts, ys = step_series(pts, "ready")["b"]
    assert ts == [0.0, 2.0, 4.0] and ys[0] == 1.0 and math.isnan(ys[1]) and math.isnan(ys[2])
    _, budget, unlimited = budget_series(pts)
    assert math.isnan(budget[0]) and budget[2] == 1.0 and unlimited[0] == 1.0 and math.isnan(unlimited[2])
    assert poll_errors(pts) == {"models": 1, "budget": 2}
    assert not polled([TimelinePoint(0.0, errors=["models: refused"])])


def test_fleet_section_lists_changes_and_failures_or_says_nothing_was_polled():
    pts = [
        TimelinePoint(0.0, budget=2.0, ready={"a": 1, "b": 1}, shares={"a": 0.5, "b": 0.5}, strong_share=0.5),
        TimelinePoint(2.0, budget=2.0, ready={"a": 1, "b": 1}, shares={"a": 0.5, "b": 0.5}, strong_share=0.5),
        TimelinePoint(4.0, budget=1.0, ready={"a": 1, "b": 0}, shares={"a": 1.0}, strong_share=0.0, constrained=True),
        TimelinePoint(6.0, errors=["plan: TimeoutError: no answer within 2 s"]),
    ]
    out = fleet_html(pts)
    assert "4 polls; a row per change" in out and out.count("<tr>") == 4  # header + 3 changes (2.0 s repeats 0.0 s)
    assert "a 100.00%" in out and "yes" in out and "plan: failed 1 of 4 polls" in out
    assert "Nothing was polled" in fleet_html([]) and "Nothing was polled" in fleet_html(pts[3:])


def _answer(t: float, requested: str, model: str, correct: bool, cost: float = 0.001) -> RequestSample:
    s = RequestSample(t, requested, ok=True, ttft_s=0.05, e2e_s=0.1, output_tokens=10, model=model, cost_usd=cost)
    s.itl_s = [0.01, 0.01]
    s.correct = correct
    return s


def test_quality_rows_per_requested_model_and_auto_split_by_answering_model():
    samples = [
        _answer(1, "auto", "small", True, 0.001),
        _answer(2, "auto", "small", False, 0.001),
        _answer(3, "auto", "large", True, 0.004),
        _answer(4, "large", "large", True, 0.004),
        RequestSample(5, "large", ok=False, error_type="http_500"),
        RequestSample(6, "auto", ok=True, model="small"),  # unlabelled: not graded
    ]
    rows = {q.scope: q for q in quality_rows(samples)}
    assert list(rows) == ["auto", "auto → large", "auto → small", "large"]
    assert rows["auto"].accuracy == pytest.approx(2 / 3) and rows["auto"].usd_per_1k_answers == pytest.approx(2.0)
    assert rows["auto → small"].accuracy == 0.5 and rows["large"].labelled == 1
    assert rows["large"].usd_per_1m_output_tokens == pytest.approx(400.0)
    series = quality_series(samples, elapsed_s=4.0, width_s=2.0)
    assert series["auto"]["t"] == [0.0, 2.0, 4.0] and series["auto"]["accuracy"] == [1.0, 0.5, None]
    assert summary(samples, 4.0)["quality"][0]["scope"] == "auto"
    assert quality_rows([RequestSample(1, "auto", ok=True)]) == [] and "No labelled answers" in quality_html([])


def test_a_model_list_asks_every_model_the_same_prompts_in_turn():
    spec = ScenarioSpec(duration_s=10, model=["auto", "a", "b"], shape={"kind": "constant", "users": 1})
    prompts = [Prompt("p0", "0"), Prompt("p1", "1")]
    wl = Workload(spec, prompts, PriceTable())
    jobs = [wl.next_job() for _ in range(6)]
    assert [j.model for j in jobs] == ["auto", "a", "b"] * 2
    assert [j.prompt.text for j in jobs] == ["p0"] * 3 + ["p1"] * 3
    assert wl.body(jobs[1])["model"] == "a" and wl.new_sample(0.0, jobs[2]).requested_model == "b"
    with pytest.raises(ValueError, match="distinct names"):
        ScenarioSpec(duration_s=10, model=["a", "a"], shape={"kind": "constant", "users": 1})


def test_report_has_the_fleet_and_quality_sections_with_charts_or_their_empty_states():
    r = RunResult("s", "http://x", "auto", "now", 6.0, 0.0, elapsed_s=6.0, users=[(0.0, 2)])
    r.samples = [_answer(t / 2, "auto", "small" if 2 <= t / 2 < 4 else "large", t % 3 == 0) for t in range(12)]
    r.timeline = [
        TimelinePoint(float(t), budget=1.0 if 2 <= t < 4 else 2.0, ready={"small": 1, "large": int(not 2 <= t < 4)})
        for t in range(6)
    ]
    html = render_html(r, [], summary(r.measured(), r.window_s))
    fleet = html.split("id='fleet'")[1].split("<h2")[0]
    quality = html.split("id='quality'")[1].split("<h2")[0]
    assert "alt='scarcity and routing over time'" in fleet and "6 polls" in fleet
    assert "alt='accuracy and cost'" in quality and "auto → small" in quality
    r.timeline, r.samples = (
        [],
        [RequestSample(0.1, "auto", ok=True, ttft_s=0.05, e2e_s=0.1, output_tokens=5, itl_s=[0.01])],
    )
    html = render_html(r, [], summary(r.measured(), r.window_s))
    assert "Nothing was polled" in html and "No labelled answers" in html and "<img alt='accuracy" not in html
