"""Write the report: one self-contained HTML file, plus JSON and CSV of every raw sample.

DIR/report.html   verdict table first, then charts (embedded PNG, no network)
DIR/report.json   run header, summary, verdict lines, every sample
DIR/samples.csv   one row per request (ITL samples `;`-separated, in ms)
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path

from loadtests import charts
from loadtests.results import RunResult, errors_by_type, summary
from loadtests.sla import VerdictLine

CSV_FIELDS = [
    "start_s",
    "requested_model",
    "model",
    "route_reason",
    "ok",
    "status",
    "error_type",
    "error",
    "ttft_ms",
    "tpot_ms",
    "e2e_ms",
    "prompt_tokens",
    "output_tokens",
    "cost_usd",
    "cost_basis",
    "correct",
    "warmup",
    "itl_ms",
]

CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f8fafc;color:#0f172a}
main{max-width:1320px;margin:0 auto;padding:24px 32px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}
.meta{color:#475569;font-size:13px}
.banner{padding:12px 16px;border-radius:8px;margin:14px 0;font-weight:600;font-size:18px}
.pass{background:#dcfce7;color:#14532d;border:1px solid #86efac} .fail{background:#fee2e2;color:#7f1d1d;border:1px solid #fca5a5}
.warn{background:#fef3c7;color:#78350f;border:1px solid #fcd34d}
table{border-collapse:collapse;width:100%;background:#fff;font-size:14px}
th,td{padding:6px 10px;border-bottom:1px solid #e2e8f0;text-align:left} th{background:#f1f5f9}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.ok td.v{color:#15803d;font-weight:700} tr.bad td.v{color:#b91c1c;font-weight:700}
tr.ok{background:#f0fdf4} tr.bad{background:#fef2f2}
.cards{display:grid;grid-template-columns:repeat(6,1fr);gap:10px;margin:10px 0}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px}
.card b{display:block;font-size:20px} .card span{color:#64748b;font-size:12px}
img{max-width:100%;background:#fff;border:1px solid #e2e8f0;border-radius:8px;margin:6px 0}
code{background:#e2e8f0;padding:1px 4px;border-radius:3px}
"""


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def _verdict_table(lines: list[VerdictLine]) -> str:
    if not lines:
        return "<p>No SLA lines were evaluated.</p>"
    rows = []
    for v in lines:
        cls, mark = ("ok", "PASS") if v.passed else ("bad", "FAIL")
        rows.append(
            f"<tr class='{cls}'><td class='v'>{mark}</td><td>{html.escape(v.scope)}</td>"
            f"<td>{html.escape(v.name)}</td><td class='num'>{_fmt(v.measured)} {v.unit}</td>"
            f"<td class='num'>{v.op} {v.limit:g} {v.unit}</td><td>{html.escape(v.note)}</td></tr>"
        )
    return (
        "<table><tr><th></th><th>scope</th><th>SLA</th><th>measured</th><th>limit</th><th>note</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _cards(s: dict) -> str:
    items = [
        ("requests (after warm-up)", s["requests"]),
        ("error rate", _pct(s["error_rate"])),
        ("requests/s", _fmt(s["requests_per_s"], 3)),
        ("TTFT p95", _ms(s["ttft_ms"][95])),
        ("ITL p95", _ms(s["itl_ms"][95])),
        ("USD / 1M out tokens", _fmt(s["cost_per_1m_output_tokens_usd"], 3)),
    ]
    return (
        "<div class='cards'>"
        + "".join(f"<div class='card'><b>{v}</b><span>{k}</span></div>" for k, v in items)
        + "</div>"
    )


def _pct(x) -> str:
    return "n/a" if x is None else f"{x * 100:.2f}%"


def _ms(x) -> str:
    return "n/a" if x is None else f"{x:.1f} ms"


def _latency_table(s: dict) -> str:
    rows = "".join(
        f"<tr><td>{name}</td>" + "".join(f"<td class='num'>{_ms(s[key][q])}</td>" for q in (50, 90, 95, 99)) + "</tr>"
        for name, key in (("TTFT", "ttft_ms"), ("ITL", "itl_ms"), ("TPOT", "tpot_ms"), ("End-to-end", "e2e_ms"))
    )
    return "<table><tr><th>latency</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th></tr>" + rows + "</table>"


def _banner(r: RunResult, lines: list[VerdictLine]) -> str:
    out = []
    if r.problem:
        out.append(f"<div class='banner fail'>Run failed: {html.escape(r.problem)}</div>")
    if r.partial:
        out.append(
            "<div class='banner warn'>PARTIAL RUN: interrupted before the planned end "
            f"({r.elapsed_s:.0f} of {r.planned_s:.0f} s); numbers cover what ran.</div>"
        )
    failed = [v for v in lines if not v.passed]
    if not r.problem:
        cls = "fail" if failed or not lines else "pass"
        text = (
            f"SLA verdict: FAIL ({len(failed)} of {len(lines)} lines)"
            if failed
            else f"SLA verdict: PASS (all {len(lines)} lines)"
            if lines
            else "SLA verdict: no SLA lines"
        )
        out.append(f"<div class='banner {cls}'>{text}</div>")
    return "".join(out)


def _img(b64: str | None, alt: str) -> str:
    return f"<img alt='{alt}' src='data:image/png;base64,{b64}'>" if b64 else ""


def _events(r: RunResult) -> str:
    if not r.scarcity:
        return ""
    rows = "".join(
        f"<tr class='{'ok' if m.ok else 'bad'}'><td class='num'>{m.at_s:.1f} s</td><td class='num'>{m.gpus}</td>"
        f"<td>{html.escape(m.detail)}</td></tr>"
        for m in r.scarcity
    )
    return (
        "<h2>Budget changes (scarcity events)</h2><table><tr><th>at</th><th>budget</th><th>admin answer</th></tr>"
        + rows
        + "</table>"
    )


def _errors_table(r: RunResult) -> str:
    kinds = errors_by_type(r.samples)
    if not kinds:
        return "<p>No errors.</p>"
    example = {}
    for s in r.samples:
        if not s.ok:
            example.setdefault(s.error_type or "unknown", s.error or "")
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td class='num'>{n}</td><td><code>{html.escape(example[k][:160])}</code></td></tr>"
        for k, n in kinds.most_common()
    )
    return "<table><tr><th>type</th><th>count</th><th>example</th></tr>" + rows + "</table>"


def render_html(r: RunResult, lines: list[VerdictLine], summ: dict) -> str:
    meta = (
        f"target <code>{html.escape(r.target)}</code> · model <code>{html.escape(r.model)}</code> · "
        f"started {r.started_at} · ran {r.elapsed_s:.1f} s (warm-up {r.warmup_s:g} s excluded) · "
        f"{len(r.samples)} requests in total · prompts: {html.escape(r.prompt_method)}"
    )
    if r.lateness_s:
        late = sorted(r.lateness_s)
        meta += f" · {len(late)} trace arrivals sent late (max {late[-1] * 1000:.0f} ms: raise shape.users)"
    body = [
        f"<h1>Load test: {html.escape(r.scenario)}</h1><div class='meta'>{meta}</div>",
        _banner(r, lines),
        "<h2>SLA verdict</h2>",
        _verdict_table(lines),
        "<h2>Summary (after warm-up)</h2>",
        _cards(summ),
        _latency_table(summ),
    ]
    if r.samples:
        body += [
            "<h2>Latency distributions</h2>",
            _img(charts.latency_cdfs(r.measured()), "latency CDFs"),
            "<h2>Latency over time</h2>",
            _img(charts.latency_over_time(r), "latency over time"),
            "<h2>Throughput</h2>",
            _img(charts.throughput(r), "throughput"),
            "<h2>Traffic per model</h2>",
            _img(charts.model_share(r), "model share"),
            "<h2>Cost</h2>",
            _img(charts.cost(r), "cost"),
        ]
    body += [_events(r), "<h2>Errors</h2>", _errors_table(r), _img(charts.errors(r), "errors")]
    body.append(
        "<p class='meta'>Percentiles are exact, computed from every raw sample (samples.csv, report.json). "
        "TTFT: first content chunk; ITL: one sample per later chunk; TPOT = (E2E - TTFT) / (output tokens - 1) "
        "with the server's token count.</p>"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Load test {html.escape(r.scenario)}</title>"
        f"<style>{CSS}</style></head><body><main>{''.join(body)}</main></body></html>"
    )


def _csv_row(s) -> dict:
    ms = lambda x: None if x is None else round(x * 1000, 3)  # noqa: E731
    d = s.to_dict()
    d.update(
        ttft_ms=ms(s.ttft_s),
        tpot_ms=ms(s.tpot_s),
        e2e_ms=ms(s.e2e_s),
        itl_ms=";".join(f"{x * 1000:.3f}" for x in s.itl_s),
    )
    return {k: d.get(k) for k in CSV_FIELDS}


def write_report(r: RunResult, lines: list[VerdictLine], out_dir: str | Path) -> Path:
    """Write report.html, report.json and samples.csv under out_dir; returns the HTML path."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    summ = summary(r.measured(), r.window_s)
    passed = bool(lines) and all(v.passed for v in lines) and r.problem is None and not r.partial
    doc = {
        "run": r.header_dict(),
        "passed": passed,
        "verdict": [v.to_dict() for v in lines],
        "summary": summ,
        "samples": [s.to_dict() for s in r.samples],
    }
    (d / "report.json").write_text(json.dumps(doc, indent=1, default=str))
    with open(d / "samples.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        w.writerows(_csv_row(s) for s in r.samples)
    path = d / "report.html"
    path.write_text(render_html(r, lines, summ))
    return path
