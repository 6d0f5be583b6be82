import asyncio
import json

import pytest
from kubernetes import client

from autoscaler.budget import FixedBudget
from autoscaler.kubernetes_adapters import KubeRayWorkerGroups, KubernetesGpuSupply, StaleSupply, worker_groups_for
from autoscaler.signals_ray import RayGpuSupply

NODES = "v1/nodes"
# kmock serves on the session loop (asyncio_default_fixture_loop_scope): run the tests there too.
SESSION_LOOP = pytest.mark.asyncio(loop_scope="session")


def api(kmock):
    cfg = client.Configuration()
    cfg.host = str(kmock.url).rstrip("/")
    return client.ApiClient(cfg)


def node(kmock, name, gpus, labels=None):
    kmock.objects[kmock.resource(NODES), None, name] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {"gpu": "h100"}},
        "status": {"allocatable": {"nvidia.com/gpu": str(gpus)}},
    }


def pod(kmock, name, gpus, node_name=None, labels=None):
    kmock.objects[kmock.resource("v1/pods"), "ns", name] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns", "labels": labels or {}},
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": "c", "resources": {"requests": {"nvidia.com/gpu": str(gpus)}}}],
        },
        "status": {"phase": "Running" if node_name else "Pending"},
    }


@SESSION_LOOP
async def test_kubernetes_supply(kmock):
    kmock.resources["v1/pods"] = {}
    node(kmock, "a", 8)
    node(kmock, "b", 8)
    node(kmock, "cpu", 4, labels={"gpu": "none"})
    pod(kmock, "other", 2, "a")
    pod(kmock, "mine", 4, "b", {"app": "petit"})
    pod(kmock, "mine-pending", 4, None, {"app": "petit"})
    src = KubernetesGpuSupply(api(kmock), {"gpu": "h100"}, {"app": "petit"})
    s = await asyncio.to_thread(src.read)
    assert (s.total, s.free, s.pending) == (14, 10, 4) and not src.stale
    del kmock.objects[kmock.resource(NODES), None, "b"]  # a node disappears
    s = await asyncio.to_thread(src.read)
    assert s.total == 6
    kmock["list v1/nodes"] << 403  # RBAC broke: keep last good, stale
    s = await asyncio.to_thread(src.read)
    assert s.total == 6 and src.stale and "403" in s.stale_reason and s.stale_reason == src.stale_reason


@SESSION_LOOP
async def test_kubernetes_supply_404_without_history(kmock):
    kmock.resources["v1/pods"] = {}
    kmock["list v1/pods"] << 404
    src = KubernetesGpuSupply(api(kmock))
    with pytest.raises(StaleSupply):
        await asyncio.to_thread(src.read)


@SESSION_LOOP
async def test_kuberay_worker_groups_patch(kmock):
    rs = "ray.io/v1/rayservices"
    kmock.objects[kmock.resource(rs), "ns", "petit"] = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "petit", "namespace": "ns"},
        "spec": {
            "rayClusterConfig": {
                "workerGroupSpecs": [
                    {"groupName": "gpu-1", "replicas": 1, "minReplicas": 1, "maxReplicas": 2},
                    {"groupName": "gpu-4", "replicas": 1, "minReplicas": 0, "maxReplicas": 4},
                ]
            }
        },
    }
    act = KubeRayWorkerGroups(api(kmock), "ns", "petit")
    await asyncio.to_thread(act.set_worker_replicas, {"gpu-1": 5})
    obj = kmock.objects[kmock.resource(rs), "ns", "petit"]
    groups = {g["groupName"]: g for g in obj["spec"]["rayClusterConfig"]["workerGroupSpecs"]}
    assert groups["gpu-1"]["replicas"] == 5 and groups["gpu-1"]["maxReplicas"] == 5
    assert groups["gpu-4"]["replicas"] == 1
    with pytest.raises(KeyError):
        await asyncio.to_thread(act.set_worker_replicas, {"nope": 1})


def test_worker_groups_for():
    assert worker_groups_for({"s": 3, "l": 2}, {"s": 1, "l": 4}, {"s": "g1", "l": "g4"}, {"g1": 1, "g4": 4}) == {
        "g1": 3,
        "g4": 2,
    }


def test_ray_supply():
    s = RayGpuSupply(lambda: {"GPU": 8.0, "CPU": 64}, lambda: {"GPU": 3.0}).read()
    assert (s.total, s.free, s.source) == (8.0, 3.0, "ray")


def test_fixed_budget():
    b = FixedBudget(None)
    assert b.read().total == float("inf")
    b.set(6)
    assert b.read().total == 6
    for bad in (-1, "x", True, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            b.set(bad)


@SESSION_LOOP
async def test_admin_endpoint():
    from aiohttp.test_utils import TestClient, TestServer

    from autoscaler.admin import build_admin_app

    b = FixedBudget(8)
    js = {"Content-Type": "application/json"}
    async with TestClient(TestServer(build_admin_app(b))) as c:
        r = await c.get("/admin/budget")
        assert (await r.json()) == {"gpus": 8, "unit": "gpus", "changed_at": None, "changed_by": None}
        r = await c.post("/admin/budget", data=json.dumps({"gpus": 4}), headers=js)
        assert r.status == 200 and b.get() == 4
        got = await (await c.get("/admin/budget")).json()
        assert got["changed_at"] is not None and got["changed_by"]  # who and when, visible in GET
        for bad in ('{"gpus": -2}', '{"gpus": NaN}', '{"gpus": Infinity}', '{"gpus": 1e9}', '{"gpus": "4"}',
                    '{"gpus": 4, "x": 1}', "nope", "[50000]"):  # fmt: skip
            r = await c.post("/admin/budget", data=bad, headers=js)
            assert r.status == 400, bad
        # A web page's form post (text/plain) cannot change the budget.
        r = await c.post("/admin/budget", data='{"gpus": 0}', headers={"Content-Type": "text/plain"})
        assert r.status == 415 and b.get() == 4


@SESSION_LOOP
async def test_admin_endpoint_token_and_loopback_default():
    from aiohttp.test_utils import TestClient, TestServer

    from autoscaler.admin import AdminConfigError, AdminServer, build_admin_app

    b = FixedBudget(8)
    with pytest.raises(AdminConfigError, match="PETIT_ADMIN_TOKEN"):
        AdminServer(b, host="0.0.0.0")
    assert AdminServer(b).host == "127.0.0.1" and AdminServer(b, host="0.0.0.0", token="s3cret").host == "0.0.0.0"
    async with TestClient(TestServer(build_admin_app(b, token="s3cret"))) as c:
        assert (await c.get("/admin/budget")).status == 401
        assert (await c.get("/admin/budget", headers={"Authorization": "Bearer nope"})).status == 401
        r = await c.post(
            "/admin/budget",
            data='{"gpus": 2}',
            headers={"Authorization": "Bearer s3cret", "Content-Type": "application/json"},
        )
        assert r.status == 200 and b.get() == 2


@SESSION_LOOP
async def test_admin_plan_shows_the_last_plan_json_safe():
    from aiohttp.test_utils import TestClient, TestServer

    from autoscaler.admin import build_admin_app

    plans: list[dict] = []
    app = build_admin_app(FixedBudget(None), plan_of=lambda: plans[-1] if plans else None)
    async with TestClient(TestServer(app)) as c:
        assert (await (await c.get("/admin/plan")).json()) == {"plan": None}  # no decision yet
        plans.append({"gpus_budget": float("inf"), "routing": {"shares": {"a": 1.0}, "constrained": False}})
        r = await c.get("/admin/plan")
        assert "Infinity" not in await r.text()  # strict JSON: an unlimited budget reads null
        assert (await r.json())["plan"] == {
            "gpus_budget": None,
            "routing": {"shares": {"a": 1.0}, "constrained": False},
        }
