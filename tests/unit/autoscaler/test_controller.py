from prometheus_client import CollectorRegistry

from autoscaler.controller import Controller, Metrics
from autoscaler.snapshot import GpuSupply, ModelSignals


class Boom:
    def read(self):
        raise RuntimeError("boom")


class Supply:
    def __init__(self, g):
        self.g = g

    def read(self):
        return GpuSupply(self.g)


class Signals:
    def read(self):
        return {
            "s": ModelSignals(arrival_rps=1, output_tokens_per_s=500, ready_replicas=1),
            "l": ModelSignals(ready_replicas=2),
        }


class Rec:
    def __init__(self, fail=False):
        self.calls, self.fail = [], fail

    def set_replicas(self, t):
        if self.fail:
            raise RuntimeError("actuator down")
        self.calls.append(t)

    def push(self, plan):
        if self.fail:
            raise RuntimeError("router down")
        self.calls.append(plan)


def make(gfleet, supply, signals, rep, rt):
    reg = CollectorRegistry()
    return Controller(gfleet, supply, signals, rep, rt, Metrics(reg), clock=lambda: 0.0), reg


def test_applies_and_exports(gfleet):
    rep, rt = Rec(), Rec()
    ctl, reg = make(gfleet, Supply(16), Signals(), rep, rt)
    plan = ctl.step(0.0)
    assert plan.applied and rep.calls and rt.calls
    assert reg.get_sample_value("petit_autoscaler_gpu_supply") == 16
    assert reg.get_sample_value("petit_route_share", {"tier": "small"}) is not None
    assert reg.get_sample_value("petit_autoscaler_downgrade_share", {"priority": "low"}) == 0.0  # GPUs suffice
    assert (
        sum(
            s.value
            for m in reg.collect()
            if m.name == "petit_autoscaler_decisions"
            for s in m.samples
            if s.name.endswith("_total")
        )
        == 2
    )


def test_a_stale_supply_view_holds_the_fleet(gfleet):
    class StaleSupply:
        def read(self):
            return GpuSupply(8, source="kubernetes", stale_reason="kubernetes API error: 403")

    rep = Rec()
    ctl, _ = make(gfleet, StaleSupply(), Signals(), rep, Rec())
    plan = ctl.step(0.0)
    assert not plan.applied and "403" in plan.reason and not rep.calls


def test_survives_failing_adapters(gfleet):
    rep = Rec()
    ctl, reg = make(gfleet, Boom(), Boom(), rep, Rec(fail=True))
    plan = ctl.step(0.0)
    assert not plan.applied and "stale" in plan.reason and not rep.calls
    ctl2, reg2 = make(gfleet, Supply(16), Signals(), Rec(fail=True), Rec(fail=True))
    assert ctl2.step(0.0).applied
    assert reg2.get_sample_value("petit_autoscaler_adapter_errors_total", {"adapter": "replicas"}) == 1


def test_service_runs_the_loop_in_a_thread_and_serves_the_budget_in_its_unit():
    import json
    import time
    import urllib.request
    from pathlib import Path

    from autoscaler.budget import FixedBudget
    from autoscaler.service import AutoscalerService
    from serving.fleet.schema import load_fleet

    fleet = load_fleet(Path(__file__).resolve().parents[3] / "deploy" / "fleet.local.yaml")
    budget = FixedBudget(None)

    class LocalSignals:
        def read(self):
            return {m: ModelSignals(ready_replicas=1) for m in fleet.model_ids}

    rep = Rec()
    ctl = Controller(fleet, budget, LocalSignals(), rep, None, Metrics(CollectorRegistry()), time.time)
    svc = AutoscalerService(ctl, budget, "127.0.0.1", 0)
    svc.start()
    try:
        deadline = time.monotonic() + 10
        while not rep.calls and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rep.calls, "the loop did not decide"
        port = svc.admin._runner.addresses[0][1]
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/admin/budget",
            data=b'{"gpus": 1}',
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        got = json.load(urllib.request.urlopen(req, timeout=5))
        assert (got["gpus"], got["unit"]) == (1.0, "cpus") and got["changed_at"] is not None
        assert budget.get() == 1.0
        plan = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/plan", timeout=5))["plan"]
        assert set(plan["routing"]["shares"]) <= set(fleet.model_ids) and set(plan["targets"]) == set(fleet.model_ids)
    finally:
        svc.stop()
    assert svc._thread is None  # joined


def test_autoscaler_run_waits_for_ray_then_gives_up_with_a_message(monkeypatch, capsys):
    import ray

    from autoscaler import cli

    calls = []

    def flaky_init(**kw):
        calls.append(kw["address"])
        if len(calls) < 3:
            raise ConnectionError("head not up")

    now = [0.0]
    monkeypatch.setattr(ray, "init", flaky_init)
    assert cli.connect_ray("ray://head:10001", 60, sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    assert calls == ["ray://head:10001"] * 3 and now[0] == 6.0  # waited 2 s, then 4 s

    monkeypatch.setattr(ray, "init", lambda **kw: (_ for _ in ()).throw(ConnectionError("no route")))
    now[0] = 0.0
    assert not cli.connect_ray(
        "ray://head:10001", 10, sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0]
    )
    assert "cannot reach Ray at ray://head:10001" in capsys.readouterr().err


def test_autoscaler_run_needs_a_ray_address(monkeypatch, capsys):
    from pathlib import Path

    from autoscaler import cli

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    fleet = Path(__file__).resolve().parents[3] / "deploy" / "fleet.local.yaml"
    assert cli.main(["autoscaler", "run", "--fleet", str(fleet), "--ray-address", ""]) == 2
    assert "--ray-address" in capsys.readouterr().err


def test_replica_decreases_wait_one_period_for_routing_increases_do_not(gfleet):
    from autoscaler.budget import FixedBudget

    budget, rep, rt = FixedBudget(16), Rec(), Rec()
    ctl, _ = make(gfleet, budget, Signals(), rep, rt)
    first = ctl.step(0.0)
    assert first.targets["l"].replicas == 1 and rep.calls[-1]["l"] == 2  # 2 -> 1 planned, held at 2
    budget.set(4)  # only the small tier fits: the large one must go
    plan = ctl.step(5.0)
    assert plan.targets["l"].replicas == 0 and plan.targets["l"].previous == 1  # 1 -> 0 planned now...
    assert rep.calls[-1]["l"] == 1  # ...so 2 -> 1 is applied, 0 is held this period while routing moves
    assert rt.calls[-1].shares.get("l", 0.0) == 0.0  # traffic already off the large tier
    ctl.step(10.0)
    assert rep.calls[-1]["l"] == plan.targets["l"].replicas  # and applied one period later


def test_a_plan_that_only_follows_the_priority_mix_is_logged_at_debug(gfleet, caplog):
    import logging

    class MixSignals:
        def __init__(self):
            self.low = 1.0

        def read(self):
            self.low += 1.0  # the mix moves every period; nothing else does
            mix = {"low": self.low, "high": 2.0}
            half = dict(arrival_rps=3, input_tokens_per_s=9000, output_tokens_per_s=1800, movable_rps_by_priority=mix)
            return {"s": ModelSignals(ready_replicas=2, **half), "l": ModelSignals(ready_replicas=2, **half)}

    ctl, _ = make(gfleet, Supply(12), MixSignals(), Rec(), Rec())
    with caplog.at_level(logging.DEBUG, "autoscaler.controller"):
        plans = [ctl.step(t) for t in (0.0, 5.0, 10.0)]
    assert plans[1].routing.downgrade_by_priority != plans[2].routing.downgrade_by_priority
    assert plans[2].routing.downgrade_by_priority["low"] > 0
    levels = [r.levelno for r in caplog.records if r.getMessage().startswith("plan ")]
    assert levels[-1] == logging.DEBUG and "downgrade_by_priority" in caplog.records[-1].getMessage()
