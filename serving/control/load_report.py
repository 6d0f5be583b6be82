"""What one ingress replica tells the autoscaler about its traffic (pure; no I/O, time passed in).

Per model: cumulative counters (requests, movable requests, movable requests by
tenant priority class, prompt and completion tokens) and latency percentiles
over a recent window (TTFT of streams, time per output token). The autoscaler
turns counter differences between two reads into rates, so a lost report costs
precision, not correctness.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 30.0
MAX_SAMPLES = 4096


def p95(values: list[float]) -> float | None:
    """Nearest-rank 95th percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class _Model:
    requests: int = 0
    movable: int = 0
    movable_by_priority: dict[str, int] = field(default_factory=dict)  # the autoscaler's priority mix
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft: deque = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    tpot: deque = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))


class LoadWindow:
    """Accumulates answered requests; `report(now)` is a JSON-ready dict."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._models: dict[str, _Model] = {}

    def record(
        self,
        model: str,
        movable: bool,
        prompt_tokens: int,
        completion_tokens: int,
        ttft_s: float | None,
        duration_s: float,
        now: float,
        priority: str | None = None,
    ) -> None:
        """Count one answered request; `priority`: its tenant's priority class (None: no tenant)."""
        m = self._models.setdefault(model, _Model())
        m.requests += 1
        m.movable += int(movable)
        if movable and priority is not None:
            m.movable_by_priority[priority] = m.movable_by_priority.get(priority, 0) + 1
        m.prompt_tokens += max(0, prompt_tokens)
        m.completion_tokens += max(0, completion_tokens)
        if ttft_s is not None:
            m.ttft.append((now, ttft_s * 1e3))
            if completion_tokens > 1:
                m.tpot.append((now, (duration_s - ttft_s) * 1e3 / (completion_tokens - 1)))

    def report(self, now: float) -> dict:
        since = now - self.window_s
        out = {}
        for mid, m in self._models.items():
            out[mid] = {
                "requests": m.requests,
                "movable": m.movable,
                "movable_by_priority": dict(m.movable_by_priority),
                "prompt_tokens": m.prompt_tokens,
                "completion_tokens": m.completion_tokens,
                "ttft_p95_ms": p95([v for t, v in m.ttft if t >= since]),
                "itl_p95_ms": p95([v for t, v in m.tpot if t >= since]),
            }
        return out
