"""Serve's policy hook: the pure parts (the hook itself runs in the full-stack autoscaler test)."""

from types import SimpleNamespace

from serving.control.serve_policy import PetitReplicaPolicy, autoscaling_config, planned_replicas, serve_load


def test_planned_replicas_clamps_and_holds_without_a_target():
    assert planned_replicas({}, "l", current_target=2, lower=0, upper=4) == 2
    assert planned_replicas({"l": 0}, "l", 2, 0, 4) == 0
    assert planned_replicas({"l": 9}, "l", 2, 0, 4) == 4
    assert planned_replicas({"l": 0}, "l", 2, 1, 4) == 1
    assert planned_replicas({"l": "x"}, "l", 2, 0, 4) == 2 and planned_replicas({"l": -1}, "l", 2, 0, 4) == 2


def _ctx(**kw):
    base = dict(
        total_num_requests=3.0,
        total_queued_requests=None,
        running_replicas=["r1"],
        current_num_replicas=1,
        target_num_replicas=1,
        capacity_adjusted_min_replicas=0,
        capacity_adjusted_max_replicas=1,
    )
    base.update(kw)
    return SimpleNamespace(**base)


def test_serve_load_reads_the_context():
    assert serve_load(_ctx()) == {
        "requests": 3.0,
        "queued": 0.0,
        "running_replicas": 1,
        "current_replicas": 1,
        "target_replicas": 1,
    }


def test_policy_holds_when_the_board_is_unreachable():
    policy = PetitReplicaPolicy("l")
    policy._poll = lambda ctx: (_ for _ in ()).throw(RuntimeError("no ray"))
    assert policy(_ctx(target_num_replicas=1)) == (1, {})


def test_autoscaling_config_turns_off_serves_own_delays():
    cfg = autoscaling_config("l", 0, 2, 1)
    assert (cfg["min_replicas"], cfg["max_replicas"], cfg["initial_replicas"]) == (0, 2, 1)
    assert cfg["upscale_delay_s"] == cfg["downscale_delay_s"] == 0
    assert cfg["policy"] == {
        "policy_function": "serving.control.serve_policy:PetitReplicaPolicy",
        "policy_kwargs": {"model": "l"},
    }


def test_ray_serve_accepts_the_config_and_loads_the_policy_class():
    from ray.serve.config import AutoscalingConfig

    cfg = AutoscalingConfig(**autoscaling_config("l", 0, 2, 1))
    assert cfg.policy.get_policy().__name__ == "PetitReplicaPolicy"
