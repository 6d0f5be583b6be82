"""Run a scenario with Locust in this process (headless) and return a RunResult.

Order: build the workload (may raise LoadTestInputError), check the target is
reachable, then start Locust's local runner with the scenario's shape while
this loop records users over time and fires scarcity events, and a poller
(polling.py) records budget, ready replicas and the routing plan. Ctrl-C (SIGINT)
ends the run early: the result is marked partial and still reported.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime, timezone

import gevent
from geventhttpclient import HTTPClient
from locust.env import Environment

from loadtests.locust_glue import OpenAIStreamUser, shape_class, split_target
from loadtests.polling import Poller
from loadtests.results import RunResult, ScarcityMark
from loadtests.scenario import ScarcitySpec, ScenarioSpec
from loadtests.shapes import due_events
from loadtests.workload import Workload


def check_target(target: str, timeout_s: float = 10.0, headers: dict[str, str] | None = None) -> str | None:
    """None if `GET {target}/v1/models` (with `headers`: a tenant's key) answers 2xx; else the problem in words."""
    base, prefix = split_target(target)
    try:
        http = HTTPClient.from_url(base, connection_timeout=timeout_s, network_timeout=timeout_s)
    except Exception as err:  # bad URL, DNS
        return f"cannot reach {target}: {type(err).__name__}: {err}"
    try:
        with gevent.Timeout(timeout_s, TimeoutError(f"no answer within {timeout_s:g} s")):
            resp = http.get(prefix + "/v1/models", headers=headers or {})
            status, body = resp.status_code, resp.read()[:200]
        if status >= 400:
            return f"{target}/v1/models answered HTTP {status}: {body.decode('utf-8', 'replace')}"
        return None
    except (OSError, TimeoutError, ConnectionError) as err:
        return f"cannot reach {target}: {type(err).__name__}: {err}"
    finally:
        http.close()


def post_budget(spec: ScarcitySpec, gpus: int, timeout_s: float = 10.0) -> tuple[bool, str]:
    """POST {admin_url}/admin/budget {"gpus": N}; (ok, detail)."""
    base, prefix = split_target(spec.admin_url)
    try:
        http = HTTPClient.from_url(base, connection_timeout=timeout_s, network_timeout=timeout_s)
        try:
            headers = {"content-type": "application/json"}
            if os.environ.get("PETIT_ADMIN_TOKEN"):
                headers["authorization"] = f"Bearer {os.environ['PETIT_ADMIN_TOKEN']}"
            resp = http.post(prefix + "/admin/budget", body=json.dumps({"gpus": gpus}).encode(), headers=headers)
            detail = resp.read()[:200].decode("utf-8", "replace")
            return resp.status_code < 400, f"HTTP {resp.status_code} {detail}"
        finally:
            http.close()
    except Exception as err:  # the run goes on; the report shows the failed event
        return False, f"{type(err).__name__}: {err}"


class Interrupt:
    def __init__(self) -> None:
        self.hit = False

    def __call__(self, *_: object) -> None:
        self.hit = True


def start_result(spec: ScenarioSpec, target: str, headers: dict[str, str] | None = None) -> RunResult:
    """A run's result record, with `problem` set when the target cannot be used (then nothing is sent).

    `headers`: what the reachability check sends (a tenant's key when the target wants one).
    """
    result = RunResult(
        spec.name,
        target,
        ", ".join(spec.requested_models),
        datetime.now(timezone.utc).isoformat(timespec="seconds"),
        spec.duration_s,
        spec.warmup_s,
    )
    result.problem = check_target(target, headers=headers)
    return result


def run(spec: ScenarioSpec, workload: Workload, target: str, out=None) -> RunResult:
    """Run the scenario against `target`; never raises for target problems (see result.problem)."""
    result = start_result(spec, target, workload.probe_headers())
    if result.problem is not None:
        return result
    env = Environment(user_classes=[OpenAIStreamUser], shape_class=shape_class(spec.build_shape())(), host=target)
    env.petit_workload = workload  # type: ignore[attr-defined]
    runner = env.create_local_runner()
    stop = Interrupt()
    handler = gevent.signal_handler(signal.SIGINT, stop)
    cpu0 = time.process_time()
    try:
        workload.t0 = time.perf_counter()
        runner.start_shape()
        poller = Poller(spec, target, workload.t0, result.timeline, workload.probe_headers())
        poller.start()
        watch(runner, spec, workload, result, stop, out)
        result.elapsed_s = time.perf_counter() - workload.t0
        poller.stop()
        drain(workload, spec.stop_grace_s, stop)
    finally:
        runner.quit()
        handler.cancel()
    finish_result(result, workload, spec, time.process_time() - cpu0)
    result.partial = result.partial or stop.hit
    return result


def drain(workload: Workload, grace_s: float, stop: Interrupt) -> None:
    """Stop sending; wait up to `grace_s` for the requests in flight (Ctrl-C cuts the wait)."""
    workload.stopping = True
    deadline = time.perf_counter() + grace_s
    while workload.in_flight and time.perf_counter() < deadline and not stop.hit:
        gevent.sleep(0.05)


def finish_result(result: RunResult, workload: Workload, spec: ScenarioSpec, cpu_s: float) -> None:
    """Unfinished requests recorded, samples, arrivals and the generator's CPU copied into the result.

    `cpu_s`: CPU seconds of the busiest load-generator process.
    """
    assert workload.t0 is not None
    workload.close_unfinished(time.perf_counter(), spec.stop_grace_s)
    result.samples, result.lateness_s = list(workload.samples), list(workload.lateness_s)
    if workload.schedule is not None:
        result.arrivals_s = [r.at_s for r in workload.schedule.requests if r.at_s < spec.duration_s]
    result.generator_cpu_cores = cpu_s / result.elapsed_s if result.elapsed_s > 0 else None


def fail_fast_problem(samples: list, fail_fast_s: float) -> str | None:
    """The abort reason when every finished request sent in the first `fail_fast_s` seconds failed; else None."""
    first = [s for s in samples if s.start_s < fail_fast_s]
    if not first or any(s.ok for s in first):
        return None
    kinds: dict[str, int] = {}
    for s in first:
        kinds[s.error_type or "unknown"] = kinds.get(s.error_type or "unknown", 0) + 1
    top = max(kinds, key=lambda k: kinds[k])
    example = next(s.error or "" for s in first if (s.error_type or "unknown") == top)
    return (
        f"aborted (fail fast): all {len(first):,} requests sent in the first {fail_fast_s:g} s failed "
        f"(mostly {top}: {example[:120]}); set fail_fast_s: 0 in the scenario (or --fail-fast-s 0) to keep going"
    )


def watch(runner, spec: ScenarioSpec, workload: Workload, result: RunResult, stop: Interrupt, out) -> None:
    times = [e.at_s for e in spec.scarcity.events] if spec.scarcity else []
    fired, last_print, shape, checked = 0, 0.0, spec.build_shape(), not spec.fail_fast_s
    while not stop.hit:
        t = time.perf_counter() - workload.t0
        if shape.tick(t) is None:
            break
        # decided once the first request sent in the window has finished (a slow server is not an error)
        if not checked and t >= spec.fail_fast_s and any(s.start_s < spec.fail_fast_s for s in workload.samples):
            checked = True
            result.problem = fail_fast_problem(list(workload.samples), spec.fail_fast_s)
            if result.problem is not None:
                break
        for i in due_events(times, t, fired):
            ev = spec.scarcity.events[i]  # type: ignore[union-attr]
            ok, detail = post_budget(spec.scarcity, ev.gpus)  # type: ignore[arg-type]
            result.scarcity.append(ScarcityMark(round(time.perf_counter() - workload.t0, 3), ev.gpus, ok, detail))
            fired = i + 1
        result.users.append((round(t, 2), runner.user_count))
        if out is not None and t - last_print >= 10:
            last_print = t
            done = len(workload.samples)
            bad = sum(1 for s in workload.samples if not s.ok)
            print(f"  t={t:6.1f}s  users={runner.user_count:4d}  requests={done}  errors={bad}", file=out, flush=True)
        gevent.sleep(0.25)
