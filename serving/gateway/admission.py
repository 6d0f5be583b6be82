"""Exact per-model admission at the ingress: a request beyond a model's slots is refused at once.

Ray Serve's own back-pressure (`max_queued_requests`) is approximate: with the
autoscaling-policy hook it let 6 to 11 of 14 requests into 4 ongoing + 2 queued
slots, so admitted requests could queue far past the SLO, and each refusal crossed
a Ray call. The ingress knows what it sent: each model has `max_ongoing_requests +
max_queued_requests` slots per ready replica here, held from the moment a request
is sent to the model until the request is finished (streams: their last byte).
With several ingress replicas each counts its own share (slots / replicas), so the
fleet never admits more than its slots. Pure module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping


class ModelSlots:
    def __init__(self, slots_per_replica: Mapping[str, int], ingress_replicas: int = 1) -> None:
        self.slots = {m: max(1, n // max(1, ingress_replicas)) for m, n in slots_per_replica.items()}
        self.held: Counter[str] = Counter()

    def take(self, model_id: str, ready_replicas: int) -> bool:
        """A slot on `model_id`, or False when all of its slots at this ingress are held."""
        if self.held[model_id] >= self.slots.get(model_id, 1) * max(1, ready_replicas):
            return False
        self.held[model_id] += 1
        return True

    def give(self, model_id: str) -> None:
        if self.held[model_id] > 0:
            self.held[model_id] -= 1
