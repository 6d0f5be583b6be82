import pytest

from serving.fleet.schema import FleetConfigError, parse_fleet
from tests.unit.autoscaler.conftest import gpu_fleet_dict


def test_defaults_and_fields():
    f = parse_fleet(gpu_fleet_dict(period_s=2, gpu_source={"kind": "fixed", "gpus": 8}), "t")
    assert f.autoscaler.period_s == 2 and f.autoscaler.gpu_source.gpus == 8


@pytest.mark.parametrize(
    "auto, msg",
    [
        ({"gpu_source": {"kind": "fixed", "gpus": 8, "gpus_per_node": [2]}}, "largest node has 2"),
        ({"scaling": {"scale_up_cooldown_s": 100, "scale_down_cooldown_s": 10}}, "scale-down is slower"),
        ({"quality": {"nope": 1}}, "neither a model id nor a tier"),
        ({"router_quality_curve": [[0, 0], [0.5, 0.2]]}, "end at (1, 1)"),
        ({"gpu_source": {"kind": "ray", "gpus": 3}}, "only for kind=fixed"),
        ({"period": 3}, "unknown key"),
    ],
)
def test_contradictions_rejected(auto, msg):
    with pytest.raises(FleetConfigError, match=__import__("re").escape(msg)):
        parse_fleet(gpu_fleet_dict(**auto), "f.yaml")


def test_min_above_max_rejected():
    d = gpu_fleet_dict()
    d["models"][0]["replicas"] = {"min": 5, "max": 2}
    with pytest.raises(FleetConfigError, match="min"):
        parse_fleet(d, "f.yaml")
