"""The CLI end to end against the fake SSE server (subprocesses: Locust's gevent patching stays out of pytest).

Checks that the Locust user measures TTFT / ITL / TPOT within a few ms of the
fake server's known delays, that scarcity events reach the admin endpoint and
the report, and that bad targets, bad files and Ctrl-C give clear outcomes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from loadtests.metrics import percentile

ROOT = Path(__file__).resolve().parents[3]
TTFT, ITL, TOKENS = 0.080, 0.020, 6


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(
    tmp_path, target, scenario: str, sla: str = "slas: {all: {max_error_rate: 0.5}}\n", timeout=60, extra=(), **kw
):
    (tmp_path / "s.yaml").write_text(scenario)
    (tmp_path / "sla.yaml").write_text(sla)
    cmd = [
        sys.executable,
        "-m",
        "loadtests.cli",
        "--target",
        target,
        "--scenario",
        str(tmp_path / "s.yaml"),
        "--sla",
        str(tmp_path / "sla.yaml"),
        "--report",
        str(tmp_path / "rep"),
        "--quiet",
        *extra,
    ]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kw)


def _report(tmp_path) -> dict:
    return json.loads((tmp_path / "rep" / "report.json").read_text())


@pytest.mark.parametrize("fake", [["--petit"]], indirect=True)
def test_timing_matches_known_delays_and_scarcity_is_marked(fake, tmp_path):
    (tmp_path / "prices.yaml").write_text(
        "models:\n  fake-small: {input_per_1m_usd: 0, output_per_1m_usd: 1, tier: small}\n"
        "  fake-large: {input_per_1m_usd: 0, output_per_1m_usd: 2, tier: large}\n"
    )
    scenario = f"""name: timing
pricing: {{prices: prices.yaml}}
duration_s: 3
warmup_s: 0.5
max_tokens: {TOKENS}
shape: {{kind: constant, users: 4}}
scarcity: {{admin_url: "{fake}", events: [{{at_s: 0.5, gpus: 2}}, {{at_s: 1.5, gpus: 6}}]}}
"""
    sla = "slas:\n  auto:\n    ttft_ms: {p50: 200}\n    max_error_rate: 0\n    quality: {min_tier_share: {tier: small, share: 0}}\n"
    res = _cli(tmp_path, fake, scenario, sla)
    assert res.returncode == 0, res.stdout + res.stderr
    doc = _report(tmp_path)
    ok = [s for s in doc["samples"] if s["ok"]]
    assert len(ok) > 20 and doc["passed"]
    ttft = [s["ttft_s"] for s in ok]
    itl = [x for s in ok for x in s["itl_s"]]
    tpot = [s["tpot_s"] for s in ok]
    assert TTFT <= percentile(ttft, 50) <= TTFT + 0.010
    assert abs(percentile(itl, 50) - ITL) <= 0.004 and all(len(s["itl_s"]) == TOKENS - 1 for s in ok)
    assert abs(percentile(tpot, 50) - ITL) <= 0.003
    assert {s["model"] for s in ok} == {"fake-small", "fake-large"} and {s["cost_basis"] for s in ok} == {"usage"}
    assert {s["route_reason"] for s in ok} == {"cheapest_fit"}
    tier_line = next(v for v in doc["verdict"] if v["name"] == "share answered by small+")
    assert tier_line["measured"] == 1.0 and tier_line["passed"]
    assert [m["gpus"] for m in doc["run"]["scarcity"]] == [2, 6] and all(m["ok"] for m in doc["run"]["scarcity"])
    with urllib.request.urlopen(f"{fake}/admin/budget") as r:
        assert [b["gpus"] for b in json.load(r)["history"]] == [2, 6]
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "SLA verdict: PASS" in html and "budget 2" not in html.split("<img")[0] and "data:image/png;base64" in html
    assert "http" not in html.split("<style>")[1].split("</style>")[0]  # no CDN, self-contained
    assert (tmp_path / "rep" / "samples.csv").read_text().count("\n") == len(doc["samples"]) + 1


def test_trace_replay_sends_at_arrival_times(fake, tmp_path):
    trace = tmp_path / "t.jsonl"
    trace.write_text("\n".join(f'{{"timestamp": {i * 400}, "input_length": 50, "output_length": 3}}' for i in range(6)))
    scenario = f"""name: replay
duration_s: 2
shape: {{kind: trace, users: 8}}
trace: {{format: mooncake, file: "{trace}", time_scale: 0.5}}
"""
    res = _cli(tmp_path, fake, scenario)
    assert res.returncode == 0, res.stdout + res.stderr
    starts = sorted(s["start_s"] for s in _report(tmp_path)["samples"])
    assert len(starts) == 6
    assert all(abs(got - i * 0.2) < 0.05 for i, got in enumerate(starts)), starts


@pytest.mark.parametrize("fake", [["--fail-status", "503"]], indirect=True)
def test_target_returning_errors_fails_with_clear_summary(fake, tmp_path):
    res = _cli(tmp_path, fake, "duration_s: 2\nshape: {kind: constant, users: 2}\n")
    assert res.returncode == 1
    assert "errors: http_503" in res.stdout and "injected failure" in res.stdout and "Traceback" not in res.stderr
    assert "FAIL  [all] error rate: 100.00%" in res.stdout
    assert "http_503" in (tmp_path / "rep" / "report.html").read_text()


def test_unreachable_target(tmp_path):
    res = _cli(tmp_path, f"http://127.0.0.1:{_port()}", "duration_s: 2\nshape: {kind: constant, users: 1}\n")
    assert res.returncode == 3 and "cannot reach" in res.stdout and "Traceback" not in res.stdout + res.stderr
    assert "Run failed: cannot reach" in (tmp_path / "rep" / "report.html").read_text()


def test_bad_scenario_exit_2_names_file_and_line(tmp_path):
    res = _cli(tmp_path, "http://127.0.0.1:1", "duration_s: 2\nshape: {kind: constant, users: 0}\n")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{tmp_path / 's.yaml'}:2: shape.constant.users: Input should be greater than or equal to 1" in res.stderr


def test_ctrl_c_writes_partial_report(fake, tmp_path):
    (tmp_path / "s.yaml").write_text("duration_s: 60\nshape: {kind: constant, users: 2}\n")
    (tmp_path / "sla.yaml").write_text("slas: {all: {max_error_rate: 0.5}}\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadtests.cli",
            "--target",
            fake,
            "--scenario",
            str(tmp_path / "s.yaml"),
            "--sla",
            str(tmp_path / "sla.yaml"),
            "--report",
            str(tmp_path / "rep"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stdout.readline()  # the run has started (imports can take seconds on a loaded machine)
    time.sleep(2.0)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    out = first + out
    assert proc.returncode == 130, out + err
    assert "(PARTIAL)" in out and "Traceback" not in err
    doc = _report(tmp_path)
    assert doc["run"]["partial"] and doc["samples"] and not doc["passed"]
    assert "PARTIAL RUN" in (tmp_path / "rep" / "report.html").read_text()
