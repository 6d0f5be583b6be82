"""The numbers behind the report's tables: latency statistics and token totals, overall and per model. Pure.

Computed over finished requests after the warm-up (what the verdict judges).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loadtests.metrics import RequestSample, percentile

QUANTILES = (50, 90, 95, 99)
LATENCY_METRICS: tuple[tuple[str, str], ...] = (
    ("TTFT", "ttft"),
    ("ITL", "itl"),
    ("TPOT", "tpot"),
    ("End-to-end", "e2e"),
)
OVERALL = "all models"

_VALUES: dict[str, Callable[[RequestSample], list[float]]] = {
    "ttft": lambda s: [] if s.ttft_s is None else [s.ttft_s],
    "itl": lambda s: list(s.itl_s),
    "tpot": lambda s: [] if s.tpot_s is None else [s.tpot_s],
    "e2e": lambda s: [] if s.e2e_s is None else [s.e2e_s],
}


def latency_stats(values_ms: list[float]) -> dict[str, Any]:
    """n, mean, min, max and p50/p90/p95/p99 (exact) of values in ms; None values when empty."""
    out: dict[str, Any] = {"n": len(values_ms)}
    out["mean"] = sum(values_ms) / len(values_ms) if values_ms else None
    out["min"] = min(values_ms) if values_ms else None
    out["max"] = max(values_ms) if values_ms else None
    for q in QUANTILES:
        out[f"p{q}"] = percentile(values_ms, q)
    return out


def _scopes(samples: list[RequestSample]) -> dict[str, list[RequestSample]]:
    """Successful samples overall, then per answering model."""
    ok = [s for s in samples if s.ok]
    scopes: dict[str, list[RequestSample]] = {OVERALL: ok}
    for s in ok:
        scopes.setdefault(s.model or "unknown", []).append(s)
    return scopes


def latency_tables(samples: list[RequestSample]) -> dict[str, dict[str, dict[str, Any]]]:
    """{scope: {metric key: stats}}: `all models` first, then each model that answered."""
    return {
        scope: {key: latency_stats([v * 1000 for s in group for v in _VALUES[key](s)]) for _, key in LATENCY_METRICS}
        for scope, group in _scopes(samples).items()
    }


def token_tables(samples: list[RequestSample], window_s: float) -> dict[str, dict[str, Any]]:
    """{scope: requests, input/output/total tokens and their rates per second of the window}."""
    out: dict[str, dict[str, Any]] = {}
    for scope, group in _scopes(samples).items():
        inp = sum(s.prompt_tokens or 0 for s in group)
        outp = sum(s.output_tokens or 0 for s in group)
        row: dict[str, Any] = {"requests": len(group), "input": inp, "output": outp, "total": inp + outp}
        for k in ("requests", "input", "output", "total"):
            row[f"{k}_per_s"] = row[k] / window_s if window_s > 0 else None
        out[scope] = row
    return out
