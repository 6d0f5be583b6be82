"""Bad values fail `helm lint --strict` and `helm template` with a message naming the problem."""

from __future__ import annotations

import copy

import pytest
import yaml
from chartlib import CASES, chart_values

SCHEMA = "values don't meet the specifications of the schema"


def _model(**changes):
    model = copy.deepcopy(chart_values()["fleet"]["models"][0])
    model.update(changes)
    return model


def _gpu_fleet_with(extra_model):
    """The GPU example fleet with one more model appended."""
    values = chart_values(*CASES["gpu-example"])
    fleet = copy.deepcopy(values["fleet"])
    fleet["models"].append(extra_model)
    return {"fleet": fleet, "workerGroups": values["workerGroups"]}


TENANT = {"name": "alpha", "key_sha256": ["e49052cb77a35e3ebf86f7d184651dbf07b0fc8707d8ecb748fbf759b0a1d129"]}

# name -> (values layered over the chart defaults, text the error must contain)
BAD_VALUES = {
    "typo-in-model-key": (
        {"fleet": {"models": [{**_model(), "replica": {"min": 1}}]}},
        "additional properties 'replica' not allowed",
    ),
    "typo-in-engine-key": (
        {"fleet": {"models": [_model(engine={"max_model_length": 4096})]}},
        "additional properties 'max_model_length' not allowed",
    ),
    "typo-in-top-level-value": ({"autoscalr": {"enabled": False}}, "additional properties 'autoscalr' not allowed"),
    "typo-in-image-key": ({"image": {"imagePullPolicy": "Always"}}, "'imagePullPolicy' not allowed"),
    "invalid-service-type": ({"service": {"type": "LoadBalancr"}}, "'/service/type': value must be one of"),
    "bad-model-id": ({"fleet": {"models": [_model(id="Bad id!")]}}, "/fleet/models/0/id"),
    "bad-tier": ({"fleet": {"models": [_model(tier="huge")]}}, "/fleet/models/0/tier"),
    "model-list-empty": ({"fleet": {"models": []}}, "/fleet/models"),
    "literal-secret-in-values": (
        {"secrets": {"hfToken": {"existingSecret": "", "key": "token", "value": "hf_abc"}}},
        "additional properties 'value' not allowed",
    ),
    "gpu-on-the-head": (
        {"ray": {"head": {"resources": {"requests": {"cpu": 1, "memory": "4Gi", "nvidia.com/gpu": 1}}}}},
        "'nvidia.com/gpu' not allowed",
    ),
    "cpu-model-on-a-gpu-only-fleet": (
        _gpu_fleet_with({**_model(id="cpu-helper")}),
        "fleet.models[id=cpu-helper] (gpus: 0, cpus: 1) has no worker group",
    ),
    "model-larger-than-every-group": (
        _gpu_fleet_with({**_model(id="llama-405b"), "resources": {"gpus": 8, "cpus": 16}}),
        "fleet.models[id=llama-405b] (gpus: 8, cpus: 16) has no worker group",
    ),
    "model-needs-more-cpus-than-its-group": (
        {"fleet": {"models": [_model(resources={"gpus": 0, "cpus": 4})]}},
        "add a CPU group (gpus: 0) and cpus >= 4",
    ),
    "replicas-min-above-max": (
        {"fleet": {"models": [_model(replicas={"min": 3, "max": 1})]}},
        "replicas: min must be <= max",
    ),
    "two-model-sources": (
        {"fleet": {"models": [_model(source={"packaged": "smollm2-135m-instruct", "hf": "x/y"})]}},
        "set exactly one of packaged, path, hf",
    ),
    "worker-bounds-out-of-order": (
        {
            "workerGroups": [
                {"name": "cpu", "gpus": 0, "cpus": 1, "memoryGib": 7, "replicas": 3, "minReplicas": 1, "maxReplicas": 2}
            ]
        },
        "need minReplicas <= replicas <= maxReplicas",
    ),
    "fractional-worker-gpus": (
        {
            "workerGroups": [
                {"name": "g", "gpus": 0.5, "cpus": 1, "memoryGib": 7, "replicas": 1, "minReplicas": 1, "maxReplicas": 1}
            ]
        },
        "/workerGroups/0/gpus",
    ),
    "ingress-fits-nowhere": ({"serve": {"ingress": {"cpus": 4}}}, "serve.ingress.cpus (4) fits neither the head"),
    "pvc-cache-without-claim": ({"modelCache": {"type": "pvc"}}, "modelCache.existingClaim is required"),
    "networkpolicy-without-operator-namespace": (
        {"networkPolicy": {"kuberayOperatorNamespace": ""}},
        "networkPolicy.kuberayOperatorNamespace is required",
    ),
    "servicemonitor-shut-out-by-networkpolicy": (
        {"monitoring": {"serviceMonitor": {"enabled": True}}},
        "networkPolicy.metricsFrom is empty",
    ),
    "gcs-fault-tolerance-without-redis": (
        {"ray": {"gcsFaultTolerance": {"enabled": True}}},
        "ray.gcsFaultTolerance.enabled needs ray.gcsFaultTolerance.redisAddress",
    ),
    "typo-in-ray-auth": ({"ray": {"auth": {"enable": False}}}, "additional properties 'enable' not allowed"),
    "ray-token-secret-bad-name": ({"ray": {"auth": {"existingSecret": "Not_A_Name"}}}, "/ray/auth/existingSecret"),
    "bad-redis-address": (
        {"ray": {"gcsFaultTolerance": {"enabled": True, "redisAddress": "redis host:6379"}}},
        "/ray/gcsFaultTolerance/redisAddress",
    ),
    "pods-in-all-namespaces-not-boolean": (
        {"autoscaler": {"podsInAllNamespaces": "yes"}},
        "/autoscaler/podsInAllNamespaces",
    ),
    "tenants-on-sqlite": (
        {"fleet": {"tenants": [TENANT], "tenant_store": {"kind": "sqlite"}}},
        "fleet.tenant_store.kind is sqlite, a file of one node",
    ),
    "tenant-redis-secret-unused": (
        {"fleet": {"tenants": [TENANT]}, "tenantStore": {"redis": {"existingSecret": "petit-tenant-redis-url"}}},
        "tenantStore.redis.existingSecret is set but fleet.tenant_store.kind is memory",
    ),
    "tenant-redis-url-in-values": (
        {"tenantStore": {"redis": {"url": "redis://:secret@redis:6379/0"}}},
        "additional properties 'url' not allowed",
    ),
    "tenant-redis-password-in-values": (
        {"tenantStore": {"redis": {"auth": {"existingSecret": "", "key": "password", "password": "secret"}}}},
        "additional properties 'password' not allowed",
    ),
    "typo-in-tenant-store": (
        {"tenantStore": {"redis": {"persistance": {"enabled": False}}}},
        "additional properties 'persistance' not allowed",
    ),
    "tenant-redis-bad-size": (
        {"tenantStore": {"redis": {"persistence": {"enabled": True, "size": "two gigs"}}}},
        "/tenantStore/redis/persistence/size",
    ),
    "tenant-redis-secret-bad-name": (
        {"tenantStore": {"redis": {"existingSecret": "Bad_Name"}}},
        "/tenantStore/redis/existingSecret",
    ),
    "bad-servicemonitor-interval": (
        {
            "monitoring": {"serviceMonitor": {"enabled": True, "interval": "30 seconds"}},
            "networkPolicy": {"metricsFrom": [{"namespaceSelector": {}}]},
        },
        "/monitoring/serviceMonitor/interval",
    ),
}


@pytest.fixture
def values_file(tmp_path):
    def write(values: dict) -> str:
        path = tmp_path / "bad-values.yaml"
        path.write_text(yaml.safe_dump(values))
        return str(path)

    return write


@pytest.mark.parametrize("name", BAD_VALUES)
def test_bad_values_fail_template_with_a_clear_message(helm, values_file, name):
    values, message = BAD_VALUES[name]
    result = helm.template(values_file(values))
    assert result.returncode != 0, f"{name}: rendered without error"
    assert message in result.stderr, result.stderr


# Schema cases only: Helm 4's lint renders `fail` leniently (it logs the message
# and passes), so cross-field checks show at `helm template`/`install`, as tested above.
@pytest.mark.parametrize(
    "name",
    ["typo-in-model-key", "invalid-service-type", "literal-secret-in-values", "tenant-redis-url-in-values"],
)
def test_bad_values_fail_lint(helm, values_file, name):
    values, message = BAD_VALUES[name]
    result = helm.lint(values_file(values))
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_schema_errors_come_from_the_schema(helm, values_file):
    """Typos are caught by values.schema.json, before any template runs."""
    result = helm.template(values_file(BAD_VALUES["typo-in-model-key"][0]))
    assert SCHEMA in result.stderr
