"""The objects around the RayService: endpoint, autoscaler and its RBAC, optional parts."""

from __future__ import annotations

import json

import pytest
from chartlib import CASES, NAMESPACE, RELEASE, by_kind, chart_values, one

DASHBOARD_METRICS = [
    "petit_requests_total",
    "petit_tokens_total",
    "petit_cost_usd_total",
    "petit_request_duration_seconds",
    "petit_ttft_seconds",
    "petit_autoscaler_gpu_supply",
    "petit_autoscaler_decisions_total",
    "petit_route_share",
]


def _named(docs, kind, name):
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: found {len(found)}"
    return found[0]


def test_api_service_exposes_port_8000_on_ready_serve_pods(helm):
    service = _named(helm.render(), "Service", RELEASE)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "serve", "protocol": "TCP"}]
    assert service["spec"]["selector"]["ray.io/serve"] == "true"
    assert service["spec"]["selector"]["app.kubernetes.io/instance"] == RELEASE


def test_autoscaler_runs_petit_with_the_fleet_configmap(helm):
    docs = helm.render()
    deploy = _named(docs, "Deployment", f"{RELEASE}-autoscaler")
    spec = deploy["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["command"] == ["petit", "autoscaler", "run", "--fleet", "/etc/petit/fleet.yaml"]
    ray_image = one(docs, "RayService")["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    assert container["image"] == ray_image["containers"][0]["image"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RAY_ADDRESS"] == f"ray://{RELEASE}-head-svc:10001"  # KubeRay's head service, Ray Client port
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["fleet"]["configMap"]["name"] == f"{RELEASE}-fleet"
    assert {"name": "fleet", "mountPath": "/etc/petit", "readOnly": True} in container["volumeMounts"]
    assert spec["serviceAccountName"] == f"{RELEASE}-autoscaler"
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}


def test_ray_pods_get_no_api_token(helm):
    docs = helm.render()
    account = _named(docs, "ServiceAccount", f"{RELEASE}-ray")
    assert account["automountServiceAccountToken"] is False
    cluster = one(docs, "RayService")["spec"]["rayClusterConfig"]
    for template in [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]:
        assert template["spec"]["serviceAccountName"] == f"{RELEASE}-ray"
        assert template["spec"]["automountServiceAccountToken"] is False


def test_minimal_leaves_out_everything_optional(helm):
    docs = helm.render(*CASES["minimal"])
    kinds = {d["kind"] for d in docs}
    assert kinds.isdisjoint({"Deployment", "Role", "ClusterRole", "Ingress", "ServiceMonitor", "PodDisruptionBudget"})
    assert one(docs, "RayService")["spec"]["rayClusterConfig"]["enableInTreeAutoscaling"] is False


def test_head_disruption_budget(helm):
    pdb = one(helm.render(), "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "ray-head"


def test_secret_references_reach_ray_pods_and_the_test(helm):
    docs = helm.render(*CASES["everything"])
    cluster = one(docs, "RayService")["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    for template in pods:
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in template["spec"]["containers"][0]["env"]
            if "valueFrom" in e
        }
        assert refs == {
            "PETIT_API_KEYS": {"name": "petit-api-keys", "key": "api-keys"},
            "HF_TOKEN": {"name": "hf-token", "key": "token"},
            "RAY_AUTH_TOKEN": {"name": "petit-ray-token", "key": "auth_token"},
        }
    test_pod = one(docs, "Pod")
    assert test_pod["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "petit-api-keys"


@pytest.mark.parametrize("case", CASES)
def test_helm_test_pod_curls_models(helm, case):
    pod = one(helm.render(*CASES[case]), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    assert f"http://{RELEASE}:8000/v1/models" in script
    for model in chart_values(*CASES[case])["fleet"]["models"]:
        assert f"'\"{model['id']}\"'" in script


def test_ingress_routes_to_the_api_service(helm):
    ingress = one(helm.render(*CASES["everything"]), "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "llm.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": RELEASE, "port": {"name": "http"}}
    assert ingress["spec"]["tls"] == [{"hosts": ["llm.example.com"], "secretName": "llm-example-tls"}]
    assert ingress["spec"]["ingressClassName"] == "nginx"


def test_service_monitor_scrapes_ray_and_autoscaler_metrics(helm):
    docs = helm.render(*CASES["everything"])
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = [
        s for s in by_kind(docs, "Service") if all(s["metadata"]["labels"].get(k) == v for k, v in selector.items())
    ]
    names = sorted(s["metadata"]["name"] for s in scraped)
    assert names == [RELEASE, f"{RELEASE}-autoscaler", f"{RELEASE}-ray-metrics"]
    endpoint_ports = {e["port"] for e in monitor["spec"]["endpoints"]}
    assert endpoint_ports == {"http", "metrics"}
    for s in scraped:
        assert endpoint_ports & {p["name"] for p in s["spec"]["ports"]}, s["metadata"]["name"]


def test_grafana_dashboard_charts_every_metric(helm):
    docs = helm.render(*CASES["everything"])
    dashboard = _named(docs, "ConfigMap", f"{RELEASE}-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(dashboard["data"]["petit.json"])
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p["targets"])
    for metric in DASHBOARD_METRICS:
        assert metric in exprs, metric
    for label in ("route_reason", "status", "kind", "tier"):
        assert label in exprs, label
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_notes_say_how_to_call_the_endpoint(helm):
    notes = helm.notes()
    assert f"kubectl -n {NAMESPACE} port-forward svc/{RELEASE} 8000:8000" in notes
    assert "$PETIT_URL/v1/models" in notes and "$PETIT_URL/v1/chat/completions" in notes
    assert "smollm2-135m" in notes


def test_notes_use_the_ingress_and_the_api_key_secret(helm):
    notes = helm.notes(*CASES["everything"])
    assert "export PETIT_URL=https://llm.example.com" in notes
    assert "get secret petit-api-keys" in notes
    assert "port-forward" not in notes


def _ray_envs(docs):
    svc = one(docs, "RayService")
    cluster = svc["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    return [{e["name"]: e.get("value") for e in p["spec"]["containers"][0].get("env", [])} for p in pods]


def test_ray_pods_get_the_lean_serve_request_path_unless_turned_off(helm, tmp_path):
    for env in _ray_envs(helm.render()):
        assert env["RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD"] == "0"
        assert env["RAY_SERVE_USE_GRPC_BY_DEFAULT"] == "1"
    off = tmp_path / "off.yaml"
    off.write_text("fleet:\n  ray:\n    lean_request_path: false\n")
    for env in _ray_envs(helm.render(off)):
        assert "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD" not in env


def test_ray_pods_get_the_haproxy_ingress_unless_the_fleet_asks_for_the_python_proxy(helm, tmp_path):
    for env in _ray_envs(helm.render()):
        assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    off = tmp_path / "proxy.yaml"
    off.write_text("fleet:\n  ray:\n    http_ingress: proxy\n")
    for env in _ray_envs(helm.render(off)):
        assert "RAY_SERVE_ENABLE_HA_PROXY" not in env
