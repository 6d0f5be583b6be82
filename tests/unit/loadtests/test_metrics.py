"""StreamTimer times like vLLM's benchmark client; percentiles are exact."""

from __future__ import annotations

import json

import pytest

from loadtests.metrics import RequestSample, StreamTimer, fill_from_body, percentile


def _data(obj) -> str:
    return f"data: {json.dumps(obj)}"


def _chunk(content):
    return {"model": "m", "choices": [{"index": 0, "delta": content}]}


def test_ttft_itl_tpot_from_server_usage_not_chunks():
    t = StreamTimer(RequestSample(0.0, "auto"), sent_at=10.0)
    t.line(_data(_chunk({"role": "assistant", "content": ""})), 10.01)  # role only: not a token
    t.line(_data(_chunk({"content": "a"})), 10.10)
    t.line(": ping", 10.11)
    t.line(_data(_chunk({"content": "bc"})), 10.12)
    t.line(_data(_chunk({"content": "d"})), 10.15)
    t.line(
        _data(
            {
                "choices": [],
                "usage": {"prompt_tokens": 7, "completion_tokens": 5},
                "petit": {"model": "large", "cost_usd": 0.002},
            }
        ),
        10.30,
    )
    t.line("data: [DONE]", 10.31)
    s = t.finish(10.32)
    assert s.ok and s.ttft_s == pytest.approx(0.10)
    assert s.itl_s == pytest.approx([0.02, 0.03])
    assert s.e2e_s == pytest.approx(0.15)  # ends at the last content chunk, not the usage chunk
    assert s.tpot_s == pytest.approx(0.05 / 4)  # 5 tokens per the server, 3 chunks
    assert (s.model, s.cost_usd, s.cost_basis, s.prompt_tokens) == ("large", 0.002, "usage", 7)
    assert t.text == "abcd"


def test_completions_stream_and_single_token():
    t = StreamTimer(RequestSample(0.0, "m"), sent_at=0.0)
    t.line(_data({"choices": [{"index": 0, "text": "x"}]}), 0.2)
    t.line(_data({"choices": [], "usage": {"completion_tokens": 1}}), 0.3)
    s = t.finish(0.3)
    assert s.ok and s.ttft_s == pytest.approx(0.2) and s.itl_s == [] and s.tpot_s is None


def test_mid_stream_error_and_empty_stream_fail():
    t = StreamTimer(RequestSample(0.0, "m"), sent_at=0.0)
    t.line(_data(_chunk({"content": "a"})), 0.1)
    t.line(_data({"error": {"message": "model overloaded mid-stream", "code": "overloaded"}}), 0.2)
    s = t.finish(0.2)
    assert not s.ok and s.error_type == "stream_overloaded"
    empty = StreamTimer(RequestSample(0.0, "m"), sent_at=0.0).finish(1.0)
    assert not empty.ok and empty.error_type == "no_content" and empty.e2e_s == 1.0


def test_non_streamed_body():
    s = RequestSample(0.0, "m")
    text = fill_from_body(
        s,
        {
            "model": "small",
            "choices": [{"message": {"content": "42"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        },
        1.0,
        1.5,
    )
    assert text == "42" and s.ok and s.ttft_s == s.e2e_s == 0.5 and s.output_tokens == 2


def test_percentile_is_exact_linear_interpolation():
    xs = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(xs, 50) == 3.0
    assert percentile(xs, 95) == pytest.approx(4.8)
    assert percentile(xs, 0) == 1.0 and percentile(xs, 100) == 5.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(xs, 101)
