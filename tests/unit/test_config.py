from __future__ import annotations

import copy

import pytest

from serving.fleet.schema import FleetConfigError, Tier, load_fleet, parse_fleet
from tests.unit.conftest import ROOT, fleet_dict


@pytest.mark.parametrize("name", ["fleet.local.yaml", "fleet.gpu.example.yaml"])
def test_shipped_fleets_validate(name):
    fleet = load_fleet(ROOT / "deploy" / name)
    assert {m.tier for m in fleet.models} == {Tier.small, Tier.large}
    assert fleet.model_ids


def test_local_fleet_is_the_documented_default():
    fleet = load_fleet(ROOT / "deploy" / "fleet.local.yaml")
    assert [m.source.packaged for m in fleet.models] == ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"]
    assert fleet.server.port == 8000


def _error(data: object) -> str:
    with pytest.raises(FleetConfigError) as exc:
        parse_fleet(data, "my-fleet.yaml")
    return str(exc.value)


def test_unknown_key_names_file_and_key_path():
    data = fleet_dict()
    data["models"][1]["engine"]["max_num_seq"] = 4
    msg = _error(data)
    assert "my-fleet.yaml" in msg
    assert "models[1](id=large).engine.max_num_seq: unknown key" in msg


def test_unknown_top_level_key():
    assert "routng: unknown key" in _error(fleet_dict(routng={}))


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["models"][0].update(tier="huge"), "models[0](id=small).tier"),
        (lambda d: d["models"][0].update(replicas={"min": 3, "max": 1}), "min (3) must be <= max (1)"),
        (lambda d: d["models"][0].update(replicas={"min": 1, "max": 2, "initial": 5}), "initial (5)"),
        (lambda d: d["models"][0].update(source={"path": "/a", "hf": "b/c"}), "exactly one of"),
        (lambda d: d["models"][0].update(source={}), "exactly one of"),
        (lambda d: d["models"][0].update(price_per_replica_hour=-1), "price_per_replica_hour"),
        (lambda d: d["models"][0].update(capacity_tokens_per_s=0), "capacity_tokens_per_s"),
        (lambda d: d["models"][0].update(id="auto"), "reserved"),
        (lambda d: d["models"][0].update(id="bad id!"), "(id=bad id!).id: String should match pattern"),
        (lambda d: d["models"][1].update(id="small"), "appears twice"),
        (lambda d: d.update(models=[]), "models"),
        (lambda d: d["models"][0]["engine"].update(dtype="int3"), "dtype"),
    ],
)
def test_bad_values_are_rejected_with_the_key_path(mutate, expected):
    data = copy.deepcopy(fleet_dict())
    mutate(data)
    assert expected in _error(data)


def test_not_a_mapping():
    assert "must be a mapping" in _error(["models"])


def test_load_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(FleetConfigError, match="nope.yaml: cannot read"):
        load_fleet(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n")
    with pytest.raises(FleetConfigError, match="bad.yaml: not valid YAML"):
        load_fleet(bad)


def test_defaults_and_helpers(fleet, monkeypatch, tmp_path):
    assert fleet.model("large").tier is Tier.large
    assert fleet.model("small").replicas.start == 1
    assert Tier.small.rank < Tier.large.rank
    monkeypatch.setenv("PETIT_CACHE_DIR", str(tmp_path))
    assert fleet.resolved_cache_dir() == tmp_path
    with pytest.raises(KeyError):
        fleet.model("nope")


def test_custom_resources_and_a_cluster_address():
    data = fleet_dict(ray={"address": "10.0.0.1:6379"})
    data["models"][1]["resources"] = {"custom": {"gpu_node": 1}}
    fleet = parse_fleet(data, "t")
    assert fleet.ray.address == "10.0.0.1:6379" and fleet.models[1].resources.custom == {"gpu_node": 1.0}
    data["models"][1]["resources"] = {"custom": {"gpu_node": 0}}
    assert "resources.custom.gpu_node" in _error(data)


def test_model_deployment_asks_ray_for_the_custom_resources():
    from serving.app import _model_deployment

    data = fleet_dict()
    data["models"][1]["resources"] = {"custom": {"gpu_node": 1}}
    large = parse_fleet(data, "t").models[1]
    assert _model_deployment(large).ray_actor_options["resources"] == {"gpu_node": 1.0}
    assert "resources" not in _model_deployment(parse_fleet(fleet_dict(), "t").models[1]).ray_actor_options
