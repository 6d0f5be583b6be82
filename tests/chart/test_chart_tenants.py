"""The tenants' store on Kubernetes: the chart's Redis (AOF, PVC, password Secret, NetworkPolicy) or yours.

Off unless the fleet has tenants with `tenant_store.kind: redis`; the Ray pods (where the
ingress runs) get the URL in the variable the fleet names, from a Secret only.
"""

from __future__ import annotations

import base64

import pytest
import yaml
from chartlib import CASES, RELEASE, by_kind, pod_specs

REDIS = f"{RELEASE}-tenant-redis"
SELECTOR = {"app.kubernetes.io/name": "petit", "app.kubernetes.io/instance": RELEASE}
RAY_COMPONENTS = [{"key": "app.kubernetes.io/component", "operator": "In", "values": ["ray-head", "ray-worker"]}]
TENANT = {"name": "alpha", "key_sha256": ["e49052cb77a35e3ebf86f7d184651dbf07b0fc8707d8ecb748fbf759b0a1d129"]}


def _write(tmp_path, values, name="values.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values))
    return path


def _named(docs, kind, name):
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: found {len(found)}"
    return found[0]


def _ray_envs(docs):
    """(pod name, env list) of every Ray container: head and each worker group."""
    return [(name, spec["containers"][0]["env"]) for name, spec in pod_specs(docs) if name.startswith("RayService/")]


def _tenant_objects(docs):
    return [d for d in docs if d["metadata"]["name"].startswith(REDIS)]


@pytest.mark.parametrize(
    "fleet_part",
    [
        {},  # no tenants at all
        {"tenant_store": {"kind": "redis"}},  # a redis store but no tenant: nothing uses it
        {"tenants": [TENANT]},  # tenants on the in-process store
    ],
    ids=["no-tenants", "redis-store-without-tenants", "memory-store"],
)
def test_no_redis_unless_tenants_use_a_redis_store(helm, tmp_path, fleet_part):
    docs = helm.render(_write(tmp_path, {"fleet": fleet_part}))
    assert _tenant_objects(docs) == []
    assert by_kind(docs, "StatefulSet") == []
    for name, env in _ray_envs(docs):
        assert not {"PETIT_REDIS_URL", "PETIT_TENANT_REDIS_PASSWORD"} & {e["name"] for e in env}, name


def test_chart_redis_runs_the_official_image_with_aof_on_a_pvc(helm):
    docs = helm.render(*CASES["tenants"])
    sts = _named(docs, "StatefulSet", REDIS)
    assert sts["spec"]["replicas"] == 1 and sts["spec"]["serviceName"] == REDIS
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"].startswith("redis:")
    script = container["args"][0]
    assert "redis-server" in script and "--appendonly yes" in script and "--dir /data" in script
    assert "$REDIS_PASSWORD" in script and "requirepass" in script  # from the env, via a file: not on argv
    assert {"name": "redis", "containerPort": 6379, "protocol": "TCP"} in container["ports"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"data": "/data", "run": "/run/redis"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["nodeSelector"] == {"node-pool": "system"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert "data" not in {v["name"] for v in pod["volumes"]}
    for probe in ("readinessProbe", "livenessProbe"):
        assert "redis-cli" in " ".join(container[probe]["exec"]["command"])  # password from REDISCLI_AUTH


def test_chart_redis_password_is_generated_and_reaches_ray_pods_only_by_reference(helm):
    result = helm.template(*CASES["tenants"])
    docs = result.docs
    secret = _named(docs, "Secret", REDIS)
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert len(password) == 40 and password.isalnum()
    assert password not in result.stdout  # only its base64 form is rendered
    container = _named(docs, "StatefulSet", REDIS)["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert refs == {name: {"name": REDIS, "key": "password"} for name in ("REDIS_PASSWORD", "REDISCLI_AUTH")}
    envs = _ray_envs(docs)
    assert len(envs) == 2  # the head and the CPU worker group
    for name, env in envs:
        names = [e["name"] for e in env]
        by_name = {e["name"]: e for e in env}
        assert by_name["PETIT_TENANT_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": REDIS, "key": "password"}
        url = by_name["PETIT_REDIS_URL"]["value"]
        assert url == f"redis://:$(PETIT_TENANT_REDIS_PASSWORD)@{REDIS}:6379/0", name
        # the kubelet expands $(VAR) only from variables defined before it
        assert names.index("PETIT_TENANT_REDIS_PASSWORD") < names.index("PETIT_REDIS_URL"), name
    autoscaler = _named(docs, "Deployment", f"{RELEASE}-autoscaler")["spec"]["template"]["spec"]["containers"][0]
    assert "PETIT_REDIS_URL" not in {e["name"] for e in autoscaler["env"]}  # only the ingress uses the store


def test_chart_redis_service_and_network_policy_admit_only_the_releases_ray_pods(helm):
    docs = helm.render(*CASES["tenants"])
    service = _named(docs, "Service", REDIS)
    assert service["spec"]["ports"] == [{"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}]
    assert service["spec"]["selector"] == {**SELECTOR, "app.kubernetes.io/component": "tenant-store"}
    policy = _named(docs, "NetworkPolicy", REDIS)["spec"]
    assert policy["podSelector"] == {"matchLabels": {**SELECTOR, "app.kubernetes.io/component": "tenant-store"}}
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["ingress"] == [
        {
            "ports": [{"port": 6379, "protocol": "TCP"}],
            "from": [{"podSelector": {"matchLabels": SELECTOR, "matchExpressions": RAY_COMPONENTS}}],
        }
    ]


def test_chart_redis_options_emptydir_given_password_and_no_network_policy(helm, tmp_path):
    extra = {
        "tenantStore": {
            "redis": {"persistence": {"enabled": False}, "auth": {"existingSecret": "my-redis-pw", "key": "pw"}}
        },
        "networkPolicy": {"enabled": False},
    }
    docs = helm.render(*CASES["tenants"], _write(tmp_path, extra))
    assert [s["metadata"]["name"] for s in by_kind(docs, "Secret")] == [f"{RELEASE}-ray-token"]
    sts = _named(docs, "StatefulSet", REDIS)
    assert "volumeClaimTemplates" not in sts["spec"]
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert by_kind(docs, "NetworkPolicy") == []
    for _, env in _ray_envs(docs):
        ref = {e["name"]: e for e in env}["PETIT_TENANT_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "my-redis-pw", "key": "pw"}


def test_external_redis_url_comes_from_your_secret_into_the_fleets_variable(helm):
    docs = helm.render(*CASES["tenants-external"])
    assert _tenant_objects(docs) == []
    assert by_kind(docs, "StatefulSet") == []
    for name, env in _ray_envs(docs):
        by_name = {e["name"]: e for e in env}
        ref = by_name["TENANT_REDIS_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "petit-tenant-redis-url", "key": "redis-url"}, name
        assert "PETIT_REDIS_URL" not in by_name and "PETIT_TENANT_REDIS_PASSWORD" not in by_name, name


def test_notes_name_the_store_and_the_report_command(helm):
    notes = helm.notes(*CASES["tenants"])
    assert "Tenants: 2 (alpha, beta); tenant store: redis (the chart's Redis" in notes
    assert "petit tenants report --fleet -" in notes
    assert "only their keys authenticate" in notes
    external = helm.notes(*CASES["tenants-external"])
    assert "your Redis, Secret petit-tenant-redis-url" in external
    assert "Tenants:" not in helm.notes()
