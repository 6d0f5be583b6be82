"""Load shapes are pure functions of the elapsed time."""

from __future__ import annotations

from loadtests.shapes import ArrivalSchedule, BurstLoad, ConstantLoad, RampLoad, StepLoad, TraceLoad, due_events
from loadtests.traces import TraceRequest


def test_constant_until_duration():
    s = ConstantLoad(8, 10.0, 5.0)
    assert s.tick(0) == (8, 5.0) and s.tick(9.9) == (8, 5.0) and s.tick(10.0) is None


def test_ramp_linear_then_hold():
    s = RampLoad(2, 12, ramp_s=10, duration_s=30)
    assert [s.tick(t)[0] for t in (0, 5, 10, 20)] == [2, 7, 12, 12]
    assert s.tick(30) is None


def test_step_capped():
    s = StepLoad(1, 3, step_s=5, max_users=8, duration_s=60)
    assert [s.tick(t)[0] for t in (0, 4.9, 5, 10, 15, 50)] == [1, 1, 4, 7, 8, 8]


def test_burst_at_end_of_each_period():
    s = BurstLoad(2, 10, every_s=10, burst_s=3, duration_s=25)
    assert [s.tick(t)[0] for t in (0, 6.9, 7, 9.9, 10, 17.5)] == [2, 2, 12, 12, 2, 12]
    assert s.tick(25) is None


def test_trace_pool_and_schedule():
    assert TraceLoad(16, 5).tick(1) == (16, 100.0)
    sched = ArrivalSchedule([TraceRequest(0.0, 10, 5), TraceRequest(0.5, 20, 6)])
    assert sched.span_s == 0.5 and sched.remaining == 2
    assert sched.take() == (0, TraceRequest(0.0, 10, 5))
    assert sched.take()[0] == 1 and sched.take() is None


def test_due_events():
    times = [1.0, 2.0, 5.0]
    assert due_events(times, 0.5, 0) == []
    assert due_events(times, 2.5, 0) == [0, 1]
    assert due_events(times, 2.5, 2) == []
    assert due_events(times, 9, 2) == [2]
