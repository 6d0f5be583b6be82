"""Kubernetes adapters (the official `kubernetes` client): GPU supply from nodes and
pods, and the KubeRay RayService worker-group actuator.

GPU supply = sum of `status.allocatable[resource]` over nodes carrying every
label in `node_labels`, minus GPUs requested by scheduled pods on those nodes
that are not the fleet's own (`own_pod_selector`); `free` subtracts every
scheduled pod; `pending` counts GPUs of the fleet's unschedulable pods. On an
API error (403, 404, timeouts) the last good view is returned marked stale.

It lists nodes, and pods in `pods_namespace` (the Helm chart's Role) or in every
namespace when that is None (the chart's ClusterRole with
`autoscaler.podsInAllNamespaces`): exactly what the chart's RBAC grants. Only
pods it can see are subtracted.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from kubernetes import client

from autoscaler.snapshot import GpuSupply

log = logging.getLogger(__name__)


class StaleSupply(RuntimeError):
    """No good view yet and the API failed."""


def _qty(v: object) -> float:
    s = str(v or "0")
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


def _matches(labels: dict | None, wanted: dict[str, str]) -> bool:
    labels = labels or {}
    return all(labels.get(k) == v for k, v in wanted.items())


def _pod_gpus(pod, resource: str) -> float:
    total = 0.0
    for c in pod.spec.containers or []:
        req = (c.resources.requests or {}) if c.resources else {}
        total += _qty(req.get(resource))
    return total


class KubernetesGpuSupply:
    """Reads GPU supply from nodes and pods; on an API error, the last good view marked stale."""

    def __init__(
        self,
        api: client.ApiClient,
        node_labels: dict[str, str] | None = None,
        own_pod_selector: dict[str, str] | None = None,
        resource: str = "nvidia.com/gpu",
        pods_namespace: str | None = None,
    ):
        self._core = client.CoreV1Api(api)
        self.pods_namespace = pods_namespace
        self._labels, self._own, self._res = node_labels or {}, own_pod_selector or {}, resource
        self.last_good: GpuSupply | None = None
        self.stale_reason = ""

    def read(self) -> GpuSupply:
        """The current view; on an API error the last good one (and `stale_reason` set).
        Raises StaleSupply when there never was a good view."""
        try:
            supply = self._read()
        except Exception as err:  # ApiException, urllib3 errors: keep the last good view
            self.stale_reason = f"kubernetes API error: {getattr(err, 'status', '') or type(err).__name__}"
            log.warning("GPU supply: %s; keeping the last good view", self.stale_reason)
            if self.last_good is None:
                raise StaleSupply(self.stale_reason) from err
            return replace(self.last_good, stale_reason=self.stale_reason)
        self.stale_reason = ""
        self.last_good = supply
        return supply

    def _read(self) -> GpuSupply:
        nodes = [
            n for n in self._core.list_node(_request_timeout=10).items if _matches(n.metadata.labels, self._labels)
        ]
        names = {n.metadata.name for n in nodes}
        alloc = sum(_qty((n.status.allocatable or {}).get(self._res)) for n in nodes)
        others = mine_pending = requested = 0.0
        for pod in self._list_pods():
            g = _pod_gpus(pod, self._res)
            if g <= 0 or pod.status is None or pod.status.phase in ("Succeeded", "Failed"):
                continue
            own = bool(self._own) and _matches(pod.metadata.labels, self._own)
            if pod.spec.node_name in names:
                requested += g
                others += 0.0 if own else g
            elif not pod.spec.node_name and own:
                mine_pending += g
        return GpuSupply(
            total=max(0.0, alloc - others), free=max(0.0, alloc - requested), pending=mine_pending, source="kubernetes"
        )

    def _list_pods(self) -> list:
        if self.pods_namespace:
            return self._core.list_namespaced_pod(self.pods_namespace, _request_timeout=10).items
        return self._core.list_pod_for_all_namespaces(_request_timeout=10).items

    @property
    def stale(self) -> bool:
        return bool(self.stale_reason)


class KubeRayWorkerGroups:
    """Patches `spec.rayClusterConfig.workerGroupSpecs[*].replicas` of one RayService."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str):
        self._co = client.CustomObjectsApi(api)
        self._ns, self._name = namespace, name

    def set_worker_replicas(self, groups: dict[str, int]) -> None:
        """Read-modify-patch: unknown group names raise KeyError; others are left untouched.
        min/maxReplicas are widened when needed so KubeRay accepts the count."""
        obj = self._co.get_namespaced_custom_object("ray.io", "v1", self._ns, "rayservices", self._name)
        specs = [dict(s) for s in obj["spec"]["rayClusterConfig"].get("workerGroupSpecs", [])]
        known = {s.get("groupName") for s in specs}
        for g in groups:
            if g not in known:
                raise KeyError(f"RayService {self._ns}/{self._name} has no worker group '{g}'")
        for s in specs:
            if s.get("groupName") in groups:
                n = int(groups[s["groupName"]])
                s["replicas"] = n
                s["minReplicas"] = min(int(s.get("minReplicas", 0)), n)
                s["maxReplicas"] = max(int(s.get("maxReplicas", n)), n)
        body = {"spec": {"rayClusterConfig": {"workerGroupSpecs": specs}}}
        self._co.patch_namespaced_custom_object("ray.io", "v1", self._ns, "rayservices", self._name, body)


def worker_groups_for(
    targets: dict[str, int],
    gpus_per_replica: dict[str, float],
    group_of: dict[str, str],
    gpus_per_pod: dict[str, float],
) -> dict[str, int]:
    """Pods per worker group to hold the target replicas (models sharing a group add up)."""
    need: dict[str, float] = {}
    for m, n in targets.items():
        g = group_of[m]
        need[g] = need.get(g, 0.0) + n * gpus_per_replica[m]
    return {g: int(-(-need[g] // max(gpus_per_pod[g], 1e-9))) for g in need}
