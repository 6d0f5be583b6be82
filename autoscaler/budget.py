"""A fixed GPU budget, changeable at run time (POST /admin/budget); pure."""

from __future__ import annotations

import math
import threading

from autoscaler.snapshot import GpuSupply


class FixedBudget:
    """A GPU source that returns a number set in config or by the admin endpoint."""

    def __init__(self, gpus: float | None):
        self._lock = threading.Lock()
        self._gpus = gpus

    def set(self, gpus: float) -> None:
        """Raises ValueError for a negative, non-finite or non-numeric budget."""
        if isinstance(gpus, bool) or not isinstance(gpus, (int, float)) or not math.isfinite(gpus) or gpus < 0:
            raise ValueError(f"gpus must be a finite number >= 0, got {gpus!r}")
        with self._lock:
            self._gpus = float(gpus)

    def get(self) -> float | None:
        with self._lock:
            return self._gpus

    def read(self) -> GpuSupply:
        g = self.get()
        return GpuSupply(total=float("inf") if g is None else g, source="fixed")
