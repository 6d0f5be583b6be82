from dataclasses import replace

import pytest

from autoscaler.policy import decide, initial_state
from autoscaler.snapshot import GpuSupply, ModelSignals, ScalingSnapshot
from serving.fleet.schema import parse_fleet
from tests.unit.autoscaler.conftest import gpu_fleet_dict


def snap(gpus, t, rs=1, rl=2, out=1200.0, inp=6000.0, stale=False):
    half = dict(arrival_rps=3, input_tokens_per_s=inp / 2, output_tokens_per_s=out / 2)
    return ScalingSnapshot(
        {"s": ModelSignals(ready_replicas=rs, **half), "l": ModelSignals(ready_replicas=rl, **half)},
        GpuSupply(gpus),
        t,
        stale=stale,
    )


def run(fleet, seq):
    st, plans = initial_state(fleet), []
    for s in seq:
        p, st = decide(s, fleet, st, s.taken_at)
        plans.append(p)
    return plans


def test_bounds_and_budget_always_hold(gfleet):
    for g in (4, 5, 8, 13, 16, 40):
        for p in run(gfleet, [snap(g, t * 5.0) for t in range(10)]):
            assert p.gpus_planned <= g
            for m in gfleet.models:
                assert m.replicas.min <= p.targets[m.id].replicas <= m.replicas.max
            assert p.targets["s"].reason and p.routing.reason


def test_scarcity_shifts_traffic_to_small_first(gfleet):
    plans = run(gfleet, [snap(16, 0), snap(16, 5), snap(5, 10, rl=1), snap(5, 15, rl=1)])
    before, after = plans[1], plans[2]
    assert after.gpus_planned <= 5
    assert after.routing.strong_share < before.routing.strong_share


def test_prefers_goodput_per_gpu_when_overloaded(gfleet):
    # 4 GPUs, heavy load: four small replicas beat one large one
    p = run(gfleet, [snap(4, 0, rs=1, rl=0, out=20000, inp=60000)])[0]
    assert p.targets["s"].replicas == 4 and p.targets["l"].replicas == 0
    assert "overload" in p.reason


def test_stale_never_scales(gfleet):
    st = initial_state(gfleet)
    p, st2 = decide(snap(1, 0, stale=True), gfleet, st, 0)
    assert not p.applied and "stale" in p.reason
    assert {m: t.replicas for m, t in p.targets.items()} == {"s": 1, "l": 2}
    p, _ = decide(snap(16, 0), gfleet, st, 100)  # too old: 100 s > max_signal_age_s
    assert not p.applied


def test_budget_below_minimum_keeps_minimum():
    d = gpu_fleet_dict()
    d["models"][1]["replicas"] = {"min": 1, "max": 2}
    f = parse_fleet(d, "t")
    p = run(f, [snap(2, 0)])[0]
    assert "budget_below_minimum" in p.reason
    assert p.targets["s"].replicas == 1 and p.targets["l"].replicas == 1


def test_scale_down_slower_than_up(gfleet):
    hi = dict(out=6000, inp=30000)
    plans = run(gfleet, [snap(40, 0, rs=1, rl=2, **hi), snap(40, 5, **hi), snap(40, 10), snap(40, 15)])
    up = plans[0].targets["l"].replicas + plans[0].targets["s"].replicas
    assert up > 3
    assert plans[2].targets == plans[2].targets and plans[3].targets["l"].replicas >= plans[2].targets["l"].replicas - 1
    assert "hold" in plans[3].targets["l"].reason or "hold" in plans[3].targets["s"].reason


def test_cold_start_bridged_by_small(gfleet):
    # large replicas planned but none ready: traffic must go to the small tier
    p = run(gfleet, [snap(16, 0, rs=1, rl=0)])[0]
    assert p.routing.shares.get("l", 0) == 0 and p.routing.shares["s"] == 1
    assert "bridge" in p.reason or p.targets["s"].replicas >= 1


def test_cpu_budget_on_the_embedded_fleet_moves_auto_to_small_and_back():
    """The live check's plan, decided purely: deploy/fleet.local.yaml counts CPU cores."""
    from pathlib import Path

    from autoscaler.routing_bridge import routing_changes
    from serving.fleet.schema import load_fleet

    fleet = load_fleet(Path(__file__).resolve().parents[3] / "deploy" / "fleet.local.yaml")
    small, large = fleet.model_ids
    state, t = initial_state(fleet), 0.0
    ready = {small: 1, large: 1}

    def step(budget):
        nonlocal state, t, ready
        sig = {
            m: ModelSignals(arrival_rps=0.5, input_tokens_per_s=50, output_tokens_per_s=30, ready_replicas=ready[m])
            for m in ready
        }
        plan, state = decide(ScalingSnapshot(sig, GpuSupply(budget), t), fleet, state, t)
        t += 20
        return plan

    p = step(2)
    assert {m: x.replicas for m, x in p.targets.items()} == {small: 1, large: 1}
    assert routing_changes(p.routing)["allowed_tiers"] is None  # normal: the router decides
    p = step(1)
    assert p.reason.startswith("gpu_scarcity") and "1 CPUs" in p.reason
    assert p.targets[large].replicas == 0 and p.routing.shares == {small: 1.0}
    assert routing_changes(p.routing) == {
        "allowed_tiers": ["small"],
        "strong_share": 0.0,
        "downgrade_share": 0.0,
        "downgrade_share_by_priority": None,
    }
    ready = {small: 1, large: 0}
    p = step(2)
    assert p.targets[large].replicas == 1
    assert routing_changes(p.routing)["allowed_tiers"] == ["small"]  # large still starting: traffic waits
    ready = {small: 1, large: 1}
    p = step(2)
    assert routing_changes(p.routing)["allowed_tiers"] is None  # large ready: traffic goes back


def _signals(rs, rl, pending_l, out, inp):
    half = dict(arrival_rps=3, input_tokens_per_s=inp / 2, output_tokens_per_s=out / 2)
    return {
        "s": ModelSignals(ready_replicas=rs, **half),
        "l": ModelSignals(ready_replicas=rl, pending_replicas=pending_l, **half),
    }


def test_overload_period_does_not_stop_a_starting_large_replica(gfleet):
    """The flap of issue 13: a 70B replica has been starting for minutes when one period's
    demand spikes into overload; the plan must add small replicas around it, not stop it."""
    st, t = initial_state(gfleet), 0.0
    for _ in range(45):  # 3.75 min: the plan keeps one large replica, which is still starting
        p, st = decide(ScalingSnapshot(_signals(2, 0, 1, 2000, 10000), GpuSupply(8), t), gfleet, st, t)
        t += 5
    assert p.targets["l"].replicas == 1
    p, st = decide(ScalingSnapshot(_signals(2, 0, 1, 40000, 100000), GpuSupply(8), t), gfleet, st, t)
    assert "overload" in p.reason
    assert p.targets["l"].replicas == 1, p.targets["l"].reason  # capacity on its way: kept
    assert p.targets["s"].replicas == 4 and p.gpus_planned == 8  # the rest of the budget goes to small
    for _ in range(40):  # overload persists: the starting replica is still not stopped by choice
        t += 5
        p, st = decide(ScalingSnapshot(_signals(4, 0, 1, 40000, 100000), GpuSupply(8), t), gfleet, st, t)
        assert p.targets["l"].replicas == 1
    t += 5  # the budget shrinks to 4: now the budget forces it
    p, st = decide(ScalingSnapshot(_signals(4, 0, 1, 40000, 100000), GpuSupply(4), t), gfleet, st, t)
    assert p.targets["l"].replicas == 0 and p.targets["s"].replicas == 4


def test_no_budget_unit_idle_in_overload():
    """Issue 13: after an overload burst the budget came back to 2 and one plan held 1 of 2 units
    idle (the backlog is queued on the small model, which is at its max). Demand above what the
    budget carries: every unit holds a replica."""
    d = gpu_fleet_dict()
    d["models"][0]["replicas"] = {"min": 1, "max": 1}
    d["models"][1]["resources"] = {"gpus": 1}
    d["models"][1]["replicas"] = {"min": 0, "max": 1, "initial": 1}
    f = parse_fleet(d, "t")
    st = initial_state(f)
    st = replace(st, models={**st.models, "l": replace(st.models["l"], target=0)})
    sig = {"s": ModelSignals(queue_depth=2000, ready_replicas=1), "l": ModelSignals()}
    p, _ = decide(ScalingSnapshot(sig, GpuSupply(2), 0.0), f, st, 0.0)
    assert "overload" in p.reason
    assert p.gpus_planned == 2, p.summary()


def test_a_shrinking_budget_downgrades_low_priority_first_and_high_last(gfleet):
    """Scarcity by priority: the plan's downgrade share is split low first; the mix-weighted mean is kept."""
    from autoscaler.routing_bridge import routing_changes

    mix = {"low": 1.0, "normal": 2.0, "high": 1.0}
    seen, plans = [], []
    for gpus in (16, 12, 8, 5):
        s = snap(gpus, 0, rs=2, rl=gpus // 4, out=3600, inp=18000)
        s = replace(s, models={m: replace(v, movable_rps_by_priority=mix) for m, v in s.models.items()})
        p = run(gfleet, [s])[0]
        by, down = p.routing.downgrade_by_priority, p.routing.downgrade_share
        assert by["low"] >= by["normal"] >= by["high"]
        assert sum(mix[k] * by[k] for k in mix) / sum(mix.values()) == pytest.approx(down)
        assert p.summary()["routing"]["downgrade_by_priority"] == pytest.approx(by, abs=1e-4)
        seen.append(by)
        plans.append(p)
    assert seen[0] == dict.fromkeys(mix, 0.0)  # GPUs suffice: nobody is downgraded
    assert 0 < seen[1]["low"] < 1 and seen[1]["high"] == 0  # a small cut: low only
    assert seen[2]["low"] == 1 and seen[2]["normal"] > 0 and seen[2]["high"] == 0  # deeper: normal too
    assert seen[3]["high"] > 0  # the large tier closes last for high
    by_8 = plans[2].routing.downgrade_by_priority
    ch = routing_changes(plans[2].routing)  # what every ingress gets: the unconstrained strong share, cut by class
    assert ch["downgrade_share_by_priority"] == by_8 and ch["strong_share"] == pytest.approx(
        plans[2].routing.strong_share / (1 - plans[2].routing.downgrade_share)
    )
