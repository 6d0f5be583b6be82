import pytest

from serving.gateway.errors import error_body
from serving.gateway.protocol import ChatRequest, CompletionRequest, WireError, parse_body, validate

MSG = [{"role": "user", "content": "hi"}]


def test_parse_body_rejects_non_json_and_non_objects():
    with pytest.raises(WireError, match="not valid JSON"):
        parse_body(b"{nope")
    with pytest.raises(WireError, match="JSON object"):
        parse_body(b"[1, 2]")
    with pytest.raises(WireError):
        parse_body(b"\xff\xfe")
    assert parse_body(b'{"a": 1}') == {"a": 1}


def test_extra_openai_fields_are_kept():
    req = validate("chat", {"model": "m", "messages": MSG, "logit_bias": {"1": 2}, "seed": 3})
    assert isinstance(req, ChatRequest)
    assert req.model_extra == {"logit_bias": {"1": 2}, "seed": 3}


@pytest.mark.parametrize(
    "kind, body, param",
    [
        ("chat", {"model": "m"}, "messages"),
        ("chat", {"model": "m", "messages": []}, "messages"),
        ("chat", {"model": "m", "messages": "hi"}, "messages"),
        ("chat", {"model": "m", "messages": [{"content": "x"}]}, "messages"),
        ("chat", {"messages": MSG}, "model"),
        ("chat", {"model": "", "messages": MSG}, "model"),
        ("chat", {"model": "m", "messages": MSG, "n": 0}, "n"),
        ("chat", {"model": "m", "messages": MSG, "n": 17}, "n"),
        ("chat", {"model": "m", "messages": MSG, "max_tokens": 0}, "max_tokens"),
        ("chat", {"model": "m", "messages": MSG, "max_tokens": -1}, "max_tokens"),
        ("chat", {"model": "m", "messages": MSG, "max_tokens": 10**9}, "max_tokens"),
        ("chat", {"model": "m", "messages": MSG, "max_tokens": "5"}, "max_tokens"),
        ("chat", {"model": "m", "messages": MSG, "stream": "yes"}, "stream"),
        ("chat", {"model": "m", "messages": MSG, "max_completion_tokens": 0}, "max_completion_tokens"),
        ("completion", {"model": "m"}, "prompt"),
        ("completion", {"model": "m", "prompt": ""}, "prompt"),
        ("completion", {"model": "m", "prompt": {"a": 1}}, "prompt"),
    ],
)
def test_schema_violations_name_the_param(kind, body, param):
    with pytest.raises(WireError) as exc:
        validate(kind, body)
    assert exc.value.param == param


def test_output_budget_and_usage_flag():
    r = validate(
        "chat",
        {
            "model": "m",
            "messages": MSG,
            "max_tokens": 5,
            "max_completion_tokens": 7,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert r.output_budget == 7 and r.wants_usage_chunk
    c = validate("completion", {"model": "m", "prompt": [1, 2, 3]})
    assert isinstance(c, CompletionRequest) and c.output_budget is None and not c.wants_usage_chunk


def test_error_body_shape():
    body = error_body(429, "slow down", code="overloaded")
    assert body == {"error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "overloaded"}}
    assert error_body(500, "x")["error"]["type"] == "server_error"
    assert error_body(418, "x")["error"]["type"] == "invalid_request_error"
