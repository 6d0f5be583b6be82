"""Hostile input answers with OpenAI-shaped errors and the right status, never a plain-text 500."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from serving.fleet.schema import TelemetryConfig, parse_fleet
from serving.gateway.gateway import Gateway
from serving.gateway.routes import build_fastapi
from serving.gateway.telemetry import RequestTelemetry
from serving.replica.engines.fake import FakeEngine
from serving.router.build import Router
from serving.router.policies import CheapestFitPolicy
from tests.unit.conftest import fleet_dict
from tests.unit.fakes import FakeModelClient

LIMITS = {"max_body_bytes": 4096, "max_json_depth": 8, "max_messages": 4, "max_content_parts": 2}


@pytest.fixture
def gw():
    fleet = parse_fleet(fleet_dict(server={"limits": LIMITS}), "test")
    client = FakeModelClient({"small": FakeEngine("small", 64), "large": FakeEngine("large", 256)})
    return Gateway(fleet, client, Router.of(CheapestFitPolicy()), RequestTelemetry(TelemetryConfig()))


def msg(content="hi"):
    return {"role": "user", "content": content}


@pytest.mark.parametrize(
    "raw, status, param",
    [
        ("[" * 3000, 400, None),  # deep nesting: was a plain-text 500
        ("[" * 50_000, 413, None),  # and a big body is refused before it is parsed
        (json.dumps({"model": "small", "messages": [msg()], "x": [[[[[[[[[1]]]]]]]]]}), 400, None),
        ('{"model": "small", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', 400, None),
        ('{"model": "small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": Infinity}', 400, None),
        (json.dumps({"model": "small", "messages": [msg()] * 5}), 400, "messages"),
        (json.dumps({"model": "small", "messages": [msg([{"type": "text", "text": "a"}] * 3)]}), 400, "messages.0.content"),
        (json.dumps({"model": "small", "messages": [msg("x" * 5000)]}), 413, None),
    ],
)  # fmt: skip
def test_bounded_input(gw, raw, status, param):
    with TestClient(build_fastapi(gw)) as http:
        r = http.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["error"]["param"] == param
        ok = http.post("/v1/chat/completions", json={"model": "small", "messages": [msg()], "max_tokens": 2})
        assert ok.status_code == 200  # healthy afterwards


def test_a_chunked_body_over_the_limit_is_413_without_a_content_length(gw):
    def chunks():
        yield b'{"model": "small", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}]}'

    with TestClient(build_fastapi(gw)) as http:
        r = http.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["type"] == "invalid_request_error"


def test_any_unexpected_error_is_an_openai_shaped_500_and_counted(gw):
    def boom(*a, **k):
        raise RuntimeError("bug")

    gw.client.ready_replicas = boom  # a bug in the gateway itself (a failing model is a 503: see failover)
    with TestClient(build_fastapi(gw)) as http:
        r = http.post("/v1/chat/completions", json={"model": "small", "messages": [msg()], "max_tokens": 2})
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
        assert "bug" not in r.text  # no internals leak
        metrics = http.get("/metrics").text
    assert 'status="500"' in metrics


class RunningUsageEngine(FakeEngine):
    """Streams like vLLM with stream_options.continuous_usage_stats: usage on every content chunk."""

    async def generate(self, kind, body):
        out = await super().generate(kind, body)
        if isinstance(out, dict):
            return out

        async def with_usage():
            n = 0
            async for line in out:
                if line.startswith("data: {") and '"content":" word' in line or '"content":"word' in line:
                    n += 1
                    chunk = json.loads(line[6:])
                    chunk["usage"] = {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n}
                    line = f"data: {json.dumps(chunk)}\n\n"
                yield line

        return with_usage()


def test_continuous_usage_stats_streams_keep_their_content():
    fleet = parse_fleet(fleet_dict(), "test")
    client = FakeModelClient({"small": RunningUsageEngine("small", 64), "large": FakeEngine("large", 256)})
    gw = Gateway(fleet, client, Router.of(CheapestFitPolicy()), RequestTelemetry(TelemetryConfig()))
    body = {"model": "small", "messages": [msg()], "max_tokens": 3, "stream": True,
            "stream_options": {"continuous_usage_stats": True}}  # fmt: skip
    with TestClient(build_fastapi(gw)) as http:
        r = http.post("/v1/chat/completions", json=body)
    events = [json.loads(x[6:]) for x in r.text.split("\n\n") if x.startswith("data: {")]
    text = "".join((e["choices"][0]["delta"].get("content") or "") for e in events if e.get("choices"))
    assert text == "word0 word1 word2" and r.text.rstrip().endswith("data: [DONE]")
    assert all("usage" in e for e in events if e.get("choices") and e["choices"][0]["delta"].get("content"))
