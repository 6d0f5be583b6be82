from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from serving.fleet.schema import TelemetryConfig, parse_fleet
from serving.gateway.gateway import Gateway
from serving.gateway.routes import build_fastapi
from serving.gateway.telemetry import RequestTelemetry
from serving.gateway.upstream import first_item
from serving.replica.engines.fake import FakeEngine
from serving.router.build import Router
from serving.router.policies import CheapestFitPolicy
from tests.unit.conftest import fleet_dict
from tests.unit.fakes import FakeModelClient

MSG = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def setup(fleet):
    client = FakeModelClient({"small": FakeEngine("small", 64), "large": FakeEngine("large", 256)})
    spans = InMemorySpanExporter()
    telemetry = RequestTelemetry(TelemetryConfig(), exporter=spans)
    gw = Gateway(fleet, client, Router.of(CheapestFitPolicy()), telemetry)
    with TestClient(build_fastapi(gw)) as http:
        yield http, client, spans


def post(http, body, path="/v1/chat/completions", raw=None):
    return http.post(
        path, content=raw if raw is not None else json.dumps(body), headers={"content-type": "application/json"}
    )


def test_auto_short_prompt_goes_small_with_headers(setup):
    http, client, spans = setup
    r = post(http, {"model": "auto", "messages": MSG, "max_tokens": 4})
    assert r.status_code == 200
    assert r.headers["x-petit-model"] == "small"
    assert r.headers["x-petit-route-reason"] == "cheapest_fit"
    usage = r.json()["usage"]
    assert usage == {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}
    expected = 0.05 / 3600 * (4 + 0.1 * 7) / 250
    assert float(r.headers["x-petit-cost-usd"]) == pytest.approx(expected, rel=1e-6)
    assert client.opened[-1][2]["model"] == "small"
    (span,) = spans.get_finished_spans()
    assert span.attributes["petit.route.model"] == "small"
    assert span.attributes["gen_ai.usage.output_tokens"] == 4
    assert span.attributes["petit.cost_usd"] == pytest.approx(expected)
    assert "petit.prompt" not in span.attributes


def test_auto_long_prompt_goes_large(setup):
    http, _, _ = setup
    long = [{"role": "user", "content": "word " * 60}]
    r = post(http, {"model": "auto", "messages": long, "max_tokens": 4})
    assert r.headers["x-petit-model"] == "large"
    assert "skipped=small:context" in r.headers["x-petit-route-reason"]


def test_auto_fits_nowhere_is_400(setup):
    http, _, _ = setup
    r = post(http, {"model": "auto", "messages": [{"role": "user", "content": "w " * 300}]})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"


def test_completions_endpoint(setup):
    http, _, _ = setup
    r = post(http, {"model": "large", "prompt": "a b c", "max_tokens": 3}, path="/v1/completions")
    assert r.status_code == 200
    assert r.json()["choices"][0]["text"] == "word0 word1 word2"
    assert r.headers["x-petit-route-reason"] == "explicit"


def _events(text: str) -> list[str]:
    return [line[6:] for line in text.split("\n\n") if line.startswith("data: ")]


def test_stream_with_usage_chunk(setup):
    http, client, _ = setup
    r = post(
        http,
        {"model": "small", "messages": MSG, "max_tokens": 3, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-petit-cost-basis"] == "estimate"
    events = _events(r.text)
    assert events[-1] == "[DONE]"
    last = json.loads(events[-2])
    assert last["usage"]["completion_tokens"] == 3
    assert last["petit"]["model"] == "small" and last["petit"]["cost_usd"] > 0
    # the estimate in the header is an upper bound of the exact cost
    assert float(r.headers["x-petit-cost-usd"]) >= last["petit"]["cost_usd"] * 0.5


def test_stream_without_usage_request_drops_usage_chunk_but_counts_it(setup):
    http, client, spans = setup
    r = post(http, {"model": "small", "messages": MSG, "max_tokens": 3, "stream": True})
    events = _events(r.text)
    assert events[-1] == "[DONE]"
    assert all("usage" not in json.loads(e) for e in events[:-1])
    # the engine was asked for usage anyway, for cost accounting
    assert client.opened[-1][2]["stream_options"] == {"include_usage": True}
    assert spans.get_finished_spans()[-1].attributes["gen_ai.usage.output_tokens"] == 3


@pytest.mark.parametrize(
    "body, raw, status, param",
    [
        (None, b"{oops", 400, None),
        ({"model": "small"}, None, 400, "messages"),
        ({"model": "small", "messages": MSG, "n": 99}, None, 400, "n"),
        ({"model": "small", "messages": MSG, "max_tokens": 64}, None, 400, "max_tokens"),
        ({"model": "ghost", "messages": MSG}, None, 404, "model"),
    ],
)
def test_errors_are_openai_shaped(setup, body, raw, status, param):
    http, _, _ = setup
    r = post(http, body, raw=raw)
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["param"] == param


def test_unknown_model_lists_ids(setup):
    http, _, _ = setup
    msg = post(http, {"model": "ghost", "messages": MSG}).json()["error"]["message"]
    assert "small, large, auto" in msg


def test_engine_error_passes_through(setup):
    http, client, _ = setup
    client.engines["small"].max_model_len = 8  # the engine (not the ingress) refuses the prompt
    r = post(http, {"model": "small", "messages": MSG, "max_tokens": 5})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"


def test_overloaded_is_429_with_retry_after(setup):
    http, client, _ = setup
    client.overloaded.add("small")
    r = post(http, {"model": "small", "messages": MSG})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"]["type"] == "rate_limit_error"


def test_no_ready_replica_is_503_and_health_says_so(setup):
    http, client, _ = setup
    client.ready["large"] = 0
    assert post(http, {"model": "large", "messages": MSG}).status_code == 503
    h = http.get("/health")
    assert h.status_code == 503 and h.json()["models"]["large"]["ready_replicas"] == 0
    # auto still works on what is ready
    assert post(http, {"model": "auto", "messages": MSG, "max_tokens": 2}).headers["x-petit-model"] == "small"


def test_models_lists_fleet_and_auto(setup):
    http, _, _ = setup
    data = http.get("/v1/models").json()["data"]
    ids = [d["id"] for d in data]
    assert ids == ["small", "large", "auto"]
    assert data[0]["petit"]["tier"] == "small" and data[1]["petit"]["price_per_replica_hour"] == 0.2
    assert data[2]["petit"]["alias"] is True
    assert data[0]["petit"]["engine"] == "vllm"  # a fake benchmark engine says "fake" here


def test_models_label_a_fake_engine_as_such():
    fleet = parse_fleet(
        fleet_dict(
            models=[
                {
                    "id": "f",
                    "tier": "small",
                    "engine": {"kind": "fake"},
                    "price_per_replica_hour": 1,
                    "capacity_tokens_per_s": 9,
                }
            ]
        ),
        "fake",
    )
    gw = Gateway(fleet, FakeModelClient({"f": FakeEngine("f", 64)}), Router.of(CheapestFitPolicy()),
                 RequestTelemetry(TelemetryConfig()))  # fmt: skip
    with TestClient(build_fastapi(gw)) as http:
        assert http.get("/v1/models").json()["data"][0]["petit"]["engine"] == "fake"


def test_health_ready_and_metrics(setup):
    http, _, _ = setup
    assert http.get("/health").json()["status"] == "ready"
    post(http, {"model": "small", "messages": MSG, "max_tokens": 2})
    post(http, {"model": "ghost", "messages": MSG})
    text = http.get("/metrics").text
    assert 'petit_requests_total{model="small",route_reason="explicit",status="200"} 1.0' in text
    assert 'petit_requests_total{model="none",route_reason="none",status="404"} 1.0' in text
    assert 'petit_tokens_total{kind="completion",model="small"} 2.0' in text


def test_unknown_path_is_openai_shaped(setup):
    http, _, _ = setup
    r = http.get("/v1/nothing")
    assert r.status_code == 404 and "error" in r.json()


async def test_client_disconnect_cancels_upstream(fleet):
    engine = FakeEngine("small", 64, token_delay_s=0.01, default_tokens=50)
    client = FakeModelClient({"small": engine, "large": FakeEngine("large", 256)})
    spans = InMemorySpanExporter()
    gw = Gateway(fleet, client, Router.of(CheapestFitPolicy()), RequestTelemetry(TelemetryConfig(), exporter=spans))
    up = client.open("small", "chat", {"messages": MSG, "stream": True})
    assert (await first_item(up))["type"] == "stream"  # after the replica's "started"
    from serving.gateway.telemetry import RequestRecord

    rec = RequestRecord(kind="chat", requested_model="small", start_ns=0, stream=True, model="small")
    relay = gw._relay(up, rec, 0.0, want_usage=False)
    await relay.__anext__()
    await relay.__anext__()
    assert engine.running == 1
    await relay.aclose()  # what Starlette does when the client goes away
    import asyncio

    await asyncio.sleep(0.05)
    assert up.cancelled and engine.running == 0 and engine.aborted == 1
    assert rec.status == 499
    assert spans.get_finished_spans()[-1].attributes["error.type"] == "client_disconnected"


def test_prompts_recorded_only_when_enabled(fleet):
    client = FakeModelClient({"small": FakeEngine("small", 64), "large": FakeEngine("large", 256)})
    spans = InMemorySpanExporter()
    gw = Gateway(
        fleet,
        client,
        Router.of(CheapestFitPolicy()),
        RequestTelemetry(TelemetryConfig(record_prompts=True), exporter=spans),
    )
    with TestClient(build_fastapi(gw)) as http:
        post(http, {"model": "small", "messages": MSG, "max_tokens": 2})
    assert "hello there" in spans.get_finished_spans()[-1].attributes["petit.prompt"]


def test_tracing_off_by_default():
    t = RequestTelemetry(TelemetryConfig())
    assert not t.tracing
    t2 = RequestTelemetry(TelemetryConfig(otlp_endpoint="http://127.0.0.1:4318"))
    assert t2.tracing
    t2.shutdown()


def test_api_keys_when_configured(fleet):
    from serving.app import api_keys_from_env

    keys = api_keys_from_env({"PETIT_API_KEYS": " k1, k2 ,"})
    assert keys == frozenset({"k1", "k2"}) and api_keys_from_env({}) is None
    client = FakeModelClient({"small": FakeEngine("small", 64), "large": FakeEngine("large", 256)})
    gw = Gateway(fleet, client, Router.of(CheapestFitPolicy()), RequestTelemetry(TelemetryConfig()), api_keys=keys)
    with TestClient(build_fastapi(gw)) as http:
        body = {"model": "small", "messages": MSG, "max_tokens": 2}
        r = http.post("/v1/chat/completions", json=body)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert r.headers["www-authenticate"] == "Bearer"
        assert http.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert http.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer k2"}).status_code == 200
        assert http.get("/v1/models").status_code == 401
        assert http.get("/v1/models", headers={"Authorization": "Bearer k1"}).status_code == 200
        assert http.get("/health").status_code == 200  # probes need no key
