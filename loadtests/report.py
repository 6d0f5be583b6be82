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

from loadtests import charts, fleet_charts
from loadtests import report_sections as sections
from loadtests.quality import quality_rows
from loadtests.results import RunResult, summary
from loadtests.sla import VerdictLine
from loadtests.timeline import polled
from loadtests.units import fmt_count

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
    "tenant",
    "downgrade",
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
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
pre{background:#fff;border:1px solid #e2e8f0;padding:8px;overflow:auto;font-size:12px}
tr.ok td.v{color:#15803d;font-weight:700} tr.bad td.v{color:#b91c1c;font-weight:700}
tr.ok{background:#f0fdf4} tr.bad{background:#fef2f2}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px;margin:10px 0}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px}
.card b{display:block;font-size:20px} .card span{color:#64748b;font-size:12px}
img{max-width:100%;background:#fff;border:1px solid #e2e8f0;border-radius:8px;margin:6px 0}
code{background:#e2e8f0;padding:1px 4px;border-radius:3px}
.empty{padding:24px;text-align:center;color:#475569;background:#fff;border:1px dashed #94a3b8;border-radius:8px}
"""


def _img(b64: str | None, alt: str) -> str:
    return f"<img alt='{alt}' src='data:image/png;base64,{b64}'>" if b64 else ""


EMPTY = (
    "<div class='empty'>No successful request: there is no latency, throughput, traffic or cost to chart. "
    "See the errors below.</div>"
)


def _charts(r: RunResult) -> list[str]:
    """The latency, throughput, traffic and cost charts, or the explicit empty state."""
    if not any(s.ok for s in r.samples):
        return ["<h2 id='charts'>Charts</h2>", EMPTY]
    return [
        "<h2 id='distributions'>Latency distributions</h2>",
        _img(charts.latency_cdfs(r.measured()), "latency CDFs"),
        "<h2 id='over-time'>Latency over time</h2>",
        _img(charts.latency_over_time(r), "latency over time"),
        "<h2 id='throughput'>Throughput</h2>",
        _img(charts.throughput(r), "throughput"),
        "<h2 id='models'>Traffic per model</h2>",
        _img(charts.model_share(r), "model share"),
        "<h2 id='cost'>Cost</h2>",
        _img(charts.cost(r), "cost"),
    ]


def render_html(r: RunResult, lines: list[VerdictLine], summ: dict) -> str:
    meta = (
        f"target <code>{html.escape(r.target)}</code> · model <code>{html.escape(r.model)}</code> · "
        f"started {r.started_at} · ran {r.elapsed_s:.1f} s (warm-up {r.warmup_s:g} s excluded) · "
        f"{fmt_count(len(r.samples))} requests sent · prompts: {html.escape(r.prompt_method)}"
    )
    body = [
        f"<h1>Load test: {html.escape(r.scenario)}</h1><div class='meta'>{meta}</div>",
        sections.banner(r, lines),
        "<h2 id='verdict'>SLA verdict</h2>",
        sections.verdict_table(lines),
        "<h2 id='summary'>Summary (after warm-up)</h2>",
        sections.cards(summ, r),
        "<h2 id='accounting'>Every request accounted for</h2>",
        sections.accounting_html(r),
        _img(charts.offered_vs_achieved(r), "offered vs achieved rate"),
        "<h2 id='latency'>Latency (after warm-up, successful requests)</h2>",
        sections.latency_html(summ["latency"]),
        "<h2 id='tokens'>Tokens (after warm-up, successful requests)</h2>",
        sections.tokens_html(summ["tokens"]),
        "<h2 id='tenants'>Tenants</h2>",
        sections.tenants_html(summ["tenants"]),
        *_charts(r),
        "<h2 id='fleet'>Scarcity and routing</h2>",
        sections.fleet_html(r.timeline),
        _img(fleet_charts.fleet_timeline(r), "scarcity and routing over time") if polled(r.timeline) else "",
        sections.events(r),
        "<h2 id='quality'>Quality under load</h2>",
        sections.quality_html(quality_rows(r.measured())),
        _img(fleet_charts.quality_chart(r), "accuracy and cost") if quality_rows(r.measured()) else "",
        "<h2 id='errors'>Errors (after warm-up)</h2>",
        sections.errors_table(r),
        _img(charts.errors(r), "errors"),
        "<h2 id='reproduce'>Reproduce</h2>",
        sections.provenance_html(r),
        "<p class='meta'>Percentiles are exact, computed from every raw sample (samples.csv, report.json). "
        "TTFT: first content chunk; ITL: one sample per later chunk; TPOT = (E2E - TTFT) / (output tokens - 1) "
        "with the server's token count.</p>",
    ]
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
