"""Scarcity and quality under load end to end: the fake server plays Petit and its autoscaler.

Budget 2 -> 1 -> 2: the fake's large model loses its replica and `auto` moves to
the small model, then back. The poller must see it (budget, ready replicas, plan,
Prometheus gauges), the answers must show it, a failing source must not stop the
run, and the labelled prompts must give accuracy per model and for `auto`.
"""

from __future__ import annotations

import pytest

from tests.unit.loadtests.test_live import ROOT, _cli, _port, _report

ANSWERS = str(ROOT / "loadtests" / "examples" / "labelled_prompts.jsonl")
PRICES = (
    "models:\n  fake-small: {input_per_1m_usd: 0, output_per_1m_usd: 1, tier: small}\n"
    "  fake-large: {input_per_1m_usd: 0, output_per_1m_usd: 4, tier: large}\n"
)


@pytest.mark.parametrize("fake", [["--petit", "--answers", ANSWERS]], indirect=True)
def test_budget_cut_moves_auto_both_ways_and_the_report_shows_it(fake, tmp_path):
    (tmp_path / "prices.yaml").write_text(PRICES)
    scenario = f"""name: scarcity
model: [auto, fake-large]
duration_s: 4.5
warmup_s: 0.2
max_tokens: 4
poll_s: 0.25
shape: {{kind: constant, users: 4}}
prompts: {{file: "{ANSWERS}"}}
pricing: {{prices: prices.yaml}}
scarcity:
  admin_url: "{fake}"
  metrics_url: "{fake}/metrics"
  events: [{{at_s: 0, gpus: 2}}, {{at_s: 1.5, gpus: 1}}, {{at_s: 3.0, gpus: 2}}]
"""
    res = _cli(tmp_path, fake, scenario, timeout=90)
    assert res.returncode == 0, res.stdout + res.stderr
    doc = _report(tmp_path)
    cut, back = (m["at_s"] for m in doc["run"]["scarcity"][1:])
    auto = [s for s in doc["samples"] if s["ok"] and s["requested_model"] == "auto"]
    before = {s["model"] for s in auto if s["start_s"] < cut - 0.1}
    during = {s["model"] for s in auto if cut + 0.05 < s["start_s"] < back - 0.05}
    after = {s["model"] for s in auto if s["start_s"] > back + 0.05}
    assert before == after == {"fake-small", "fake-large"} and during == {"fake-small"}, res.stdout

    timeline = doc["run"]["timeline"]
    assert len(timeline) >= 12 and timeline[-1]["t_s"] >= doc["run"]["elapsed_s"] - 0.3
    large = [(p["t_s"], p["ready"].get("fake-large")) for p in timeline]
    assert any(n == 0 and cut < t < back for t, n in large) and large[-1][1] == 1
    low = [p for p in timeline if p["budget"] == 1.0]
    assert low and all(p["shares"] == {"fake-small": 1.0} and p["constrained"] for p in low)
    assert all(p["tier_shares"] == {"small": 1.0} for p in low)  # the Prometheus gauges agree
    assert all(p["errors"] == [] for p in timeline)  # admin and /v1/models answered every poll

    rows = {q["scope"]: q for q in doc["summary"]["quality"]}
    assert rows["fake-large"]["accuracy"] == 1.0 and rows["auto → fake-large"]["accuracy"] == 1.0
    assert rows["auto → fake-small"]["accuracy"] < rows["auto"]["accuracy"] < 1.0
    assert rows["auto"]["usd_per_1k_answers"] < rows["fake-large"]["usd_per_1k_answers"]
    html = (tmp_path / "rep" / "report.html").read_text()
    fleet = html.split("id='fleet'")[1].split("<h2")[0]
    assert "alt='scarcity and routing over time'" in fleet and "fake-small 100.00%" in fleet


@pytest.mark.parametrize("fake", [["--petit"]], indirect=True)
def test_an_admin_that_never_answers_is_recorded_per_poll_and_the_run_goes_on(fake, tmp_path):
    closed = f"http://127.0.0.1:{_port()}"  # nothing listens there
    scenario = f"""name: no-admin
duration_s: 1.5
poll_s: 0.25
shape: {{kind: constant, users: 1}}
scarcity: {{admin_url: "{closed}", metrics_url: "{fake}/metrics", events: [{{at_s: 0.5, gpus: 1}}]}}
"""
    res = _cli(tmp_path, fake, scenario)
    assert res.returncode == 0, res.stdout + res.stderr
    doc = _report(tmp_path)
    assert not doc["run"]["scarcity"][0]["ok"] and len(doc["run"]["timeline"]) >= 4
    for p in doc["run"]["timeline"]:
        assert {e.split(":")[0] for e in p["errors"]} == {"budget", "plan"}, p
        assert p["ready"] == {"fake-small": 1, "fake-large": 1} and p["tier_shares"] == {"small": 0.5, "large": 0.5}
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "budget: failed" in html and "plan: failed" in html
