"""A real node loss, live: a two-node Ray cluster on this machine, the large model's node killed under `auto` load.

The head node (1 CPU) holds the ingress and SmolLM2; a second `ray start`
node (1 CPU and the custom resource `node_b`) holds the only place Qwen may
run (`resources.custom: {node_b: 1}`). Petit joins the cluster
(`ray.address`) and its autoscaler reads the supply from Ray
(`gpu_source: ray`, counting CPUs). Under a steady stream of `auto` requests
that the router sends to Qwen, the second node is SIGKILLed (raylet, workers
and engine at once): every `auto` request must still be answered (failover,
then the plan), `auto` moves to SmolLM2 within one control period, and when a
node with `node_b` joins again Qwen is rescheduled there and `auto` returns.
Each step is timed and printed. Runs in its own pytest session
(`-m nodeloss`, after the shared stack's tests): it needs its own cluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from ray import serve  # imported before the stack sets Serve's lean env: this driver keeps its own loop

from serving.app import APP_NAME, INGRESS_NAME, deployment_name
from serving.fleet.schema import parse_fleet
from tests.integration.conftest import LARGE, SMALL, _Tee
from tests.integration.conftest import stack_fleet_dict as fleet_dict

pytestmark = pytest.mark.nodeloss
GCS_PORT = int(os.environ.get("PETIT_TEST_GCS_PORT", "6390"))
ADMIN_PORT = 9192
RAY = str(Path(sys.executable).parent / "ray")
# Fast failure detection on this test cluster: the head marks a silent node dead after ~3 s.
CLUSTER_ENV = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_AUTH_MODE": "disabled",  # a throwaway local cluster; the chart turns token auth on
}


def _env() -> dict[str, str]:
    from serving.runner import LEAN_SERVE_ENV

    return {**os.environ, **CLUSTER_ENV, **LEAN_SERVE_ENV, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}


def _start_node_b() -> subprocess.Popen:
    cmd = [RAY, "start", f"--address=127.0.0.1:{GCS_PORT}", "--num-cpus=1", '--resources={"node_b": 1}', "--block",
           "--object-store-memory=100000000", "--disable-usage-stats"]  # fmt: skip
    return subprocess.Popen(
        cmd, env=_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the node's raylet, its workers and their engines
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster():
    os.environ.update(CLUSTER_ENV)
    head = [RAY, "start", "--head", f"--port={GCS_PORT}", "--num-cpus=1", "--include-dashboard=false",
            "--object-store-memory=200000000", "--disable-usage-stats"]  # fmt: skip
    subprocess.run(head, env=_env(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes = {"b": _start_node_b()}
    try:
        yield nodes
    finally:
        _kill(nodes["b"])
        subprocess.run([RAY, "stop", "--force"], env=_env(), check=False, capture_output=True)


@pytest.fixture(scope="module")
def stack(cluster):
    from serving.runner import LocalStack, prepare_fleet

    data = fleet_dict()
    data["ray"]["address"] = f"127.0.0.1:{GCS_PORT}"
    large = next(m for m in data["models"] if m["id"] == LARGE)
    large.setdefault("resources", {})["custom"] = {"node_b": 1}
    data["autoscaler"]["gpu_source"] = {"kind": "ray"}
    data["routing"]["enabled_policies"] = ["learned"]
    fleet = parse_fleet(data, "node-loss fleet")
    prepare_fleet(fleet, out=_Tee())
    s = LocalStack(fleet, out=_Tee())
    try:
        s.start()
        yield s
    finally:
        s.stop()


def _auto(http: httpx.Client) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": "What is 3 + 4?"}], "max_tokens": 4,
            "temperature": 0}  # fmt: skip
    return http.post("/v1/chat/completions", headers={"x-petit-policy": "learned"}, json=body)


def _wait(what: str, check, timeout_s: float, every_s: float = 0.5) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if check():
            return time.monotonic() - t0
        time.sleep(every_s)
    raise AssertionError(f"{what}: not within {timeout_s:.0f}s")


class Traffic:
    """`auto` requests one after another in the background; (time, status, model, failover) kept."""

    def __init__(self, base_url: str) -> None:
        self.log: list[tuple[float, int, str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(base_url,), daemon=True)

    def _run(self, base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=120) as http:
            while not self._stop.is_set():
                r = _auto(http)
                h = r.headers
                self.log.append((time.time(), r.status_code, h.get("x-petit-model", ""), h.get("x-petit-failover", "")))
                time.sleep(0.2)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=150)


def test_losing_the_large_models_node_moves_auto_to_small_without_a_failed_request_and_back(cluster, stack):
    def running(model: str) -> int:
        app = serve.status().applications[APP_NAME]
        return int(app.deployments[deployment_name(model)].replica_states.get("RUNNING", 0))

    handle = serve.get_deployment_handle(INGRESS_NAME, app_name=APP_NAME)
    handle.set_routing_state.remote({"threshold": -1e9}).result(timeout_s=30)  # the router wants Qwen for all
    svc = stack.start_autoscaler(ADMIN_PORT)
    period = stack.fleet.autoscaler.period_s
    http = httpx.Client(base_url=stack.url, timeout=120)
    _wait("a first applied plan", lambda: svc.controller.last_plan is not None and svc.controller.last_plan.applied,
          6 * period)  # fmt: skip
    assert _auto(http).headers["x-petit-model"] == LARGE
    timings: dict[str, float] = {}
    with Traffic(stack.url) as traffic:
        time.sleep(2)
        t_kill = time.time()
        _kill(cluster["b"])
        timings["first_auto_on_small_s"] = _wait(
            "auto answered by the small model", lambda: _auto(http).headers["x-petit-model"] == SMALL, period + 10
        )
        timings["ray_sees_one_cpu_s"] = (
            time.time()
            - t_kill
            + _wait("Ray's supply down to 1 CPU", lambda: svc.controller.last_plan.summary()["gpus_budget"] == 1.0, 60)
        )
        timings["plan_scarce_s"] = (
            time.time()
            - t_kill
            + _wait(
                "a plan for the smaller supply",
                lambda: (
                    svc.controller.last_plan.reason.startswith("gpu_scarcity")
                    and svc.controller.last_plan.targets[LARGE].replicas == 0
                ),
                3 * period,
            )
        )
        for _ in range(10):  # steady on the small model now, without failover
            r = _auto(http)
            assert r.status_code == 200 and r.headers["x-petit-model"] == SMALL, r.text
        time.sleep(2)
        t_back = time.time()
        cluster["b"] = _start_node_b()
        timings["large_running_again_s"] = _wait("Qwen running again", lambda: running(LARGE) == 1, 300, every_s=2)
        timings["auto_back_on_large_s"] = (
            time.time()
            - t_back
            + _wait(
                "auto back on the large model", lambda: _auto(http).headers["x-petit-model"] == LARGE, 3 * period + 10
            )
        )
    stack.stop_autoscaler()
    statuses = [s for _, s, _, _ in traffic.log]
    during = [(round(t - t_kill, 1), s, m, f) for t, s, m, f in traffic.log if t >= t_kill - 1]
    print("[node-loss] " + json.dumps(timings))
    print(f"[node-loss] {len(statuses)} auto requests, failovers: {sum(1 for *_, f in traffic.log if f)}")
    assert statuses and set(statuses) == {200}, during
    # Within one control period of the loss being known: a request in flight on the dead node waits
    # until Ray declares the node dead (3-13 s measured here, its health checks), then fails over.
    assert timings["first_auto_on_small_s"] <= timings["ray_sees_one_cpu_s"] + period, timings
    assert {m for _, _, m, _ in traffic.log} == {SMALL, LARGE}
