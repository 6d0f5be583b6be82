"""Per-tenant load tests end to end against the fake server playing Petit's tenants (subprocesses, like test_live)."""

from __future__ import annotations

import csv
import os

import pytest

from tests.unit.loadtests.test_live import _cli, _report

KEYS = {"alpha": "sk-test-alpha-0123456789", "beta": "sk-test-beta-0123456789", "gamma": "sk-test-gamma-0123456789"}
TENANTS = [f"--tenant={n}:{k}{mode}" for (n, k), mode in zip(KEYS.items(), ["", ":downgrade", ":reject"], strict=True)]
PRICES = (
    "models:\n  fake-small: {input_per_1m_usd: 0, output_per_1m_usd: 1, tier: small}\n"
    "  fake-large: {input_per_1m_usd: 0, output_per_1m_usd: 2, tier: large}\n"
)
SCENARIO = """name: tenants
pricing: {prices: prices.yaml}
duration_s: 3
warmup_s: 0.5
max_tokens: 4
fail_fast_s: 0
shape: {kind: constant, users: 5}
tenants:
  - {name: alpha, api_key_env: T_KEY_ALPHA, share: 2}
  - {name: beta, api_key_env: T_KEY_BETA, share: 2}
  - {name: gamma, api_key_env: T_KEY_GAMMA, share: 1}
"""
SLA = """slas:
  all: {min_requests_per_s: 1}   # gamma's refusals are instant: its user asks again at once
tenants:
  alpha:
    ttft_ms: {p95: 1000}
    max_error_rate: 0
    downgrade_share: {max: 0}
  beta:
    max_error_rate: 0
    downgrade_share: {min: 1}
    quality: {min_tier_share: {tier: small, share: 1}}
"""


def _env(**keys: str) -> dict[str, str]:
    return {**os.environ, **{f"T_KEY_{k.upper()}": v for k, v in keys.items()}}


@pytest.mark.parametrize("fake", [["--petit", *TENANTS]], indirect=True)
def test_two_tenants_and_a_refused_one_get_their_own_lines(fake, tmp_path):
    (tmp_path / "prices.yaml").write_text(PRICES)
    res = _cli(tmp_path, fake, SCENARIO, SLA, env=_env(**KEYS))
    assert res.returncode == 0, res.stdout + res.stderr
    doc = _report(tmp_path)
    rows = {r["tenant"]: r for r in doc["summary"]["tenants"]}
    assert set(rows) == {"alpha", "beta", "gamma"}
    assert rows["alpha"]["downgrade_share"] == 0 and set(rows["alpha"]["models"]) == {"fake-small", "fake-large"}
    assert rows["beta"]["downgrade_share"] == 1 and set(rows["beta"]["models"]) == {"fake-small"}
    assert rows["beta"]["downgrade_reasons"] == {"budget:day": rows["beta"]["ok"]} and rows["beta"]["ok"] > 5
    assert rows["gamma"]["ok"] == 0 and set(rows["gamma"]["errors_by_type"]) == {"http_429"}
    assert rows["alpha"]["cost_usd"] > 0 and rows["alpha"]["ttft_p95_ms"] is not None
    # users: 2 alpha, 2 beta, 1 gamma: each user's requests carry its tenant
    counts = {n: sum(1 for s in doc["samples"] if s["tenant"] == n) for n in KEYS}
    assert counts["gamma"] > 0 and min(counts["alpha"], counts["beta"]) > 0
    scopes = {v["scope"] for v in doc["verdict"]}
    assert {"tenant:alpha", "tenant:beta"} <= scopes and doc["passed"]
    assert "tenant beta: requests" in res.stdout and "downgraded 100.00%" in res.stdout
    with open(tmp_path / "rep" / "samples.csv") as f:
        first = next(csv.DictReader(f))
    assert first["tenant"] in KEYS and "downgrade" in first
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "<h2 id='tenants'>Tenants</h2>" in html and "budget:day" in html
    for path in (tmp_path / "rep").iterdir():  # keys never reach the report, the samples or the provenance
        text = path.read_text()
        assert not any(k in text for k in KEYS.values()), path.name
    assert not any(k in res.stdout + res.stderr for k in KEYS.values())


def test_a_missing_key_variable_is_bad_input(tmp_path):
    (tmp_path / "prices.yaml").write_text(PRICES)
    res = _cli(tmp_path, "http://127.0.0.1:9", SCENARIO, SLA, env=_env(alpha=KEYS["alpha"]))
    assert res.returncode == 2
    assert "set T_KEY_BETA (tenant beta), T_KEY_GAMMA (tenant gamma)" in res.stderr
    assert KEYS["alpha"] not in res.stderr


def test_an_sla_tenant_the_scenario_does_not_send_is_bad_input(tmp_path):
    (tmp_path / "prices.yaml").write_text(PRICES)
    res = _cli(tmp_path, "http://127.0.0.1:9", SCENARIO, SLA + "  delta: {max_error_rate: 0}\n", env=_env(**KEYS))
    assert res.returncode == 2 and "tenants ['delta'] are not in the scenario's tenants" in res.stderr


@pytest.mark.parametrize("fake", [["--petit", *TENANTS]], indirect=True)
def test_a_wrong_key_stops_at_the_reachability_check(fake, tmp_path):
    (tmp_path / "prices.yaml").write_text(PRICES)
    res = _cli(tmp_path, fake, SCENARIO, SLA, env=_env(**{**KEYS, "alpha": "sk-wrong"}))
    assert res.returncode == 3, res.stdout + res.stderr
    assert "answered HTTP 401" in _report(tmp_path)["run"]["problem"]
