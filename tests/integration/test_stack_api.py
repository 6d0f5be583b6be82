"""The OpenAI API through the real stack, with the official client."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import LARGE, SMALL

pytestmark = pytest.mark.stack
HELLO = [{"role": "user", "content": "Say hello in three words."}]


def test_models_lists_fleet_and_auto(client):
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert ids == [SMALL, LARGE, "auto"]
    small = models.data[0].model_extra["petit"]
    assert small["tier"] == "small" and small["price_per_replica_hour"] > 0 and small["ready_replicas"] >= 1


@pytest.mark.parametrize("model", [SMALL, LARGE])
def test_chat_completion(client, model):
    raw = client.chat.completions.with_raw_response.create(model=model, messages=HELLO, max_tokens=8, temperature=0)
    resp = raw.parse()
    assert resp.model == model
    assert resp.choices[0].message.content
    assert resp.usage.completion_tokens > 0 and resp.usage.prompt_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    assert raw.headers["x-petit-model"] == model
    assert raw.headers["x-petit-route-reason"] == "explicit"
    assert float(raw.headers["x-petit-cost-usd"]) > 0


def test_completion(client):
    resp = client.completions.create(model=SMALL, prompt="The capital of France is", max_tokens=5, temperature=0)
    assert resp.choices[0].text and resp.usage.completion_tokens == 5


def test_chat_stream_is_incremental_with_final_usage(client):
    stream = client.chat.completions.create(
        model=SMALL,
        messages=HELLO,
        max_tokens=24,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    arrivals, text, usage = [], [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter())
            text.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
            assert chunk.model_extra["petit"]["cost_usd"] > 0
    assert len(arrivals) >= 5, "tokens arrived in one piece, not streamed"
    assert arrivals[-1] - arrivals[0] > 0.02  # spread over time, not buffered
    assert usage is not None and usage.completion_tokens == 24


def test_completion_stream_ends_with_done(http):
    with http.stream(
        "POST", "/v1/completions", json={"model": LARGE, "prompt": "def add(a, b):", "max_tokens": 8, "stream": True}
    ) as r:
        assert r.status_code == 200 and r.headers["x-petit-model"] == LARGE
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert not any('"usage":{' in line for line in lines)  # not asked for: not sent


def test_auto_short_prompt_goes_to_the_small_model(client):
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO, max_tokens=8)
    assert raw.headers["x-petit-model"] == SMALL
    assert raw.parse().model == SMALL


def test_auto_long_prompt_goes_to_the_large_model(client):
    # ~2,500 tokens: beyond SmolLM2's 2,048-token window, inside Qwen's 4,096
    long = [{"role": "user", "content": "hello " * 2500 + "\nHow many times did I say hello?"}]
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=long, max_tokens=4)
    assert raw.headers["x-petit-model"] == LARGE
    assert f"skipped={SMALL}:context" in raw.headers["x-petit-route-reason"]
    assert raw.parse().usage.prompt_tokens > 2048
