"""The kubernetes GPU source lists pods where the chart's RBAC lets it: one namespace, or all."""

import asyncio

import pytest
from kubernetes import client

from autoscaler.kubernetes_adapters import KubernetesGpuSupply

SESSION_LOOP = pytest.mark.asyncio(loop_scope="session")


def _api(kmock):
    cfg = client.Configuration()
    cfg.host = str(kmock.url).rstrip("/")
    return client.ApiClient(cfg)


def _pod(kmock, namespace, name, gpus, node):
    kmock.objects[kmock.resource("v1/pods"), namespace, name] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"nvidia.com/gpu": gpus}}}]},
        "status": {"phase": "Running"},
    }


@SESSION_LOOP
async def test_pods_namespace_limits_what_is_listed(kmock):
    kmock.resources["v1/pods"] = {}
    kmock.objects[kmock.resource("v1/nodes"), None, "n"] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n", "labels": {}},
        "status": {"allocatable": {"nvidia.com/gpu": "8"}},
    }
    _pod(kmock, "llm", "neighbour", "2", "n")
    _pod(kmock, "other-team", "trainer", "4", "n")
    here = await asyncio.to_thread(KubernetesGpuSupply(_api(kmock), pods_namespace="llm").read)
    assert here.total == 6  # only this namespace's pods are seen (the chart's Role)
    everywhere = await asyncio.to_thread(KubernetesGpuSupply(_api(kmock)).read)
    assert everywhere.total == 2  # podsInAllNamespaces: the ClusterRole lets it see the trainer too
