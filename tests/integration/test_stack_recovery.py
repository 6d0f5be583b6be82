"""Health, metrics, and what happens when a model loses its only replica (runs last)."""

from __future__ import annotations

import time

import pytest
import ray

from serving.app import deployment_name
from tests.integration.conftest import LARGE, SMALL

pytestmark = pytest.mark.stack


def test_health_ready(http):
    r = http.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ready"
    assert r.json()["models"][SMALL]["ready_replicas"] >= 1


def test_metrics_count_requests_tokens_and_cost(http):
    http.post(
        "/v1/chat/completions", json={"model": SMALL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    )
    text = http.get("/metrics").text
    assert f'petit_requests_total{{model="{SMALL}",route_reason="explicit",status="200"}}' in text
    assert f'petit_tokens_total{{kind="completion",model="{SMALL}"}}' in text
    assert f'petit_cost_usd_total{{model="{SMALL}"}}' in text
    assert "petit_ttft_seconds_bucket" in text


def _replica_actor(model_id: str):
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["name"].startswith("SERVE_REPLICA::") and deployment_name(model_id) in entry["name"]:
            return ray.get_actor(entry["name"], namespace=entry["namespace"])
    raise AssertionError(f"no replica actor for {model_id}")


def _wait(http, predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        r = http.get("/health")
        if predicate(r):
            return r
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {r.text}"
        time.sleep(0.5)


def test_lost_replica_gives_503_then_recovers(http):
    ray.kill(_replica_actor(SMALL), no_restart=True)
    r = _wait(http, lambda r: r.status_code == 503, 60, "/health to report the lost replica")
    assert r.json()["models"][SMALL]["ready_replicas"] == 0
    resp = http.post("/v1/chat/completions", json={"model": SMALL, "messages": [{"role": "user", "content": "x"}]})
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "no_ready_replica"
    # auto keeps working on what is left
    auto = http.post(
        "/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2}
    )
    assert auto.status_code == 200 and auto.headers["x-petit-model"] == LARGE
    # Serve replaces the replica; the fleet becomes ready again
    _wait(http, lambda r: r.status_code == 200, 300, "the replica to come back")
