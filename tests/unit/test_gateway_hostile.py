"""The hostile-input table (tests/hostile_cases.py) against the ingress over the fake engine.

The same table runs on the real stack in tests/integration/test_stack_hostile.py.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi.testclient import TestClient

from serving.fleet.schema import LimitsConfig, TelemetryConfig, parse_fleet
from serving.gateway.gateway import Gateway
from serving.gateway.routes import build_fastapi
from serving.gateway.telemetry import RequestTelemetry
from serving.replica.engines.fake import FakeEngine
from serving.router.build import Router
from serving.router.policies import CheapestFitPolicy
from tests.hostile_cases import Case, check_answer, hostile_cases
from tests.unit.conftest import fleet_dict
from tests.unit.fakes import FakeModelClient

CASES = hostile_cases("small", LimitsConfig())  # the default limits, as on the stack
NORMAL = {"model": "small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


def _gateway() -> Gateway:
    fleet = parse_fleet(fleet_dict(), "test")  # no server.limits: the defaults, like CASES
    client = FakeModelClient({"small": FakeEngine("small", 64), "large": FakeEngine("large", 256)})
    return Gateway(fleet, client, Router.of(CheapestFitPolicy()), RequestTelemetry(TelemetryConfig()))


@pytest.fixture(scope="module")
def gw() -> Gateway:
    return _gateway()


@pytest.fixture(scope="module")
def http(gw):
    with TestClient(build_fastapi(gw), raise_server_exceptions=False) as c:
        yield c


def test_the_table_is_big_and_its_names_unique():
    assert len(CASES) >= 30 and len({c.name for c in CASES}) == len(CASES)
    assert all(not (s >= 500) for c in CASES for s in c.status)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_gets_a_json_answer_never_a_5xx(gw, http, case: Case):
    before = len(gw.client.opened)
    r = http.request(case.method, case.path, content=case.body, headers=list(case.headers))
    check_answer(r, case, case.ok_statuses)
    if case.engine_checks:  # forwarded untouched, for the engine to judge
        sent = json.loads(case.body or b"{}")
        (_, _, forwarded), *_ = gw.client.opened[before:]
        assert all(forwarded[k] == v for k, v in sent.items() if k != "stream_options"), forwarded
    elif r.status_code >= 400:
        assert len(gw.client.opened) == before, "a refused request never reaches a model"


def test_healthy_and_no_5xx_counted_after_the_whole_table(http):
    assert http.get("/health").status_code == 200
    r = http.post("/v1/chat/completions", json=NORMAL)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "word0 word1 word2"
    counted = [line for line in http.get("/metrics").text.splitlines() if line.startswith("petit_requests_total{")]
    assert counted and not [line for line in counted if 'status="5' in line], counted


def _asgi_post(headers: list[tuple[bytes, bytes]]) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions", "query_string": b"", "root_path": "",
        "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip


async def test_a_stalled_upload_the_client_abandons_is_a_499_not_an_internal_error():
    """Content-Length promises more than arrives, then the client hangs up: was logged and counted as a 500."""
    gw = _gateway()
    messages = [
        {"type": "http.request", "body": b'{"model": "small", "messages": [', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # nothing more ever comes
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json"), (b"content-length", b"100000")]
    await asyncio.wait_for(build_fastapi(gw)(_asgi_post(headers), receive, send), 5)
    assert sent[0]["status"] == 499
    assert json.loads(sent[1]["body"])["error"]["code"] == "client_disconnected"
    metrics = gw.telemetry.metrics_text().decode()
    assert 'status="499"' in metrics and 'status="500"' not in metrics
    assert gw.client.opened == []
