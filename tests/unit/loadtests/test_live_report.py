"""The report end to end against the fake server: accounting, fail-fast, --workers, --rerun, and the page in Chromium.

The Chromium test renders report.html in Debian's headless `chromium` and
reads what the browser drew; it skips (with the reason) when chromium is not
installed (`apt-get install -y chromium`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest

from loadtests.metrics import RequestSample
from loadtests.report import write_report
from loadtests.results import RunResult
from tests.unit.loadtests.test_live import ROOT, _cli, _port, _report

PRICES = (
    "models:\n  fake-small: {input_per_1m_usd: 0.1, output_per_1m_usd: 1, tier: small}\n"
    "  fake-large: {input_per_1m_usd: 0.2, output_per_1m_usd: 2, tier: large}\n"
)
SECTIONS = {"verdict", "summary", "accounting", "latency", "tokens", "tenants", "errors", "reproduce"}
CHARTS = {"distributions", "over-time", "throughput", "models", "cost"}
FLEET = {"fleet", "quality"}  # drawn from the polled timeline and the labelled answers
ANSWERS = ROOT / "loadtests" / "examples" / "labelled_prompts.jsonl"


def test_trace_run_accounts_for_every_request(fake, tmp_path):
    trace = tmp_path / "t.jsonl"
    trace.write_text(
        "\n".join(f'{{"timestamp": {i * 50}, "input_length": 20, "output_length": 100}}' for i in range(80))
    )
    # 4 users, requests of ~2.1 s: at the 2.5 s stop all 4 are mid-stream and outlast the 0.2 s grace
    scenario = f"""name: accounting
duration_s: 2.5
stop_grace_s: 0.2
shape: {{kind: trace, users: 4}}
trace: {{format: mooncake, file: "{trace}"}}
"""
    res = _cli(tmp_path, fake, scenario)
    assert res.returncode == 0, res.stdout + res.stderr
    acc = _report(tmp_path)["run"]["accounting"]
    assert acc["balanced"] and acc["planned"] == 50, res.stdout  # arrivals due within the 2.5 s run
    assert acc["sent"] + acc["not_sent"] == acc["planned"] and acc["not_sent"] > 0, res.stdout
    assert acc["sent"] == acc["completed"] + acc["failed"] + acc["unfinished"], res.stdout
    assert acc["completed"] >= 1 and acc["unfinished"] >= 1, res.stdout
    assert len(_report(tmp_path)["samples"]) == acc["sent"]
    assert "accounting (whole run): planned 50" in res.stdout
    # the pool of 4 is the limit; on a machine loaded by other work the fake server's TTFT may rise too
    assert "note: User pool too small" in res.stdout or "note: Server saturated" in res.stdout, res.stdout
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Every request accounted for" in html and "offered vs achieved rate" in html


@pytest.mark.parametrize("fake", [["--fail-status", "404"]], indirect=True)
def test_all_errors_fail_fast_with_exit_3(fake, tmp_path):
    t0 = time.monotonic()
    res = _cli(tmp_path, fake, "duration_s: 60\nfail_fast_s: 1\nshape: {kind: constant, users: 2}\n")
    assert res.returncode == 3, res.stdout + res.stderr
    assert time.monotonic() - t0 < 30 and "aborted (fail fast): all" in res.stdout
    doc = _report(tmp_path)
    assert doc["run"]["elapsed_s"] < 5 and not doc["passed"]
    assert "No successful request" in (tmp_path / "rep" / "report.html").read_text()


@pytest.fixture(scope="module")
def workers_run(tmp_path_factory):
    """One 2-worker run against the fake server (with Petit's headers and prices, labelled prompts, `auto`
    and the large model asked in turn, and a budget cut): (folder, CLI result)."""
    tmp = tmp_path_factory.mktemp("workers")
    (tmp / "prices.yaml").write_text(PRICES)
    port = _port()
    cmd = [sys.executable, "-m", "loadtests.fake_server", "--port", str(port), "--ttft", "0.05", "--itl", "0.01"]
    server = subprocess.Popen([*cmd, "--petit", "--answers", str(ANSWERS)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().startswith("READY"), "fake server did not start"
    trace = tmp / "t.jsonl"
    trace.write_text("\n".join(f'{{"timestamp": {i * 50}, "input_length": 20, "output_length": 6}}' for i in range(60)))
    scenario = f"""name: dist
model: [auto, fake-large]
duration_s: 2.5
warmup_s: 0.3
poll_s: 0.2
pricing: {{prices: prices.yaml}}
prompts: {{file: "{ANSWERS}"}}
shape: {{kind: trace, users: 8}}
trace: {{format: mooncake, file: "{trace}"}}
scarcity: {{admin_url: "http://127.0.0.1:{port}", events: [{{at_s: 0.8, gpus: 1}}, {{at_s: 1.6, gpus: 2}}]}}
"""
    try:
        res = _cli(tmp, f"http://127.0.0.1:{port}", scenario, timeout=90, extra=["--workers", "2"])
        yield tmp, res
    finally:
        server.terminate()
        server.wait(10)


def test_two_workers_merge_into_one_report_and_rerun_repeats_it(workers_run):
    tmp_path, res = workers_run
    assert res.returncode == 0, res.stdout + res.stderr
    doc = _report(tmp_path)
    run = doc["run"]
    # worker k of 2 sends trace arrivals i with i % 2 == k: 25 each of the 50 due within the run
    assert run["worker_samples"] == {"0": 25, "1": 25}, res.stdout
    assert len(doc["samples"]) == run["accounting"]["sent"] == run["accounting"]["planned"] == 50
    assert run["accounting"]["balanced"] and run["accounting"]["unfinished"] == 0 and doc["passed"]
    prov = run["provenance"]
    assert prov["command"][:2] == ["petit", "loadtest"] and "--workers" in prov["command"]
    assert {"python", "petit", "locust"} <= set(prov["versions"]) and len(prov["git"]["commit"]) == 40
    assert prov["scenario"]["shape"]["users"] == 8 and prov["scenario"]["duration_s"] == 2.5
    assert len(prov["file_sha256"]["scenario"]) == 64 and prov["inputs"]["workers"] == 2
    (tmp_path / "s.yaml").write_text("shape: {kind: constant, users: 99}\n")  # the rerun uses the recorded scenario
    again = subprocess.run(
        [sys.executable, "-m", "loadtests.cli", "--rerun", str(tmp_path / "rep" / "report.json"), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "scenario file" in again.stderr and "changed since the run" in again.stderr
    redo = json.loads((tmp_path / "rep-rerun" / "report.json").read_text())
    assert redo["run"]["provenance"]["scenario"] == prov["scenario"] and set(redo["run"]["worker_samples"]) == {
        "0",
        "1",
    }


CHECK_JS = """<script>
window.addEventListener('load', () => {
  const out = {sections: [...document.querySelectorAll('h2[id]')].map(h => h.id), imgs: [],
               empty: [...document.querySelectorAll('.empty')].map(e => e.offsetHeight)};
  for (const img of document.images) {
    const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width || 1, c.height || 1).data;
    let colour = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 80) colour++;
    }
    out.imgs.push({alt: img.alt, w: img.naturalWidth, shown: img.offsetWidth, colour: colour / (d.length / 4)});
  }
  const pre = document.createElement('pre'); pre.id = 'petit-check';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script>"""


def _render(html_path) -> dict:
    """What headless Chromium drew for a report: section ids, per image size and share of coloured pixels."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    page = html_path.with_name("check.html")
    page.write_text(html_path.read_text().replace("</body>", CHECK_JS + "</body>"))
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"]
    cmd += ["--virtual-time-budget=10000", "--dump-dom", page.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    return json.loads(dom.split('<pre id="petit-check">')[1].split("</pre>")[0].replace("&quot;", '"'))


@pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("chromium-browser")),
    reason="Debian's chromium is not installed (apt-get install -y chromium); the report is not rendered",
)
def test_report_renders_in_headless_chromium(workers_run, tmp_path):
    seen = _render(workers_run[0] / "rep" / "report.html")
    assert SECTIONS | CHARTS | FLEET <= set(seen["sections"])
    assert len(seen["empty"]) == 1 and seen["empty"][0] > 20  # only the tenants': this run has none
    # offered vs achieved + the five chart sections + scarcity and routing + quality (no errors: no error chart)
    assert len(seen["imgs"]) == 8
    assert {"scarcity and routing over time", "accuracy and cost"} <= {i["alt"] for i in seen["imgs"]}
    for img in seen["imgs"]:
        assert img["w"] > 500 and img["shown"] > 300, img
        assert img["colour"] > 0.002, f"chart looks empty: {img}"  # data drawn (axes + legends alone: <= 0.0015)

    empty = RunResult("empty", "http://x", "auto", "now", 2.0, 0.0, elapsed_s=2.0)
    empty.samples = [RequestSample(0.1 * i, "auto", ok=False, error_type="http_404", error="no") for i in range(5)]
    seen = _render(write_report(empty, [], tmp_path / "empty"))
    assert len(seen["empty"]) == 4 and min(seen["empty"]) > 20 and not CHARTS & set(seen["sections"])
    assert FLEET | {"tenants"} <= set(seen["sections"])  # empty states: nothing polled, no labels, no tenants
    assert [i["alt"] for i in seen["imgs"]] == ["offered vs achieved rate", "errors"]


def test_rerun_needs_a_report_with_provenance_and_runs_need_their_inputs(tmp_path, capsys):
    from loadtests.cli import main

    (tmp_path / "old.json").write_text('{"run": {}}')
    assert main(["--rerun", str(tmp_path / "old.json")]) == 2
    assert "cannot rerun: the report has no provenance" in capsys.readouterr().err
    assert main(["--scenario", "s.yaml"]) == 2
    assert "missing --target, --sla, --report (or give --rerun REPORT_JSON)" in capsys.readouterr().err
