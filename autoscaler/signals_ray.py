"""GPU supply from Ray cluster resources, through an injected callable (no Ray import).

Pass ``ray.cluster_resources`` (or a fake returning the same kind of dict);
``available`` optionally ``ray.available_resources``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from autoscaler.snapshot import GpuSupply


class RayGpuSupply:
    """Reads {"GPU": n, ...} dicts; raises whatever the callable raises."""

    def __init__(
        self,
        total: Callable[[], Mapping[str, float]],
        available: Callable[[], Mapping[str, float]] | None = None,
        resource: str = "GPU",
    ):
        self._total, self._available, self._resource = total, available, resource

    def read(self) -> GpuSupply:
        total = float(self._total().get(self._resource, 0.0))
        free = float(self._available().get(self._resource, 0.0)) if self._available else 0.0
        return GpuSupply(total=total, free=free, pending=0.0, source="ray")
