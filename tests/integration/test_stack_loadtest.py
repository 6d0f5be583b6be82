"""CI smoke test of `petit loadtest` (loadtests.cli) against the real local stack (< 2 minutes).

The CLI runs in a subprocess: Locust's gevent monkey patching must not reach
the pytest process that holds the Ray stack.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.metrics import percentile
from tests.integration.conftest import LARGE, SMALL

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = """name: ci-smoke
model: auto
duration_s: {duration}
warmup_s: 3
max_tokens: 16
extra_body: {{temperature: 0, ignore_eos: true}}
shape: {{kind: constant, users: 2}}
prompts: {{synthetic: {{input_tokens: 32}}}}
pricing: {{fleet: {fleet}}}
"""
LENIENT = """slas:
  auto:
    ttft_ms: {p95: 60000}
    itl_ms: {p95: 10000}
    e2e_ms: {p99: 120000}
    max_error_rate: 0.05
    min_requests_per_s: 0.01
    max_cost_per_1m_output_tokens_usd: 100
    quality: {min_tier_share: {tier: small, share: 1.0}}
"""


def _run(
    tmp_path: Path, base_url: str, name: str, sla: str, duration: float
) -> tuple[subprocess.CompletedProcess, Path]:
    scen, sla_file, rep = tmp_path / f"{name}.yaml", tmp_path / f"{name}-sla.yaml", tmp_path / name
    scen.write_text(SCENARIO.format(duration=duration, fleet=ROOT / "deploy" / "fleet.local.yaml"))
    sla_file.write_text(sla)
    cmd = [
        sys.executable,
        "-m",
        "loadtests.cli",
        "--target",
        base_url,
        "--scenario",
        str(scen),
        "--sla",
        str(sla_file),
        "--report",
        str(rep),
    ]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=90), rep


def test_loadtest_report_and_verdict(base_url, tmp_path):
    res, rep = _run(tmp_path, base_url, "lenient", LENIENT, duration=25)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (rep / "report.html").stat().st_size > 10_000 and (rep / "samples.csv").exists()
    doc = json.loads((rep / "report.json").read_text())
    assert doc["passed"] and all(v["passed"] for v in doc["verdict"])
    ok = [s for s in doc["samples"] if s["ok"] and not s["warmup"]]
    assert ok and {s["model"] for s in ok} <= {SMALL, LARGE}
    assert {s["cost_basis"] for s in ok} == {"usage"} and all(s["output_tokens"] == 16 for s in ok)
    assert all(s["route_reason"] for s in ok)
    # the verdict's numbers are exact percentiles of the raw samples after warm-up
    line = next(v for v in doc["verdict"] if v["name"] == "TTFT p95")
    assert line["measured"] == pytest.approx(percentile([s["ttft_s"] * 1000 for s in ok], 95))
    assert "SLA verdict: PASS" in (rep / "report.html").read_text()


def test_impossible_sla_exits_non_zero(base_url, tmp_path):
    strict = (ROOT / "loadtests" / "examples" / "sla-strict.yaml").read_text().replace("all:", "auto:")
    res, rep = _run(tmp_path, base_url, "strict", strict, duration=10)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAIL  [auto] TTFT p95" in res.stdout and "verdict: FAIL" in res.stdout
    doc = json.loads((rep / "report.json").read_text())
    assert not doc["passed"] and any(not v["passed"] for v in doc["verdict"])
