"""The live scarcity check: Petit's autoscaler on the real local fleet, budget lowered and raised at run time.

The autoscaler runs in this process (the Ray driver), as `petit run` runs it,
with its real adapters: load from the board's Serve/ingress reports, replica
targets through Serve's autoscaling-policy hook, routing through the board.
The budget counts CPU cores (deploy/fleet.local.yaml): 2 holds both models,
1 holds only the small one. Runs last (file order): it stops and restarts the
large model.
"""

from __future__ import annotations

import subprocess
import threading
import time

import httpx
import pytest
from ray import serve

from serving.app import APP_NAME, deployment_name
from tests.integration.conftest import LARGE, SMALL, set_routing_state

pytestmark = pytest.mark.stack
ADMIN_PORT = 9191


def _running(model: str) -> int:
    app = serve.status().applications[APP_NAME]
    return int(app.deployments[deployment_name(model)].replica_states.get("RUNNING", 0))


def _auto(http) -> httpx.Response:
    return http.post(
        "/v1/chat/completions",
        headers={"x-petit-policy": "learned"},
        json={
            "model": "auto",
            "messages": [{"role": "user", "content": "What is 3 + 4?"}],
            "max_tokens": 4,
            "temperature": 0,
        },
    )


def _wait(what: str, check, timeout_s: float, every_s: float = 0.5):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        value = check()
        if value:
            return time.monotonic() - t0
        time.sleep(every_s)
    raise AssertionError(f"{what}: not within {timeout_s:.0f}s")


def _engine_cores() -> int:
    out = subprocess.run(["pgrep", "-f", "EngineCore"], capture_output=True, text=True).stdout
    return len(out.split())


class Traffic:
    """`auto` requests in the background, one after the other; every status is kept."""

    def __init__(self, base_url: str) -> None:
        self.statuses: list[int] = []
        self.models: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(base_url,), daemon=True)

    def _run(self, base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=120) as http:
            while not self._stop.is_set():
                r = _auto(http)
                self.statuses.append(r.status_code)
                self.models.append(r.headers.get("x-petit-model", ""))
                time.sleep(0.3)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=150)


@pytest.fixture
def autoscaler(stack):
    set_routing_state(threshold=-1e9)  # the router alone would send every `auto` prompt to the strong tier
    svc = stack.start_autoscaler(ADMIN_PORT)
    try:
        yield svc
    finally:
        stack.stop_autoscaler()
        set_routing_state(threshold=None, strong_share=None, allowed_tiers=None, downgrade_share=0.0)


def test_budget_cut_moves_auto_to_small_and_stops_large_then_both_return(stack, http, autoscaler):
    period = stack.fleet.autoscaler.period_s
    admin = httpx.Client(base_url=autoscaler.admin_url, timeout=10)
    _wait(
        "a first applied plan",
        lambda: autoscaler.controller.last_plan is not None and autoscaler.controller.last_plan.applied,
        6 * period,
    )
    assert _auto(http).headers["x-petit-model"] == LARGE  # normal: the router's choice stands
    cores_before = _engine_cores()

    with Traffic(stack.url) as traffic:
        got = admin.post("/admin/budget", json={"gpus": 1}).json()
        assert (got["gpus"], got["unit"]) == (1.0, "cpus") and got["changed_by"]
        t_cut = time.time()
        trace = []

        def on_small() -> bool:
            r = _auto(http)
            trace.append((round(time.time() - t_cut, 1), r.headers.get("x-petit-model")))
            return r.headers["x-petit-model"] == SMALL

        _wait("auto traffic on the small model", on_small, period + 8)
        moved = trace[-1][0]  # when the answer came
        print(f"[scarcity] auto traffic on the small model {moved:.1f}s after the budget cut")
        # one control period, plus the ingress's 1 s board poll and the request itself (slack for busy CI)
        assert moved <= period + 4, (
            f"routing took {moved:.1f}s, more than one {period:g}s control period; "
            f"requests {trace}; plans:\n"
            + "\n".join(f"{p.at - t_cut:+.1f}s {p.summary()}" for p in autoscaler.controller.recent)
        )
        plan = autoscaler.controller.last_plan
        assert plan.reason.startswith("gpu_scarcity") and plan.targets[LARGE].replicas == 0, plan.summary()
        _wait("the large model's replicas at their minimum (0)", lambda: _running(LARGE) == 0, 90)
        print(f"[scarcity] large model at 0 replicas {time.time() - t_cut:.1f}s after the cut")
        _wait("the large engine process gone", lambda: _engine_cores() < cores_before, 60)
        assert _auto(http).headers["x-petit-model"] == SMALL
        health = http.get("/health")
        assert health.status_code == 200, health.text  # large may be stopped: min 0

        got = admin.post("/admin/budget", json={"gpus": 2}).json()
        assert (got["gpus"], got["unit"]) == (2.0, "cpus") and got["changed_by"]
        t_raise = time.time()
        _wait("the large model running again", lambda: _running(LARGE) == 1, 240, every_s=2)
        print(f"[scarcity] large model running {time.time() - t_raise:.1f}s after the budget came back")
        _wait(
            "auto traffic back on the large model",
            lambda: _auto(http).headers["x-petit-model"] == LARGE,
            3 * period + 5,
        )
        print(f"[scarcity] auto traffic back on the large model {time.time() - t_raise:.1f}s after it")
    assert traffic.statuses and set(traffic.statuses) == {200}, traffic.statuses
    assert SMALL in traffic.models and _running(SMALL) == 1
