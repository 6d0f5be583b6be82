"""Small pure helpers of the policy: bounds, hysteresis, cooldowns, curves.

Each is a total function of its arguments (no clock reads); each has a unit test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def clamp(value: int, lo: int, hi: int) -> int:
    """`value` forced into [lo, hi]. Raises ValueError if lo > hi."""
    if lo > hi:
        raise ValueError(f"empty bounds [{lo}, {hi}]")
    return max(lo, min(hi, value))


def replicas_for(load: float, capacity_per_replica: float, utilization: float) -> int:
    """Fewest replicas that carry `load` with each at most `utilization` full (0 for no load)."""
    if load <= 0:
        return 0
    if capacity_per_replica <= 0 or utilization <= 0:
        raise ValueError("capacity and utilization must be positive")
    return math.ceil(load / (capacity_per_replica * utilization) - 1e-9)


def with_hysteresis(current: int, load: float, capacity: float, target_util: float, band: float) -> int:
    """Desired replicas with a dead band: up as soon as `target_util` is exceeded,
    down only when the load would fit at `target_util - band`."""
    up = replicas_for(load, capacity, target_util)
    if up >= current:
        return up
    down = replicas_for(load, capacity, target_util - band)
    return min(current, max(down, up))


def cooled_down(now: float, last: float, cooldown_s: float) -> bool:
    """True when at least `cooldown_s` passed since `last`."""
    return now - last >= cooldown_s


def stabilized(history: Sequence[tuple[float, int]], now: float, window_s: float, current: int) -> int:
    """HPA-style scale-down stabilization: the highest recommendation within the
    window, never above `current` (only ever slows a scale-down)."""
    recent = [n for t, n in history if now - t <= window_s]
    return min(current, max(recent)) if recent else current


def prune(history: Sequence[tuple[float, int]], now: float, window_s: float) -> tuple[tuple[float, int], ...]:
    """Recommendations still inside the window."""
    return tuple((t, n) for t, n in history if now - t <= window_s)


def step_limited(current: int, desired: int, max_down: int) -> int:
    """Scale-down at most `max_down` per step; scale-up unrestricted."""
    return desired if desired >= current else max(desired, current - max_down)


def interpolate(points: Sequence[tuple[float, float]], x: float) -> float:
    """Piecewise-linear curve through sorted `points`, clamped at both ends."""
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def deadband(old: dict[str, float], new: dict[str, float], band: float) -> bool:
    """True when every share moved by less than `band` (keep the old routing)."""
    keys = set(old) | set(new)
    return bool(old) and all(abs(old.get(k, 0.0) - new.get(k, 0.0)) < band for k in keys)
