"""Privacy of the front door: capped span attributes, keyed API description, path-free /health,
and vLLM told never to log requests."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from serving.fleet.schema import TelemetryConfig
from serving.gateway.errors import without_paths
from serving.gateway.gateway import Gateway
from serving.gateway.routes import build_fastapi
from serving.gateway.telemetry import MAX_ATTRIBUTE_CHARS, RequestTelemetry
from serving.replica.engines.fake import FakeEngine
from serving.router.build import Router
from serving.router.policies import LearnedPolicy
from tests.unit.fakes import FakeModelClient

HEADERS = {"content-type": "application/json"}


def _gateway(fleet, api_keys=None, record_prompts=False, policy=None):
    client = FakeModelClient({"small": FakeEngine("small", 64), "large": FakeEngine("large", 256)})
    spans = InMemorySpanExporter()
    telemetry = RequestTelemetry(TelemetryConfig(record_prompts=record_prompts), exporter=spans)
    router = Router.of(policy or LearnedPolicy(load=_no_artefact))
    return Gateway(fleet, client, router, telemetry, api_keys=api_keys), spans


def _no_artefact():
    from serving.router import artifact as artifacts

    raise artifacts.ArtifactError("[Errno 2] No such file or directory: '/opt/petit/router/difficulty.json'")


def test_span_attributes_are_capped(fleet):
    gw, spans = _gateway(fleet, record_prompts=True)
    long = "lorem ipsum " * 2000
    with TestClient(build_fastapi(gw)) as http:
        body = {"model": "large", "messages": [{"role": "user", "content": long}], "max_tokens": 2}
        http.post("/v1/chat/completions", content=json.dumps(body), headers=HEADERS)
    (span,) = spans.get_finished_spans()
    assert len(span.attributes["petit.prompt"]) == MAX_ATTRIBUTE_CHARS  # recorded (opt-in), but cut
    assert all(len(v) <= MAX_ATTRIBUTE_CHARS for v in span.attributes.values() if isinstance(v, str))


def test_docs_and_openapi_are_open_without_keys(fleet):
    gw, _ = _gateway(fleet)
    with TestClient(build_fastapi(gw)) as http:
        schema = http.get("/openapi.json")
        assert schema.status_code == 200 and "/v1/chat/completions" in schema.json()["paths"]
        assert "/docs" not in schema.json()["paths"]
        assert http.get("/docs").status_code == 200
        assert http.get("/redoc").status_code == 404  # FastAPI's own docs routes are never mounted


def test_docs_off_and_openapi_keyed_with_api_keys(fleet):
    gw, _ = _gateway(fleet, api_keys=frozenset({"k1"}))
    with TestClient(build_fastapi(gw)) as http:
        assert http.get("/docs").status_code == 404
        r = http.get("/openapi.json")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        r = http.get("/openapi.json", headers={"Authorization": "Bearer k1"})
        assert r.status_code == 200 and "/v1/models" in r.json()["paths"]


def test_health_shows_no_file_paths(fleet):
    gw, _ = _gateway(fleet)
    with TestClient(build_fastapi(gw)) as http:
        body = http.get("/health").json()
    reason = body["routing"]["degraded_reason"]
    assert reason.startswith("router artefact unusable") and "<path>" in reason
    assert "/opt/" not in json.dumps(body) and "difficulty.json" not in json.dumps(body)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cannot open '/var/lib/petit/a.json'", "cannot open '<path>'"),
        ("missing ~/.cache/petit/models", "missing <path>"),
        ("C:\\Users\\me\\router.json is bad", "<path> is bad"),
        ("version 1/2 is fine", "version 1/2 is fine"),
    ],
)
def test_without_paths(text, expected):
    assert without_paths(text) == expected


def test_vllm_request_logging_is_off_explicitly():
    from serving.replica.engines.vllm_engine import engine_cli_args

    args = engine_cli_args(_model(), "/models/m")
    assert "--no-enable-log-requests" in args and "--no-enable-log-outputs" in args
    assert "--enable-log-requests" not in args


def _model():
    from serving.fleet.schema import ModelConfig

    return ModelConfig.model_validate(
        {
            "id": "m",
            "tier": "small",
            "source": {"hf": "org/m"},
            "price_per_replica_hour": 1,
            "capacity_tokens_per_s": 10,
        }
    )
