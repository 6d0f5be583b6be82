"""The pure parts of benchmarks/gateway.py: reading a stream cheaply, and turning samples into figures.

No I/O here: the benchmark feeds bytes, timestamps and CPU times in; the unit
tests (tests/unit/test_gateway_bench.py) check every function on known values.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from loadtests.metrics import percentile

# The limits: capacity counts a load level while added TTFT p50 stays within this.
CAPACITY_ADDED_TTFT_P50_MS = 5.0
# Roles whose CPU is the gateway's (Petit: Serve proxy, ingress, model replicas; a peer: its own processes).
GATEWAY_ROLES = ("haproxy", "proxy", "ingress", "replica", "peer")


class SseTally:
    """TTFT, tokens and errors of one streamed response, from raw bytes, with as little parsing as possible.

    JSON is parsed only until the first chunk with content (to time TTFT exactly, like
    loadtests.metrics.StreamTimer) and for the chunk holding `usage`; every later event is
    only counted. Tokens are the server's `usage.completion_tokens` when it sends them,
    else the number of content chunks.
    """

    def __init__(self, sent_s: float) -> None:
        self.sent_s = sent_s
        self.ttft_s: float | None = None
        self.content_chunks = 0
        self.usage_tokens: int | None = None
        self.done = False
        self.error: str | None = None
        self._buf = b""

    def feed(self, data: bytes, now_s: float) -> None:
        self._buf += data
        if b"\n\n" not in self._buf:
            return
        *events, self._buf = self._buf.replace(b"\r\n", b"\n").split(b"\n\n")
        for event in events:
            self._event(event.strip(), now_s)

    def _event(self, event: bytes, now_s: float) -> None:
        if not event.startswith(b"data:"):
            return
        payload = event[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return
        if self.ttft_s is not None and b'"usage"' not in payload and b'"error"' not in payload:
            self.content_chunks += 1  # after the first token: count, do not parse
            return
        try:
            obj = json.loads(payload)
        except ValueError:
            self.error = "bad_json"
            return
        if obj.get("error"):
            self.error = "stream_error"
            return
        usage = obj.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.usage_tokens = usage["completion_tokens"]
        if _has_content(obj):
            self.content_chunks += 1
            if self.ttft_s is None:
                self.ttft_s = now_s - self.sent_s

    @property
    def tokens(self) -> int:
        return self.usage_tokens if self.usage_tokens is not None else self.content_chunks

    @property
    def ok(self) -> bool:
        return self.error is None and self.done and self.ttft_s is not None


def _has_content(obj: dict) -> bool:
    for choice in obj.get("choices") or []:
        delta = choice.get("delta") or {}
        if delta.get("content") or choice.get("text"):
            return True
    return False


@dataclass(frozen=True)
class CpuSnapshot:
    """Cumulative CPU seconds (user + system) per process id, grouped by role."""

    by_role: Mapping[str, Mapping[int, float]]


def cpu_used_by_role(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU seconds each role used between two snapshots; processes seen in only one are left out."""
    used: dict[str, float] = {}
    for role, procs in after.by_role.items():
        start = before.by_role.get(role, {})
        used[role] = sum(max(0.0, t - start[pid]) for pid, t in procs.items() if pid in start)
    return used


@dataclass
class LevelResult:
    """One closed-loop load level against one target: what the client saw and what the processes spent."""

    concurrency: int
    wall_s: float
    ttfts_s: list[float]
    tokens: int
    requests: int
    errors: int
    cpu_s: dict[str, float] = field(default_factory=dict)
    client_cpu_s: float = 0.0
    hops: dict[str, dict] = field(default_factory=dict)  # Petit's per-hop p50/p95 (benchmarks/hops.py)

    def summary(self) -> dict:
        gateway = [v for role, v in self.cpu_s.items() if role in GATEWAY_ROLES]  # none for the bare server
        gateway_cpu = sum(gateway)
        return {
            "concurrency": self.concurrency,
            "wall_s": round(self.wall_s, 3),
            "requests": self.requests,
            "errors": self.errors,
            "tokens": self.tokens,
            "tokens_per_s": rate(self.tokens, self.wall_s),
            "requests_per_s": rate(self.requests, self.wall_s),
            "ttft_p50_ms": _ms(percentile(self.ttfts_s, 50)),
            "ttft_p99_ms": _ms(percentile(self.ttfts_s, 99)),
            "cpu_ms_per_1k_tokens": {r: per_unit(v, self.tokens, 1000) for r, v in sorted(self.cpu_s.items())},
            "gateway_cpu_ms_per_1k_tokens": per_unit(gateway_cpu, self.tokens, 1000) if gateway else None,
            "gateway_cpu_ms_per_request": per_unit(gateway_cpu, self.requests, 1) if gateway else None,
            "client_cpu_s_per_s": round(self.client_cpu_s / self.wall_s, 3) if self.wall_s > 0 else None,
            "hops_ms": self.hops,
        }


def rate(n: float, seconds: float) -> float:
    return round(n / seconds, 2) if seconds > 0 else 0.0


def per_unit(cpu_s: float, units: int, per: int) -> float | None:
    """CPU milliseconds per `per` units (tokens or requests); None without units."""
    return round(cpu_s * 1e3 * per / units, 3) if units else None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e3, 3)


def spread(values: Sequence[float | None]) -> dict | None:
    """Median, min and max over repeats (None values left out); None when nothing is left."""
    xs = [v for v in values if v is not None]
    if not xs:
        return None
    return {"median": round(statistics.median(xs), 4), "min": round(min(xs), 4), "max": round(max(xs), 4), "n": len(xs)}


def compare(bare: Sequence[dict], target: Sequence[dict]) -> dict:
    """A target's level against the bare server's, repeat by repeat (the i-th of each ran back to back).

    Each list holds the `LevelResult.summary()` of one level, one per repeat. Ratios and
    differences are taken per repeat, then summarised with their spread.
    """
    pairs = list(zip(bare, target))

    def diff(key: str) -> list[float | None]:
        return [t[key] - b[key] if t[key] is not None and b[key] is not None else None for b, t in pairs]

    return {
        "tokens_per_s_ratio": spread(
            [t["tokens_per_s"] / b["tokens_per_s"] if b["tokens_per_s"] else None for b, t in pairs]
        ),
        "ttft_p50_added_ms": spread(diff("ttft_p50_ms")),
        "ttft_p99_added_ms": spread(diff("ttft_p99_ms")),
        "ttft_p50_ms": spread([t["ttft_p50_ms"] for t in target]),
        "tokens_per_s": spread([t["tokens_per_s"] for t in target]),
        "requests_per_s": spread([t["requests_per_s"] for t in target]),
        "gateway_cpu_ms_per_1k_tokens": spread([t["gateway_cpu_ms_per_1k_tokens"] for t in target]),
        "gateway_cpu_ms_per_request": spread([t["gateway_cpu_ms_per_request"] for t in target]),
        "errors": sum(t["errors"] for t in target),
    }


def capacity(levels: Mapping[int, dict], limit_ms: float = CAPACITY_ADDED_TTFT_P50_MS) -> dict | None:
    """The highest load level that a target sustains with added TTFT p50 within `limit_ms` and no errors.

    `levels` maps concurrency to `compare()`'s result. Also reports added TTFT at half that
    load: the measured level nearest to half its concurrency, from below. None when no level passes.
    """
    good = [
        c
        for c, lv in levels.items()
        if lv["errors"] == 0 and lv["ttft_p50_added_ms"] is not None and lv["ttft_p50_added_ms"]["median"] <= limit_ms
    ]
    if not good:
        return None
    best = max(good)
    halves = [c for c in levels if c <= best / 2] or [min(levels)]
    half = max(halves)
    return {
        "concurrency": best,
        "tokens_per_s": levels[best]["tokens_per_s"],
        "requests_per_s": levels[best]["requests_per_s"],
        "added_ttft_limit_ms": limit_ms,
        "half_load_concurrency": half,
        "half_load_ttft_p50_added_ms": levels[half]["ttft_p50_added_ms"],
        "half_load_ttft_p99_added_ms": levels[half]["ttft_p99_added_ms"],
    }


def check_targets(levels: Mapping[int, dict], targets: Mapping[int, Mapping[str, float]]) -> dict[str, bool | None]:
    """The issue's done-when limits, per level: `targets` maps concurrency to {figure: limit}.

    Figures ending in `_ratio` must reach the limit, the others stay within it (medians over
    repeats). None where the level or figure was not measured.
    """
    verdicts: dict[str, bool | None] = {}
    for c, limits in targets.items():
        for key, limit in limits.items():
            got = (levels.get(c) or {}).get(key)
            name = f"c{c}.{key}"
            if got is None:
                verdicts[name] = None
            else:
                verdicts[name] = got["median"] >= limit if key.endswith("_ratio") else got["median"] <= limit
    return verdicts
