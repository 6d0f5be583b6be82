"""`petit loadtest --workers N`: a Locust master in this process and N worker processes; one report.

The master runs the scenario's shape (Locust splits the users over the
workers), fires scarcity events, polls the fleet (polling.py) and checks fail-fast like the single-process
runner. Each worker (`python -m loadtests.worker`) builds the same workload,
numbers its requests k, k+T, k+2T... (trace replay: it sends arrivals i with
i % T == k) and streams its finished raw samples to the master every second
(Locust custom message `petit_samples`). At the end the master asks every
worker to stop (`petit_stop`): each waits up to the stop grace for its
requests in flight, records the rest as unfinished and sends its last batch
with `final`. The merged samples make one report; percentiles stay exact.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from typing import Any

import gevent
from locust.env import Environment

from loadtests.locust_glue import OpenAIStreamUser, shape_class
from loadtests.metrics import RequestSample
from loadtests.polling import Poller
from loadtests.results import RunResult
from loadtests.runner import Interrupt, finish_result, start_result, watch
from loadtests.scenario import ScenarioSpec
from loadtests.workload import Workload

CONNECT_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_command(args: Any, master_host: str, port: int, index: int, total: int) -> list[str]:
    """The command line of worker `index` of `total` (the same on another host, with its own paths)."""
    cmd = [sys.executable, "-m", "loadtests.worker", "--master-host", master_host, "--master-port", str(port)]
    cmd += ["--index", str(index), "--of", str(total), "--scenario", args.scenario]
    for opt in ("fleet", "prices", "trace_dir", "fail_fast_s"):
        value = getattr(args, opt, None)
        if value is not None:
            cmd += ["--" + opt.replace("_", "-"), str(value)]
    return cmd


class _Collector:
    """Master side: merges the workers' sample batches into the master workload."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.final: set[int] = set()
        self.per_worker: dict[int, int] = {}
        self.cpu_s = 0.0

    def __call__(self, environment: Any, msg: Any) -> None:
        data = msg.data
        self.workload.samples.extend(RequestSample(**d) for d in data["samples"])
        self.workload.lateness_s.extend(data["lateness_s"])
        k = int(data["index"])
        self.per_worker[k] = self.per_worker.get(k, 0) + len(data["samples"])
        if data.get("final"):
            self.final.add(int(data["index"]))
            self.cpu_s = max(self.cpu_s, float(data["cpu_s"]))  # the busiest process is the limit


def run(spec: ScenarioSpec, workload: Workload, args: Any, out=None) -> RunResult:
    """Run with `args.workers` local workers (plus `args.remote_workers` started elsewhere)."""
    target = args.target
    result = start_result(spec, target, workload.probe_headers())
    if result.problem is not None:
        return result
    local, remote = int(args.workers or 0), int(getattr(args, "remote_workers", 0) or 0)
    host, _, port_text = (getattr(args, "master_bind", None) or "127.0.0.1:0").rpartition(":")
    port = int(port_text) or free_port()
    env = Environment(user_classes=[OpenAIStreamUser], shape_class=shape_class(spec.build_shape())(), host=target)
    master = env.create_master_runner(host, port)
    collector = _Collector(workload)
    master.register_message("petit_samples", collector)
    connect = "127.0.0.1" if host in ("", "*", "0.0.0.0") else host
    procs = [subprocess.Popen(worker_command(args, connect, port, k, local + remote)) for k in range(local)]
    if remote and out is not None:
        print(
            f"waiting for {remote} remote workers: {' '.join(worker_command(args, 'HOST', port, local, local + remote))} ...",
            file=out,
        )
    stop = Interrupt()
    handler = gevent.signal_handler(signal.SIGINT, stop)
    cpu0 = time.process_time()
    try:
        if not _connected(master, local + remote, stop):
            result.problem = (
                f"only {master.worker_count} of {local + remote} workers connected in {CONNECT_TIMEOUT_S:g} s"
            )
            return result
        workload.t0 = time.perf_counter()
        master.start_shape()
        poller = Poller(spec, target, workload.t0, result.timeline, workload.probe_headers())
        poller.start()
        watch(master, spec, workload, result, stop, out)
        result.elapsed_s = time.perf_counter() - workload.t0
        poller.stop()
        master.send_message("petit_stop")
        _wait_final(collector, local + remote, spec.stop_grace_s, stop)
    finally:
        master.quit()
        handler.cancel()
        _reap(procs)
    finish_result(result, workload, spec, max(time.process_time() - cpu0, collector.cpu_s))
    result.partial = result.partial or stop.hit
    result.worker_samples = dict(sorted(collector.per_worker.items()))
    return result


def _wait_final(collector: _Collector, n: int, grace_s: float, stop: Interrupt) -> None:
    """Wait for every worker's last batch: the grace plus 10 s; after Ctrl-C at most 3 s more."""
    deadline = time.perf_counter() + grace_s + 10
    while len(collector.final) < n and time.perf_counter() < deadline:
        if stop.hit:
            deadline = min(deadline, time.perf_counter() + 3)
        gevent.sleep(0.05)


def _connected(master: Any, n: int, stop: Interrupt) -> bool:
    deadline = time.perf_counter() + CONNECT_TIMEOUT_S
    while master.worker_count < n and time.perf_counter() < deadline and not stop.hit:
        gevent.sleep(0.1)
    return bool(master.worker_count >= n)


def _reap(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
