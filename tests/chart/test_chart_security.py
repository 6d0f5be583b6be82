"""Closed by default: Ray token auth, NetworkPolicy, RBAC matching the code, probes, GCS fault tolerance."""

from __future__ import annotations

import base64

import yaml
from chartlib import CASES, NAMESPACE, RELEASE, by_kind, one, pod_specs

SELECTOR = {"app.kubernetes.io/name": "petit", "app.kubernetes.io/instance": RELEASE}
RAY_COMPONENTS = [{"key": "app.kubernetes.io/component", "operator": "In", "values": ["ray-head", "ray-worker"]}]


def _named(docs, kind, name):
    (found,) = [d for d in by_kind(docs, kind) if d["metadata"]["name"] == name]
    return found


def _env(container):
    return {e["name"]: e for e in container.get("env", [])}


def _write(tmp_path, values):
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _token_env_ok(env, secret):
    assert env["RAY_AUTH_MODE"]["value"] == "token"
    assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": "auth_token"}


def test_ray_token_auth_on_every_ray_container_the_operator_and_the_autoscaler(helm):
    docs = helm.render()
    secret = _named(docs, "Secret", f"{RELEASE}-ray-token")
    assert len(base64.b64decode(secret["data"]["auth_token"])) == 48
    cluster = one(docs, "RayService")["spec"]["rayClusterConfig"]
    assert cluster["authOptions"] == {"mode": "token", "secretName": f"{RELEASE}-ray-token"}
    ray_pods = [spec for name, spec in pod_specs(docs) if name.startswith("RayService/")]
    assert len(ray_pods) == 2
    for spec in ray_pods:
        _token_env_ok(_env(spec["containers"][0]), f"{RELEASE}-ray-token")
    _token_env_ok({e["name"]: e for e in cluster["autoscalerOptions"]["env"]}, f"{RELEASE}-ray-token")
    autoscaler = _named(docs, "Deployment", f"{RELEASE}-autoscaler")["spec"]["template"]["spec"]["containers"][0]
    _token_env_ok(_env(autoscaler), f"{RELEASE}-ray-token")


def test_a_given_ray_token_secret_is_used_and_none_is_created(helm):
    docs = helm.render(*CASES["everything"])
    assert by_kind(docs, "Secret") == []
    cluster = one(docs, "RayService")["spec"]["rayClusterConfig"]
    assert cluster["authOptions"]["secretName"] == "petit-ray-token"
    for _, spec in pod_specs(docs):
        if spec["containers"][0]["name"] != "curl":
            _token_env_ok(_env(spec["containers"][0]), "petit-ray-token")


def test_ray_auth_can_be_turned_off(helm, tmp_path):
    docs = helm.render(_write(tmp_path, {"ray": {"auth": {"enabled": False}}}))
    assert by_kind(docs, "Secret") == []
    assert "authOptions" not in one(docs, "RayService")["spec"]["rayClusterConfig"]
    for _, spec in pod_specs(docs):
        assert "RAY_AUTH_MODE" not in _env(spec["containers"][0])


def _ray_policy(docs):
    return _named(docs, "NetworkPolicy", f"{RELEASE}-ray")["spec"]


def _rules_by_port(policy):
    return {tuple(p["port"] for p in rule.get("ports", [])): rule.get("from") for rule in policy["ingress"]}


def test_network_policy_is_on_by_default_and_opens_only_the_serve_port_outside(helm):
    docs = helm.render()
    policy = _ray_policy(docs)
    assert policy["policyTypes"] == ["Ingress"]
    rules = _rules_by_port(policy)
    assert set(rules) == {(), (10001,), (8000,), (8265, 52365)}
    # Ray traffic: only this release's Ray pods, selected by component.
    assert rules[()] == [{"podSelector": {"matchLabels": SELECTOR, "matchExpressions": RAY_COMPONENTS}}]
    assert rules[(10001,)] == [
        {"podSelector": {"matchLabels": {**SELECTOR, "app.kubernetes.io/component": "autoscaler"}}}
    ]
    assert rules[(8000,)] is None  # the Serve port: anyone (apiFrom empty)
    assert rules[(8265, 52365)] == [
        {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "kuberay-operator"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kuberay-system"}},
        }
    ]
    autoscaler = _named(docs, "NetworkPolicy", f"{RELEASE}-autoscaler")["spec"]
    assert autoscaler["ingress"] == []  # metrics closed without metricsFrom


def test_network_policy_peers_from_values(helm):
    docs = helm.render(*CASES["everything"])
    rules = _rules_by_port(_ray_policy(docs))
    ingress_nginx = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    helm_test = {"podSelector": {"matchLabels": {**SELECTOR, "app.kubernetes.io/component": "test"}}}
    assert rules[(8000,)] == [ingress_nginx, monitoring, helm_test]
    assert rules[(8080,)] == [monitoring]
    operator = rules[(8265, 52365)][0]
    assert operator["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "kuberay-system"}}
    autoscaler = _named(docs, "NetworkPolicy", f"{RELEASE}-autoscaler")["spec"]
    assert autoscaler["ingress"] == [{"ports": [{"port": 9090, "protocol": "TCP"}], "from": [monitoring]}]


def test_no_kubernetes_api_access_unless_the_gpu_source_is_kubernetes(helm):
    docs = helm.render()
    assert not {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"} & {d["kind"] for d in docs}
    account = _named(docs, "ServiceAccount", f"{RELEASE}-autoscaler")
    assert account["automountServiceAccountToken"] is False
    env = _env(_named(docs, "Deployment", f"{RELEASE}-autoscaler")["spec"]["template"]["spec"]["containers"][0])
    assert "PETIT_PODS_NAMESPACE" not in env


def test_kubernetes_gpu_source_rbac_matches_what_the_code_lists(helm):
    """kubernetes_adapters lists nodes, and pods in PETIT_PODS_NAMESPACE: nothing more is granted."""
    docs = helm.render(*CASES["scarce"])
    (cluster_role,) = by_kind(docs, "ClusterRole")
    assert cluster_role["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]
    (role,) = by_kind(docs, "Role")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
    for binding, kind in ((one(docs, "ClusterRoleBinding"), "ClusterRole"), (one(docs, "RoleBinding"), "Role")):
        assert binding["roleRef"]["kind"] == kind
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": f"{RELEASE}-autoscaler", "namespace": NAMESPACE}
        ]
    assert _named(docs, "ServiceAccount", f"{RELEASE}-autoscaler")["automountServiceAccountToken"] is True
    env = _env(_named(docs, "Deployment", f"{RELEASE}-autoscaler")["spec"]["template"]["spec"]["containers"][0])
    assert env["PETIT_PODS_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert not [r for r in by_kind(docs, "Role") + by_kind(docs, "ClusterRole") if "ray.io" in str(r["rules"])]


def test_pods_in_all_namespaces_moves_pods_to_the_cluster_role(helm):
    docs = helm.render(*CASES["everything"])
    (cluster_role,) = by_kind(docs, "ClusterRole")
    assert cluster_role["rules"] == [{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["list"]}]
    assert by_kind(docs, "Role") == []
    env = _env(_named(docs, "Deployment", f"{RELEASE}-autoscaler")["spec"]["template"]["spec"]["containers"][0])
    assert "PETIT_PODS_NAMESPACE" not in env  # the code lists every namespace


def test_autoscaler_has_liveness_and_readiness_probes_on_its_metrics_port(helm):
    deploy = _named(helm.render(), "Deployment", f"{RELEASE}-autoscaler")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]


def test_gcs_fault_tolerance_uses_the_external_redis(helm):
    cluster = one(helm.render(*CASES["everything"]), "RayService")["spec"]["rayClusterConfig"]
    assert cluster["gcsFaultToleranceOptions"] == {
        "redisAddress": "redis.redis.svc:6379",
        "redisPassword": {"valueFrom": {"secretKeyRef": {"name": "redis-password", "key": "password"}}},
        "externalStorageNamespace": "petit",
    }
    assert "gcsFaultToleranceOptions" not in one(helm.render(), "RayService")["spec"]["rayClusterConfig"]


def test_notes_say_what_is_closed(helm):
    notes = helm.notes()
    assert f"get secret {RELEASE}-ray-token" in notes
    assert "the KubeRay operator must run in namespace kuberay-system" in notes
