"""Load over time, as pure functions of the elapsed time.

Each shape's `tick(elapsed_s)` returns `(users, spawn_rate)` or None when the
run is over: the same contract as Locust's `LoadTestShape.tick()`, so the
Locust wrapper (loadtests/locust_glue.py) is one line and the logic is tested
without Locust. Closed-loop shapes (constant, ramp, step, burst) control the
number of users, each sending requests back to back (plus a think time).
Trace replay is open-loop: a fixed pool of users takes arrivals from an
:class:`ArrivalSchedule` and sends each at its time, whatever the latency.

Pure module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from loadtests.traces import TraceRequest


@dataclass(frozen=True)
class ConstantLoad:
    users: int
    duration_s: float
    spawn_rate: float = 100.0

    def tick(self, t: float) -> tuple[int, float] | None:
        return None if t >= self.duration_s else (self.users, self.spawn_rate)


@dataclass(frozen=True)
class RampLoad:
    """Linear from start_users to end_users over ramp_s, then hold."""

    start_users: int
    end_users: int
    ramp_s: float
    duration_s: float
    spawn_rate: float = 100.0

    def tick(self, t: float) -> tuple[int, float] | None:
        if t >= self.duration_s:
            return None
        frac = min(1.0, t / self.ramp_s) if self.ramp_s > 0 else 1.0
        return round(self.start_users + (self.end_users - self.start_users) * frac), self.spawn_rate


@dataclass(frozen=True)
class StepLoad:
    """start_users, plus step_users every step_s, capped at max_users."""

    start_users: int
    step_users: int
    step_s: float
    max_users: int
    duration_s: float
    spawn_rate: float = 100.0

    def tick(self, t: float) -> tuple[int, float] | None:
        if t >= self.duration_s:
            return None
        return min(self.max_users, self.start_users + self.step_users * math.floor(t / self.step_s)), self.spawn_rate


@dataclass(frozen=True)
class BurstLoad:
    """base_users, plus burst_users during the last burst_s of every every_s period."""

    base_users: int
    burst_users: int
    every_s: float
    burst_s: float
    duration_s: float
    spawn_rate: float = 100.0

    def tick(self, t: float) -> tuple[int, float] | None:
        if t >= self.duration_s:
            return None
        in_burst = (t % self.every_s) >= self.every_s - self.burst_s
        return self.base_users + (self.burst_users if in_burst else 0), self.spawn_rate


@dataclass(frozen=True)
class TraceLoad:
    """A fixed pool of users for open-loop replay; ends at duration_s."""

    users: int
    duration_s: float
    spawn_rate: float = 100.0

    def tick(self, t: float) -> tuple[int, float] | None:
        return None if t >= self.duration_s else (self.users, self.spawn_rate)


@dataclass
class ArrivalSchedule:
    """Hands out trace arrivals in order; `take()` gives the next (index, request) or None.

    Users call `take()` when idle and sleep until `request.at_s`. An arrival
    taken late (every user was busy) is sent at once; the delay is recorded
    by the caller as lateness, so an undersized pool is visible.
    """

    requests: list[TraceRequest]
    _next: int = field(default=0, init=False)

    def take(self) -> tuple[int, TraceRequest] | None:
        if self._next >= len(self.requests):
            return None
        i = self._next
        self._next += 1
        return i, self.requests[i]

    @property
    def remaining(self) -> int:
        return len(self.requests) - self._next

    @property
    def span_s(self) -> float:
        return self.requests[-1].at_s if self.requests else 0.0


def due_events(times: list[float], elapsed_s: float, fired: int) -> list[int]:
    """Indexes of scripted events (sorted times) now due, given `fired` already fired."""
    return [i for i in range(fired, len(times)) if times[i] <= elapsed_s]
