"""Per-hop timing from Petit's own histogram (`petit_hop_seconds`, serving/gateway/telemetry.py).

The benchmark reads the ingress's /metrics before and after a load level; the
bucket counts added in between give each hop's p50/p95 over that level (linear
within a bucket, as Prometheus's histogram_quantile does).
"""

from __future__ import annotations

import re
import urllib.request

_BUCKET = re.compile(r'^petit_hop_seconds_bucket\{hop="([^"]+)",le="([^"]+)"\} ([0-9.e+-]+)$')


def read_hop_buckets(url: str, timeout_s: float = 5.0) -> dict[str, dict[float, float]]:
    """{hop: {upper bound: cumulative count}} from `url`/metrics; {} when it cannot be read."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=timeout_s) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out: dict[str, dict[float, float]] = {}
    for line in text.splitlines():
        m = _BUCKET.match(line)
        if m:
            out.setdefault(m.group(1), {})[float(m.group(2))] = float(m.group(3))
    return out


def quantile(buckets: dict[float, float], q: float) -> float | None:
    """The q-quantile (0..1) of a cumulative histogram; None when it holds nothing."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank, prev_le, prev_n = q * buckets[bounds[-1]], 0.0, 0.0
    for le in bounds:
        n = buckets[le]
        if n >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_n) / (n - prev_n) if n > prev_n else 0.0)
        prev_le, prev_n = le, n
    return prev_le


def hop_summary(before: dict[str, dict[float, float]], after: dict[str, dict[float, float]]) -> dict[str, dict]:
    """Per hop over one level: requests, p50 and p95 in ms."""
    out: dict[str, dict] = {}
    for hop, buckets in after.items():
        start = before.get(hop, {})
        delta = {le: n - start.get(le, 0.0) for le, n in buckets.items()}
        p50, p95 = quantile(delta, 0.5), quantile(delta, 0.95)
        total = delta.get(float("inf"), 0.0)
        out[hop] = {
            "n": int(total),
            "p50_ms": None if p50 is None else round(p50 * 1e3, 3),
            "p95_ms": None if p95 is None else round(p95 * 1e3, 3),
        }
    return out
