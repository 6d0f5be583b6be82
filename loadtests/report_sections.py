"""The report's HTML sections (tables, cards, banner), every number in the one vocabulary of units.py. Pure."""

from __future__ import annotations

import html
import json
from typing import Any

from loadtests.quality import QualityRow
from loadtests.results import RunResult, errors_by_type
from loadtests.sla import VerdictLine
from loadtests.tables import LATENCY_METRICS, QUANTILES
from loadtests.tenant_results import model_mix
from loadtests.timeline import TimelinePoint, poll_errors, polled
from loadtests.units import NA, fmt_count, fmt_holds, fmt_ms, fmt_pct, fmt_rate, fmt_usd, fmt_value

_E = html.escape


def _table(header: list[str], rows: list[list[str]], numeric_from: int = 1, cls: list[str] | None = None) -> str:
    """A table whose columns from `numeric_from` on are right-aligned numbers (headers too)."""

    def cell(tag: str, i: int, v: str) -> str:
        return f"<{tag} class='num'>{v}</{tag}>" if i >= numeric_from else f"<{tag}>{v}</{tag}>"

    head = "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>"
    body = "".join(
        (f"<tr class='{cls[j]}'>" if cls else "<tr>") + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>"
        for j, r in enumerate(rows)
    )
    return f"<table>{head}{body}</table>"


def verdict_counts(lines: list[VerdictLine]) -> tuple[int, int]:
    """(lines that hold, all lines)."""
    return sum(1 for v in lines if v.passed), len(lines)


def verdict_table(lines: list[VerdictLine]) -> str:
    if not lines:
        return "<p>No SLA lines were evaluated.</p>"
    rows, cls = [], []
    for v in lines:
        rows.append(
            [
                "PASS" if v.passed else "FAIL",
                _E(v.scope),
                _E(v.name),
                fmt_value(v.measured, v.unit),
                f"{_E(v.op)} {fmt_value(v.limit, v.unit)}",
                _E(v.note),
            ]
        )
        cls.append("ok" if v.passed else "bad")
    t = _table(["", "scope", "SLA", "measured", "limit", "note"], rows, numeric_from=3, cls=cls)
    return t.replace("<td>PASS</td>", "<td class='v'>PASS</td>").replace("<td>FAIL</td>", "<td class='v'>FAIL</td>")


def banner(r: RunResult, lines: list[VerdictLine]) -> str:
    out = []
    if r.problem:
        out.append(f"<div class='banner fail'>Run failed: {_E(r.problem)}</div>")
    if r.partial:
        out.append(
            "<div class='banner warn'>PARTIAL RUN: interrupted before the planned end "
            f"({r.elapsed_s:.0f} of {r.planned_s:.0f} s); numbers cover what ran.</div>"
        )
    held, total = verdict_counts(lines)
    if not r.problem:
        if not lines:
            out.append("<div class='banner fail'>SLA verdict: FAIL (no SLA lines)</div>")
        else:
            word = "PASS" if held == total else "FAIL"
            out.append(f"<div class='banner {word.lower()}'>SLA verdict: {word} ({fmt_holds(held, total)})</div>")
    return "".join(out)


def cards(s: dict[str, Any], r: RunResult) -> str:
    acc = r.accounting()
    items = [
        ("requests finished (after warm-up)", fmt_count(s["requests"])),
        ("error rate", fmt_pct(s["error_rate"])),
        ("successful requests/s", fmt_rate(s["requests_per_s"], "req/s")),
        ("output tokens/s", fmt_rate(s["output_tokens_per_s"], "tok/s")),
        ("TTFT p95", fmt_ms(s["ttft_ms"][95])),
        ("ITL p95", fmt_ms(s["itl_ms"][95])),
        ("USD per 1M output tokens", fmt_usd(s["cost_per_1m_output_tokens_usd"])),
        ("unfinished at the stop", fmt_count(acc.unfinished)),
    ]
    return (
        "<div class='cards'>"
        + "".join(f"<div class='card'><b>{v}</b><span>{k}</span></div>" for k, v in items)
        + "</div>"
    )


def accounting_html(r: RunResult) -> str:
    a = r.accounting()
    rows = []
    if a.planned is not None:
        rows.append(["arrivals planned (trace arrivals due within the run)", fmt_count(a.planned)])
    rows += [
        ["sent", fmt_count(a.sent)],
        ["completed", fmt_count(a.completed)],
        ["failed", fmt_count(a.failed)],
        ["unfinished (in flight at the stop, after the grace)", fmt_count(a.unfinished)],
    ]
    if a.planned is not None:
        rows += [["arrivals not sent", fmt_count(a.not_sent)], ["arrivals sent late (> 100 ms)", fmt_count(a.late)]]
    rows.append(["of the sent, during the warm-up", fmt_count(a.warmup_sent)])
    check = "balanced" if a.balanced else "NOT balanced (a bug: please report)"
    cpu = "unknown" if r.generator_cpu_cores is None else f"{r.generator_cpu_cores:.2f} cores"
    note = r.saturation()
    sat = f"<div class='banner warn'>{_E(note)}</div>" if note else ""
    return (
        _table(["whole run, warm-up included", "requests"], rows)
        + f"<p class='meta'>sent = completed + failed + unfinished: {check}. "
        f"Load generator CPU: {cpu}.</p>" + sat
    )


def latency_html(lat: dict[str, dict[str, dict[str, Any]]]) -> str:
    header = ["scope", "metric", "n", "mean", "min", *[f"p{q}" for q in QUANTILES], "max"]
    rows = []
    for scope, metrics in lat.items():
        for label, key in LATENCY_METRICS:
            st = metrics[key]
            stats = [fmt_ms(st["mean"]), fmt_ms(st["min"]), *[fmt_ms(st[f"p{q}"]) for q in QUANTILES]]
            rows.append([_E(scope), label, fmt_count(st["n"]), *stats, fmt_ms(st["max"])])
    return _table(header, rows, numeric_from=2)


def tokens_html(tok: dict[str, dict[str, Any]]) -> str:
    header = ["scope", "requests", "input tokens", "output tokens", "total tokens", "req/s", "input tok/s"]
    header += ["output tok/s", "total tok/s"]
    rows = [
        [
            _E(scope),
            *[fmt_count(t[k]) for k in ("requests", "input", "output", "total")],
            fmt_rate(t["requests_per_s"], "req/s"),
            *[fmt_rate(t[f"{k}_per_s"], "tok/s") for k in ("input", "output", "total")],
        ]
        for scope, t in tok.items()
    ]
    return _table(header, rows)


def events(r: RunResult) -> str:
    if not r.scarcity:
        return ""
    rows = [[f"{m.at_s:.1f} s", fmt_count(m.gpus), _E(m.detail)] for m in r.scarcity]
    cls = ["ok" if m.ok else "bad" for m in r.scarcity]
    return "<h2>Budget changes (scarcity events)</h2>" + _table(["at", "budget", "admin answer"], rows, 0, cls)


def errors_table(r: RunResult) -> str:
    """Errors after the warm-up (what the error rate counts); warm-up errors are named apart."""
    measured = r.measured()
    kinds = errors_by_type(measured)
    warm = sum(1 for s in r.samples if s.warmup and not s.ok and s.error_type != "unfinished")
    extra = f"<p class='meta'>{fmt_count(warm)} more failed during the warm-up (not counted).</p>" if warm else ""
    if not kinds:
        return "<p>No errors after the warm-up.</p>" + extra
    example: dict[str, str] = {}
    for s in measured:
        if not s.ok:
            example.setdefault(s.error_type or "unknown", s.error or "")
    total = len(measured)
    rows = [
        [_E(k), fmt_count(n), fmt_pct(n / total), f"<code>{_E(example[k][:160])}</code>"]
        for k, n in kinds.most_common()
    ]
    return _table(["type", "count", "share of requests", "example"], rows, numeric_from=1) + extra


def provenance_html(r: RunResult) -> str:
    p = r.provenance
    if not p:
        return "<p>No provenance recorded.</p>"
    git = p.get("git") or {}
    commit = git.get("commit", "unknown") + (" (uncommitted changes)" if git.get("dirty") else "")
    rows = [
        ["command", f"<code>{_E(' '.join(p.get('command', [])))}</code>"],
        ["rerun", "<code>petit loadtest --rerun report.json</code>"],
        ["versions", _E(", ".join(f"{k} {v}" for k, v in p.get("versions", {}).items()))],
        ["git commit", _E(commit)],
        *[[f"sha256 of {_E(k)}", f"<code>{v}</code>"] for k, v in p.get("file_sha256", {}).items()],
        ["seeds", _E(p.get("seeds", {}).get("note", ""))],
    ]
    resolved = json.dumps({"scenario": p.get("scenario"), "sla": p.get("sla")}, indent=1)
    return (
        _table(["", "value"], rows, numeric_from=9)
        + f"<details><summary>resolved scenario and SLA</summary><pre>{_E(resolved)}</pre></details>"
    )


NOT_POLLED = (
    "<div class='empty'>Nothing was polled: the target lists no ready replicas (not Petit?) and the scenario "
    "names no <code>scarcity.admin_url</code>, or <code>poll_s</code> is 0. Budget, replicas and the routing "
    "plan are unknown for this run.</div>"
)


def _state(p: TimelinePoint) -> tuple[str, str, str, str, str]:
    """A poll in words: budget, ready replicas, plan shares, strong share, constrained."""
    budget = "unlimited" if p.budget_unlimited else fmt_value(p.budget, "")
    ready = ", ".join(f"{_E(m)} {n}" for m, n in sorted(p.ready.items())) or NA
    shares = p.shares or p.tier_shares
    plan = ", ".join(f"{_E(m)} {fmt_pct(v)}" for m, v in sorted(shares.items())) or NA
    constrained = NA if p.constrained is None else ("yes" if p.constrained else "no")
    return budget, ready, plan, fmt_pct(p.strong_share), constrained


def fleet_html(points: list[TimelinePoint]) -> str:
    """The polls that changed something (budget, replicas, plan), and each source's failures."""
    if not polled(points):
        return NOT_POLLED
    rows, last = [], None
    for p in points:
        state = _state(p)
        if state != last:
            rows.append([f"{p.t_s:.1f} s", *state])
            last = state
    failures = poll_errors(points)
    example = {e.split(":")[0]: e for p in points for e in p.errors}
    fail = "".join(
        f"<li>{_E(k)}: failed {fmt_count(n)} of {fmt_count(len(points))} polls, e.g. <code>{_E(example[k][:160])}</code></li>"
        for k, n in sorted(failures.items())
    )
    header = ["at", "budget", "ready replicas", "plan: share per model", "strong-tier share", "constrained"]
    return (
        f"<p class='meta'>{fmt_count(len(points))} polls; a row per change.</p>"
        + _table(header, rows, numeric_from=len(header))
        + (f"<ul class='meta'>{fail}</ul>" if fail else "")
    )


NO_LABELS = (
    "<div class='empty'>No labelled answers: give a prompt file with expected answers "
    "(<code>prompts: {file: labelled_prompts.jsonl}</code>, see <code>examples/labelled.yaml</code>) "
    "to measure accuracy under load.</div>"
)


def quality_html(rows: list[QualityRow]) -> str:
    """Accuracy and cost per requested model, and `auto`'s answers split by the model that gave them."""
    if not rows:
        return NO_LABELS
    header = ["scope", "labelled answers", "correct", "accuracy", "USD per 1k answers", "USD per 1M output tokens"]
    body = [
        [
            _E(q.scope) if q.answered_by is None else f"&nbsp;&nbsp;{_E(q.scope)}",
            fmt_count(q.labelled),
            fmt_count(q.correct),
            fmt_pct(q.accuracy),
            fmt_usd(q.usd_per_1k_answers),
            fmt_usd(q.usd_per_1m_output_tokens),
        ]
        for q in rows
    ]
    return _table(header, body)


NO_TENANTS = (
    "<div class='empty'>No tenants in this run: every request went without a tenant's key. A scenario's "
    "<code>tenants:</code> gives each tenant an API key (from an environment variable) and a share of the users "
    "(see <code>examples/tenants.yaml</code>).</div>"
)


def tenants_html(rows: list[dict[str, Any]]) -> str:
    """Per tenant: the models that answered, downgrades (with reasons), requests, errors, TTFT and spend."""
    if not rows:
        return NO_TENANTS
    header = ["tenant", "answered by", "downgrade reasons", "downgraded", "requests", "errors", "TTFT p50"]
    header += ["TTFT p95", "spent", "USD per 1M output tokens"]
    body = [
        [
            _E(r["tenant"]),
            _E(model_mix(r["models"])) or NA,
            _E(", ".join(f"{k} x{fmt_count(n)}" for k, n in sorted(r["downgrade_reasons"].items()))) or NA,
            f"{fmt_count(r['downgraded'])} ({fmt_pct(r['downgrade_share'])})",
            fmt_count(r["requests"]),
            fmt_pct(r["error_rate"]),
            fmt_ms(r["ttft_p50_ms"]),
            fmt_ms(r["ttft_p95_ms"]),
            fmt_usd(r["cost_usd"]),
            fmt_usd(r["cost_per_1m_output_tokens_usd"]),
        ]
        for r in rows
    ]
    errors = [
        f"{_E(r['tenant'])}: " + ", ".join(f"{_E(k)} x{fmt_count(n)}" for k, n in sorted(r["errors_by_type"].items()))
        for r in rows
        if r["errors_by_type"]
    ]
    note = f"<p class='meta'>Errors by tenant: {'; '.join(errors)}.</p>" if errors else ""
    return (
        "<p class='meta'>After the warm-up. Downgraded: successful requests Petit answered with "
        "<code>x-petit-tenant-downgrade</code> (the tenant's tier capped by a budget or its soft threshold).</p>"
        + _table(header, body, numeric_from=3)
        + note
    )
