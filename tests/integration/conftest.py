"""One real stack per test session: local Ray + Serve + both default models on vLLM CPU.

The fleet is deploy/fleet.local.yaml with a test port and a small queue on the
large model (so overload can be provoked). Tests talk to it over HTTP with the
official `openai` client and httpx, like users do.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest
import yaml

from serving.fleet.schema import parse_fleet

ROOT = Path(__file__).resolve().parents[2]
PORT = int(os.environ.get("PETIT_TEST_PORT", "8765"))
SMALL, LARGE = "smollm2-135m", "qwen2.5-coder-0.5b"
LARGE_MAX_ONGOING, LARGE_MAX_QUEUED = 4, 2


def stack_fleet_dict() -> dict:
    data = yaml.safe_load((ROOT / "deploy" / "fleet.local.yaml").read_text())
    data["server"]["port"] = PORT
    large = next(m for m in data["models"] if m["id"] == LARGE)
    large["max_ongoing_requests"], large["max_queued_requests"] = LARGE_MAX_ONGOING, LARGE_MAX_QUEUED
    # The stack tests route `auto` with cheapest_fit and the uncalibrated thresholds, whatever the
    # shipped default; the router tests pick the other policies per request (x-petit-policy).
    data["routing"]["default_policy"] = "cheapest_fit"
    data["routing"]["enabled_policies"] = ["learned", "cascade"]
    data["routing"].pop("initial_state", None)
    return data


def set_routing_state(**changes) -> dict:
    """Change the ingress's run-time routing state (as an operator would); returns the new state."""
    from ray import serve

    from serving.app import APP_NAME, INGRESS_NAME

    return (
        serve.get_deployment_handle(INGRESS_NAME, app_name=APP_NAME)
        .set_routing_state.remote(changes)
        .result(timeout_s=30)
    )


class _Tee(io.TextIOBase):
    def write(self, s: str) -> int:
        sys.__stderr__.write(s)
        return len(s)


@pytest.fixture(scope="session")
def stack():
    from serving.runner import LocalStack, prepare_fleet

    fleet = parse_fleet(stack_fleet_dict(), "test fleet")
    prepare_fleet(fleet, out=_Tee())
    s = LocalStack(fleet, out=_Tee())
    try:
        s.start()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def base_url(stack) -> str:
    return stack.url


@pytest.fixture
def client(base_url):
    from openai import OpenAI

    with OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


@pytest.fixture
def http(base_url):
    import httpx

    with httpx.Client(base_url=base_url, timeout=120) as c:
        yield c
