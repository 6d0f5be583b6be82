import pytest

from autoscaler import helpers as h


def test_clamp():
    assert h.clamp(5, 1, 3) == 3 and h.clamp(0, 1, 3) == 1 and h.clamp(2, 1, 3) == 2
    with pytest.raises(ValueError):
        h.clamp(1, 3, 1)


def test_replicas_for():
    assert h.replicas_for(0, 100, 0.5) == 0
    assert h.replicas_for(100, 100, 0.5) == 2
    assert h.replicas_for(50, 100, 0.5) == 1


def test_hysteresis_band():
    assert h.with_hysteresis(2, 300, 100, 0.75, 0.1) == 4  # up at once
    assert h.with_hysteresis(4, 140, 100, 0.75, 0.1) == 3  # fits at 0.65 only with 3
    assert h.with_hysteresis(3, 150, 100, 0.75, 0.1) == 3  # 2 would do at 0.75, not at 0.65: hold


def test_cooldown_and_stabilization():
    assert h.cooled_down(10, 0, 10) and not h.cooled_down(9, 0, 10)
    hist = [(0, 5), (50, 2), (100, 3)]
    assert h.stabilized(hist, 100, 60, 6) == 3
    assert h.stabilized(hist, 100, 200, 4) == 4
    assert h.prune(hist, 100, 60) == ((50, 2), (100, 3))
    assert h.step_limited(5, 1, 1) == 4 and h.step_limited(1, 5, 1) == 5


def test_interpolate_and_deadband():
    pts = [(0, 0), (0.5, 0.8), (1, 1)]
    assert h.interpolate(pts, 0.25) == pytest.approx(0.4)
    assert h.interpolate(pts, 2) == 1
    assert h.deadband({"a": 0.5}, {"a": 0.52}, 0.05) and not h.deadband({"a": 0.5}, {"a": 0.6}, 0.05)
    assert not h.deadband({}, {"a": 1}, 0.05)
