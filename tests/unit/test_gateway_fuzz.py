"""Property-based fuzzing of the OpenAI routes from the schema the app publishes (schemathesis).

The schema is the app's own `/openapi.json` (request bodies from `serving.gateway.protocol`);
schemathesis generates valid and invalid requests from it and sends them to the ASGI app in
process, over the fake engine. Every answer must be below 500, and every 4xx JSON with an
OpenAI-shaped `error`.
"""

from __future__ import annotations

import hypothesis.strategies as st
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from serving.fleet.schema import TelemetryConfig, parse_fleet
from serving.gateway.gateway import Gateway
from serving.gateway.protocol import ErrorResponse
from serving.gateway.routes import build_fastapi
from serving.gateway.telemetry import RequestTelemetry
from serving.replica.engines.fake import FakeEngine
from serving.router.build import Router
from serving.router.policies import CheapestFitPolicy
from tests.unit.conftest import fleet_dict
from tests.unit.fakes import FakeModelClient

OPERATIONS = ["/v1/chat/completions", "/v1/completions", "/v1/models", "/health"]
SERVED = ["small", "large", "auto"]
CONTEXT = 4096


def _gateway() -> Gateway:
    data = fleet_dict()
    for m in data["models"]:  # contexts that leave generated max_tokens values room to be served
        m["engine"]["max_model_len"] = CONTEXT
    fleet = parse_fleet(data, "test")
    client = FakeModelClient({m: FakeEngine(m, CONTEXT) for m in ("small", "large")})
    return Gateway(fleet, client, Router.of(CheapestFitPolicy()), RequestTelemetry(TelemetryConfig()))


GATEWAY = _gateway()  # schemathesis reads the schema from the app when this module is collected
APP = build_fastapi(GATEWAY)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP).include(path=OPERATIONS)
SCHEMA.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=100, deterministic=True
)


@SCHEMA.hook("flatmap_body")
def _served_models_too(context, body):
    """Random model names only ever meet a 404: send some generated bodies to served models."""
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        return st.sampled_from([body] + [{**body, "model": m} for m in SERVED])
    return st.just(body)


def test_the_published_schema_describes_the_request_bodies():
    paths = SCHEMA.raw_schema["paths"]
    for path, name in [("/v1/chat/completions", "ChatRequest"), ("/v1/completions", "CompletionRequest")]:
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{name}"}
        assert "413" in paths[path]["post"]["responses"]
    schemas = SCHEMA.raw_schema["components"]["schemas"]
    assert schemas["ChatRequest"]["required"] == ["model", "messages"]
    assert {"Message", "StreamOptions", "ErrorResponse"} <= set(schemas)


@SCHEMA.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck), print_blob=True)
def test_fuzzed_requests_never_get_a_5xx_and_errors_are_openai_shaped(case):
    response = case.call()
    where = f"{case.method} {case.path} {case.body!r}: {response.status_code} {response.text[:500]}"
    assert response.status_code < 500, where
    content_type = response.headers["content-type"][0]
    if response.status_code < 400:
        assert content_type.startswith(("application/json", "text/event-stream")), where
        return
    assert content_type.startswith("application/json"), where
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, where
    ErrorResponse.model_validate(body)


def test_the_fuzzing_reached_the_models():
    """Runs after the fuzz test (file order): some generated requests got past validation and routing."""
    kinds = {kind for _, kind, _ in GATEWAY.client.opened}
    assert kinds == {"chat", "completion"}, "no fuzzed request of some kind reached a model"
