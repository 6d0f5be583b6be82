"""Cascade decisions on logprobs recorded from SmolLM2-135M-Instruct (greedy; fixtures/smollm2_logprobs.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.router.cascade import (
    CascadeThresholds,
    Confidence,
    cascade_cost,
    confidence,
    decide_on_logprobs,
    judge,
    stream_logprobs,
    token_logprobs,
)
from serving.router.types import ModelSnapshot

RECORDED = json.loads((Path(__file__).parent / "fixtures" / "smollm2_logprobs.json").read_text("utf-8"))


def test_confidence_from_recorded_chat_logprobs():
    c = confidence(token_logprobs(RECORDED["capital_of_france"]["logprobs"]))
    assert c.n_tokens == len(RECORDED["capital_of_france"]["logprobs"]["content"])
    assert c.mean_logprob == pytest.approx(-0.16, abs=0.01) and c.min_logprob == pytest.approx(-0.852, abs=0.001)


@pytest.mark.parametrize(
    "name, thresholds, escalate, reason_part",
    [
        ("capital_of_france", CascadeThresholds(), False, "confident"),
        ("multiply_large", CascadeThresholds(), True, "mean_logprob"),  # the small model's product is wrong
        ("obscure_fact", CascadeThresholds(), False, "confident"),  # a fluent hallucination passes the defaults...
        (
            "obscure_fact",
            CascadeThresholds(min_token_logprob=-3.0),
            True,
            "min_logprob",
        ),  # ...a stricter min catches it
    ],
)
def test_decide_on_recorded(name, thresholds, escalate, reason_part):
    e = decide_on_logprobs(RECORDED[name]["logprobs"], thresholds)
    assert e.escalate is escalate and reason_part in e.reason


def test_buffered_prefix_decision():
    lp = RECORDED["multiply_large"]["logprobs"]
    assert decide_on_logprobs(lp, first_n=3).confidence.n_tokens == 3


def test_completions_shape_and_stream_chunks():
    assert token_logprobs({"tokens": ["a", "b"], "token_logprobs": [None, -0.5]}) == [-0.5]
    chunks = [
        {"choices": [{"delta": {"content": "Pa"}, "logprobs": {"content": [{"token": "Pa", "logprob": -0.1}]}}]},
        {
            "choices": [
                {"delta": {"content": "ris"}, "logprobs": {"content": [{"token": "ris", "logprob": -float("inf")}]}}
            ]
        },
        {"choices": [], "usage": {"completion_tokens": 2}},
    ]
    assert stream_logprobs(chunks) == [-0.1, -1e4]


@pytest.mark.parametrize(
    "bad",
    [{"foo": 1}, {"content": [{"logprob": 0.5}]}, {"token_logprobs": ["x"]}, {"content": [{"logprob": float("nan")}]}],
)
def test_bad_logprobs(bad):
    with pytest.raises(ValueError):
        token_logprobs(bad)


def test_no_tokens_escalates():
    assert token_logprobs(None) == [] and confidence([]) is None
    assert judge(None).escalate and judge(None).reason == "no_tokens"
    assert not judge(Confidence(-0.1, -0.2, 3)).escalate


def test_thresholds_validated():
    with pytest.raises(ValueError):
        CascadeThresholds(min_mean_logprob=0.5)
    with pytest.raises(ValueError):
        CascadeThresholds(buffer_tokens=0)


def test_cascade_cost_adds_both_calls():
    small = ModelSnapshot("small", "small", 0, 64, 0.05, 250, 0.1, 1)
    large = ModelSnapshot("large", "large", 2, 256, 0.20, 80, 0.1, 1)
    one = cascade_cost(small, {"prompt_tokens": 10, "completion_tokens": 16})
    assert not one.escalated and one.total_usd == pytest.approx(small.cost(10, 16))
    two = cascade_cost(
        small, {"prompt_tokens": 10, "completion_tokens": 16}, large, {"prompt_tokens": 12, "completion_tokens": 30}
    )
    assert two.escalated and two.total_usd == pytest.approx(small.cost(10, 16) + large.cost(12, 30))
    with pytest.raises(ValueError):
        cascade_cost(small, {}, large)
