"""Every values case lints, renders, and every rendered object is one the API server accepts."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
from chartlib import CASES, RAYSERVICE_CRD, RELEASE, SERVICEMONITOR_CRD, by_kind, chart_values, one, pod_specs
from crd_schema import K8S_VERSION, CustomResourceValidator, load_crd_schema

CUSTOM_KINDS = {"RayService", "ServiceMonitor"}


@pytest.fixture(scope="module")
def rayservice_validator(k8s_schemas):
    return CustomResourceValidator(load_crd_schema(k8s_schemas / RAYSERVICE_CRD))


@pytest.fixture(scope="module")
def servicemonitor_validator(k8s_schemas):
    return CustomResourceValidator(load_crd_schema(k8s_schemas / SERVICEMONITOR_CRD))


@pytest.mark.parametrize("case", CASES)
def test_lint_strict(helm, case):
    result = helm.lint(*CASES[case])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", CASES)
def test_builtin_objects_pass_kubernetes_schemas(helm, case):
    docs = helm.render(*CASES[case])
    checked = 0
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            where = "/".join(map(str, err.path))
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {where}: {err.message}")
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("case", CASES)
def test_ray_pod_templates_pass_kubernetes_schemas(helm, case):
    """The pod templates inside the RayService, checked as core/v1 PodTemplates too."""
    rayservice = one(helm.render(*CASES[case]), "RayService")
    cluster = rayservice["spec"]["rayClusterConfig"]
    templates = [("head", cluster["headGroupSpec"]["template"])]
    templates += [(g["groupName"], g["template"]) for g in cluster["workerGroupSpecs"]]
    for name, template in templates:
        probe = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}, "template": template}
        try:
            kubernetes_validate.validate(copy.deepcopy(probe), K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{name}: {'/'.join(map(str, err.path))}: {err.message}")


@pytest.mark.parametrize("case", CASES)
def test_rayservice_passes_its_crd(helm, case, rayservice_validator):
    rayservice = one(helm.render(*CASES[case]), "RayService")
    assert rayservice["apiVersion"] == "ray.io/v1"
    assert rayservice_validator.errors(rayservice) == []


def test_servicemonitor_passes_its_crd(helm, servicemonitor_validator):
    monitor = one(helm.render(*CASES["everything"]), "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert servicemonitor_validator.errors(monitor) == []


def test_crd_validator_rejects_what_the_api_server_would(helm, rayservice_validator):
    """The validator itself: unknown fields, wrong types and duplicate list keys are errors."""
    rayservice = copy.deepcopy(one(helm.render(), "RayService"))
    group = rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    group["minReplica"] = 1  # typo of minReplicas
    group["replicas"] = "one"
    container = group["template"]["spec"]["containers"][0]
    container["env"].append(dict(container["env"][0]))
    errors = "\n".join(rayservice_validator.errors(rayservice))
    assert "'minReplica' was unexpected" in errors
    assert "'one' is not of type 'integer'" in errors
    assert "duplicate entry" in errors


def test_crd_defaults_fill_required_worker_bounds(rayservice_validator, helm):
    """workerGroupSpecs require min/maxReplicas, but the API server defaults them first."""
    rayservice = copy.deepcopy(one(helm.render(), "RayService"))
    group = rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    del group["minReplicas"], group["maxReplicas"]
    group["numOfHosts"] = None  # nulls are dropped, not type errors
    assert rayservice_validator.errors(rayservice) == []


@pytest.mark.parametrize("case", CASES)
def test_pods_are_locked_down(helm, case):
    """Non-root, no privilege escalation, no capabilities, read-only root, requests and limits."""
    for name, spec in pod_specs(helm.render(*CASES[case])):
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, name
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        for c in spec["containers"]:
            where = f"{name}/{c['name']}"
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert sc.get("readOnlyRootFilesystem") is True, where
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c.get("resources", {}).get(kind, {})), f"{where}: {kind}"


@pytest.mark.parametrize("case", CASES)
def test_writable_dirs_are_volumes(helm, case):
    """With a read-only root, Ray pods get emptyDirs for /tmp (Ray, HOME) and /dev/shm."""
    rayservice = one(helm.render(*CASES[case]), "RayService")
    for name, spec in pod_specs([rayservice]):
        mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert {"/tmp", "/dev/shm"} <= mounts, name
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["HOME"] == "/tmp", name


@pytest.mark.parametrize("case", CASES)
def test_chart_never_renders_secret_values(helm, case):
    """The chart's Secrets are values it generates (the Ray token, the tenants' Redis password), unless given."""
    docs = helm.render(*CASES[case])
    values = chart_values(*CASES[case])
    expected = {}
    if not values["ray"]["auth"]["existingSecret"]:
        expected[f"{RELEASE}-ray-token"] = {"auth_token"}
    redis = values["tenantStore"]["redis"]
    in_chart = values["fleet"].get("tenants") and values["fleet"].get("tenant_store", {}).get("kind") == "redis"
    if in_chart and not redis["existingSecret"] and not redis["auth"]["existingSecret"]:
        expected[f"{RELEASE}-tenant-redis"] = {redis["auth"]["key"]}
    assert {s["metadata"]["name"]: set(s["data"]) for s in by_kind(docs, "Secret")} == expected
