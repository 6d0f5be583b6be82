"""The learned router and the cascade on the real fleet, steered through the run-time routing state."""

from __future__ import annotations

import re

import pytest

from tests.integration.conftest import LARGE, SMALL, set_routing_state

pytestmark = pytest.mark.stack


@pytest.fixture
def state():
    yield set_routing_state
    set_routing_state(
        threshold=None,
        strong_share=None,
        cascade_min_mean_logprob=-0.8,
        cascade_min_token_logprob=-5.0,
        allowed_tiers=None,
        downgrade_share=0.0,
    )


def _auto(http, content: str, policy: str, **extra):
    return http.post(
        "/v1/chat/completions",
        headers={"x-petit-policy": policy},
        json={
            "model": "auto",
            "messages": [{"role": "user", "content": content}],
            "max_tokens": 8,
            "temperature": 0,
            **extra,
        },
    )


def _score(resp) -> float:
    return float(re.search(r"score=([0-9.]+)", resp.headers["x-petit-route-reason"]).group(1))


EASY = "Say hello."
HARD = (  # a multiple-choice science question: scored far above a greeting by the shipped predictor
    "Which of the following is a consequence of the second law of thermodynamics?\nA. heat flows from cold to hot\n"
    "B. entropy of an isolated system never decreases\nC. energy is conserved\nD. work equals force times distance\n"
    "Answer:"
)


def test_learned_router_follows_the_threshold(http, state):
    a, b = _auto(http, EASY, "learned"), _auto(http, HARD, "learned")
    assert a.status_code == b.status_code == 200
    assert a.headers["x-petit-route-reason"].startswith("learned:")
    low, high = sorted([(_score(a), EASY), (_score(b), HARD)])
    assert low[0] < high[0]
    state(threshold=(low[0] + high[0]) / 2)
    assert _auto(http, low[1], "learned").headers["x-petit-model"] == SMALL
    assert _auto(http, high[1], "learned").headers["x-petit-model"] == LARGE
    state(threshold=None, strong_share=0.0)  # no strong calls at all: everything small
    assert _auto(http, high[1], "learned").headers["x-petit-model"] == SMALL


def test_cascade_escalates_on_low_confidence_and_commits_otherwise(http, state):
    state(cascade_min_mean_logprob=-0.0001)  # no real answer is that sure: escalate
    r = _auto(http, "Name a colour.", "cascade")
    assert r.status_code == 200
    assert r.headers["x-petit-cascade"] == "escalated" and r.headers["x-petit-model"] == LARGE
    assert r.json()["model"] == LARGE and r.json()["choices"][0].get("logprobs") is None
    state(cascade_min_mean_logprob=-50.0, cascade_min_token_logprob=-1000.0)  # anything goes: commit
    r = _auto(http, "Name a colour.", "cascade")
    assert r.headers["x-petit-cascade"] == "committed" and r.headers["x-petit-model"] == SMALL


def test_cascade_stream_escalates_from_the_start(http, state):
    state(cascade_min_mean_logprob=-0.0001)
    with http.stream(
        "POST",
        "/v1/chat/completions",
        headers={"x-petit-policy": "cascade"},
        json={
            "model": "auto",
            "messages": [{"role": "user", "content": "Count to five."}],
            "max_tokens": 24,
            "stream": True,
        },
    ) as r:
        assert r.headers["x-petit-cascade"] == "escalated" and r.headers["x-petit-model"] == LARGE
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert all(f'"model":"{LARGE}"' in line for line in lines[:-1])


def test_bad_routing_state_is_refused(state):
    with pytest.raises(Exception, match="strong_share"):
        state(strong_share=3.0)


def test_live_eval_command_on_a_few_questions(base_url, tmp_path):
    from serving.router.training import live

    out = tmp_path / "live.json"
    assert (
        live.main(["--target", base_url, "--limit", "6", "--concurrency", "3", "--max-tokens", "12", "--out", str(out)])
        == 0
    )
    import json

    results = json.loads(out.read_text())["results"]
    assert set(results) == {f"{SMALL} only", f"{LARGE} only", "auto (learned)", "auto (cascade)", "auto (cheapest_fit)"}
    assert results[f"{SMALL} only"]["answered_by"] == {SMALL: 1.0}
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["cost_usd"] > 0 for r in results.values())


def test_calibrate_on_the_real_fleet_with_a_few_questions(base_url, tmp_path):
    import json

    import yaml

    from serving.router.training import calibrate
    from tests.integration.conftest import stack_fleet_dict

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump(stack_fleet_dict()))
    out = tmp_path / "cal.json"
    args = ["--target", base_url, "--fleet", str(fleet), "--set", "arithmetic", "--limit", "16",
            "--concurrency", "3", "--out-json", str(out), "--out-png", str(tmp_path / "cal.png")]  # fmt: skip
    assert calibrate.main(args) == 0
    rep = json.loads(out.read_text())
    assert (rep["small"], rep["large"]) == (SMALL, LARGE) and rep["questions"] == 16
    assert rep["report_n"] + rep["calibration_n"] == 16
    recorded = rep["recorded"]
    assert all(r["small_confidence"] is not None and r["score"] is not None for r in recorded)  # real logprobs
    assert sum(r["large_correct"] for r in recorded) > sum(r["small_correct"] for r in recorded)  # arithmetic


def _wait_model(http, content, policy, model, timeout=10.0):
    import time

    deadline = time.monotonic() + timeout
    while True:
        got = _auto(http, content, policy).headers["x-petit-model"]
        if got == model:
            return
        assert time.monotonic() < deadline, f"auto still answered by {got}, expected {model}"
        time.sleep(0.5)


def test_autoscaler_routing_plan_reaches_the_ingress_through_the_board(http, state):
    from autoscaler.board_adapters import BoardRoutingActuator
    from autoscaler.snapshot import RoutingPlan

    actuator = BoardRoutingActuator()

    def plan(tiers, strong):
        return RoutingPlan(
            shares={},
            allowed_tiers=tiers,
            strong_share=strong,
            downgrade_share=0.0,
            expected_quality=0.0,
            reason="test",
            constrained=True,
        )

    actuator.push(plan(("large",), 1.0))  # e.g. the small tier is being drained: every policy obeys the plan
    _wait_model(http, EASY, "cheapest_fit", LARGE)
    _wait_model(http, EASY, "cascade", LARGE)
    actuator.push(plan(("small", "large"), 1.0))  # every auto request worth the strong model
    _wait_model(http, EASY, "cheapest_fit", SMALL)  # (learned answered LARGE under the last plan already)
    _wait_model(http, EASY, "learned", LARGE)
    actuator.push(plan(("small",), 0.0))  # scarcity: only the small tier may answer auto
    _wait_model(http, EASY, "learned", SMALL)
    named = http.post(
        "/v1/chat/completions", json={"model": LARGE, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert named.status_code == 200 and named.headers["x-petit-model"] == LARGE  # named models stay
    actuator.push(plan(("small", "large"), 1.0))  # GPUs back
    _wait_model(http, EASY, "learned", LARGE)
