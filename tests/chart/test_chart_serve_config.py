"""serveConfigV2 is the fleet: the application contract, and room in the worker groups for it."""

from __future__ import annotations

import math

import pytest
import yaml
from chartlib import CASES, REPO, VALUES_DIR, chart_values, one, serve_config, worker_groups

from serving.fleet.helm_values import fleet_to_values, render_values, replicas_per_pod
from serving.fleet.schema import FleetConfig, ModelConfig, load_fleet, parse_fleet

GPU = "nvidia.com/gpu"


def _fleet(case: str) -> FleetConfig:
    return parse_fleet(chart_values(*CASES[case])["fleet"], f"values case {case}")


def _groups(rayservice: dict) -> list[dict]:
    """Worker groups as Ray sees them: GPUs, CPUs and pod bounds."""
    out = []
    for g in worker_groups(rayservice):
        params = g["rayStartParams"]
        out.append(
            {
                "name": g["groupName"],
                "gpus": int(params["num-gpus"]),
                "cpus": float(params["num-cpus"]),
                "max": g["maxReplicas"],
                "container": g["template"]["spec"]["containers"][0],
            }
        )
    return out


def _holders(model: ModelConfig, groups: list[dict]) -> list[dict]:
    """Groups of the model's kind (CPU or GPU) with room for one replica."""
    gpus, cpus = model.resources.gpus, model.resources.cpus
    return [g for g in groups if (g["gpus"] == 0) == (gpus == 0) and g["gpus"] >= gpus and g["cpus"] >= cpus]


@pytest.mark.parametrize("case", CASES)
def test_application_contract(helm, case):
    config = serve_config(one(helm.render(*CASES[case]), "RayService"))
    (app,) = config["applications"]
    assert app["name"] == "petit"
    assert app["route_prefix"] == "/"
    assert app["import_path"] == "serving.app:build_app_from_args"
    assert set(app["args"]) == {"fleet"}


@pytest.mark.parametrize("case", CASES)
def test_ray_serve_accepts_the_config(helm, case):
    """Ray Serve's own schema for `serve deploy` configs (import only; no Ray started)."""
    schema = pytest.importorskip("ray.serve.schema", reason="ray[serve] not installed")
    config = serve_config(one(helm.render(*CASES[case]), "RayService"))
    parsed = schema.ServeDeploySchema.model_validate(config)
    assert [a.name for a in parsed.applications] == ["petit"]


@pytest.mark.parametrize("case", CASES)
def test_fleet_argument_is_the_values_fleet(helm, case):
    """args.fleet and the autoscaler's fleet.yaml are the `fleet` value, key for key, and valid."""
    docs = helm.render(*CASES[case])
    expected = chart_values(*CASES[case])["fleet"]
    args_fleet = serve_config(one(docs, "RayService"))["applications"][0]["args"]["fleet"]
    assert args_fleet == expected
    parse_fleet(args_fleet, "serveConfigV2 args.fleet")
    configmaps = {c["metadata"]["name"]: c for c in docs if c["kind"] == "ConfigMap"}
    assert yaml.safe_load(configmaps["petit-fleet"]["data"]["fleet.yaml"]) == expected


@pytest.mark.parametrize("case", CASES)
def test_one_deployment_per_model(helm, case):
    fleet = _fleet(case)
    app = serve_config(one(helm.render(*CASES[case]), "RayService"))["applications"][0]
    deployments = {d["name"]: d for d in app["deployments"]}
    assert set(deployments) == {"PetitIngress"} | {f"model-{m.id}" for m in fleet.models}
    for m in fleet.models:
        d = deployments[f"model-{m.id}"]
        # replica counts belong to the code's autoscaling_config (Petit's policy hook), not to the config
        assert "num_replicas" not in d and "autoscaling_config" not in d, m.id
        custom = {"resources": m.resources.custom} if m.resources.custom else {}  # node pools (e.g. everything.yaml)
        assert d["ray_actor_options"] == {"num_gpus": m.resources.gpus, "num_cpus": m.resources.cpus, **custom}, m.id


@pytest.mark.parametrize("case", CASES)
def test_every_model_has_a_worker_group_that_holds_it(helm, case):
    fleet = _fleet(case)
    groups = _groups(one(helm.render(*CASES[case]), "RayService"))
    for m in fleet.models:
        assert _holders(m, groups), f"{case}: no worker group can hold a replica of {m.id} ({m.resources})"


@pytest.mark.parametrize("case", CASES)
def test_starting_replicas_fit_the_groups(helm, case):
    """At deploy time every model's replicas fit in its groups' maximum pod count."""
    fleet = _fleet(case)
    groups = _groups(one(helm.render(*CASES[case]), "RayService"))
    pods_needed: dict[str, int] = {}
    for m in fleet.models:
        home = min(_holders(m, groups), key=lambda g: (g["gpus"], g["cpus"]))
        pods_needed[home["name"]] = pods_needed.get(home["name"], 0) + math.ceil(m.replicas.start / replicas_per_pod(m))
    for g in groups:
        assert pods_needed.get(g["name"], 0) <= g["max"], f"{case}: group {g['name']} too small"


@pytest.mark.parametrize("case", CASES)
def test_gpu_requests_match_ray_and_tolerate_gpu_taints(helm, case):
    rayservice = one(helm.render(*CASES[case]), "RayService")
    head = rayservice["spec"]["rayClusterConfig"]["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    head_resources = head["template"]["spec"]["containers"][0]["resources"]
    assert all(GPU not in head_resources.get(k, {}) for k in ("requests", "limits"))
    for g in worker_groups(rayservice):
        gpus = int(g["rayStartParams"]["num-gpus"])
        spec = g["template"]["spec"]
        resources = spec["containers"][0]["resources"]
        tolerated = {t.get("key") for t in spec.get("tolerations", [])}
        if gpus:
            assert resources["requests"][GPU] == resources["limits"][GPU] == str(gpus), g["groupName"]
            assert GPU in tolerated, g["groupName"]
        else:
            assert GPU not in resources["requests"] and GPU not in resources["limits"], g["groupName"]
            assert GPU not in tolerated, g["groupName"]
        assert resources["requests"] == resources["limits"], f"{g['groupName']}: not Guaranteed QoS"
        assert str(resources["requests"]["cpu"]) == g["rayStartParams"]["num-cpus"], g["groupName"]


def test_scheduling_values_reach_the_pods(helm):
    rayservice = one(helm.render(*CASES["everything"]), "RayService")
    cluster = rayservice["spec"]["rayClusterConfig"]
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert head["nodeSelector"] == {"node-pool": "system"}
    groups = {g["groupName"]: g["template"]["spec"] for g in cluster["workerGroupSpecs"]}
    assert groups["cpu"]["nodeSelector"] == {"kubernetes.io/os": "linux", "node-pool": "cpu"}
    assert groups["gpu-1"]["nodeSelector"] == {"kubernetes.io/os": "linux", "nvidia.com/gpu.present": "true"}
    gpu_keys = [t["key"] for t in groups["gpu-1"]["tolerations"]]
    assert gpu_keys == ["nvidia.com/gpu", "nvidia.com/gpu.shared", "dedicated", "cloud.google.com/gke-spot"]
    assert [t["key"] for t in groups["cpu"]["tolerations"]] == ["dedicated"]


def test_gpu_example_values_are_generated_from_the_fleet_file(monkeypatch):
    """tests/chart/values/gpu-example.yaml is `petit helm-values deploy/fleet.gpu.example.yaml`."""
    monkeypatch.chdir(REPO)  # the header names the fleet file by its relative path
    committed = (VALUES_DIR / "gpu-example.yaml").read_text()
    fresh = render_values("deploy/fleet.gpu.example.yaml")
    assert committed == fresh, (
        "regenerate: python -m serving.fleet.helm_values deploy/fleet.gpu.example.yaml -o tests/chart/values/gpu-example.yaml"
    )


def test_kind_values_carry_the_local_fleet():
    """deploy/kind/values-cpu.yaml serves exactly the fleet `make run` serves."""
    kind = yaml.safe_load((REPO / "deploy" / "kind" / "values-cpu.yaml").read_text())
    generated = fleet_to_values(load_fleet(REPO / "deploy" / "fleet.local.yaml"))
    assert {k: kind[k] for k in generated} == generated, (
        "update the fleet/workerGroups part: python -m serving.fleet.helm_values deploy/fleet.local.yaml"
    )


def test_a_models_custom_resources_are_advertised_by_a_worker_group(helm):
    """resources.custom pins a model to the pods of a group whose rayResources name the same resource."""
    import json

    rs = one(helm.render(*CASES["everything"]), "RayService")
    params = {g["groupName"]: g["rayStartParams"] for g in rs["spec"]["rayClusterConfig"]["workerGroupSpecs"]}
    # KubeRay passes the value to `ray start --resources=...` as is: a quoted JSON string
    advertised = {n: json.loads(json.loads(p["resources"])) for n, p in params.items() if "resources" in p}
    assert advertised == {"gpu-1": {"pool_h100": 1}}
    app = serve_config(rs)["applications"][0]
    needed = {d["name"]: d["ray_actor_options"].get("resources") for d in app["deployments"]}
    assert {k: v for k, v in needed.items() if v} == {"model-llama-3.1-8b": {"pool_h100": 1}}
