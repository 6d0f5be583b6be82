"""Exact per-model admission at the ingress: a request beyond a model's slots is refused at once.

Ray Serve's own back-pressure (`max_queued_requests`) is approximate: with the
autoscaling-policy hook it let 6 to 11 of 14 requests into 4 ongoing + 2 queued
slots, so admitted requests could queue far past the SLO, and each refusal crossed
a Ray call. The ingress knows what it sent: each model has `max_ongoing_requests +
max_queued_requests` slots per ready replica here, held from the moment a request
is sent to the model until the request is finished (streams: their last byte).
With several ingress replicas each counts its own share (slots / replicas), so the
fleet never admits more than its slots.

Slots alone do not bound the wait: a queued request waits for a running one to
end. So a model whose oldest queued request (sent, its first item not yet back)
has waited longer than `max_queue_wait_s` refuses new ones too, until its queue
moves again (a CoDel-like rule that keeps admitted requests inside the TTFT SLO).
Pure module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping


class ModelSlots:
    def __init__(
        self, slots_per_replica: Mapping[str, int], ingress_replicas: int = 1, max_queue_wait_s: float | None = None
    ) -> None:
        self.slots = {m: max(1, n // max(1, ingress_replicas)) for m, n in slots_per_replica.items()}
        self.max_queue_wait_s = max_queue_wait_s
        self.held: Counter[str] = Counter()
        self._queued: dict[str, dict[int, float]] = {}  # model -> {request key: when it was sent}

    def take(self, model_id: str, ready_replicas: int, key: int | None = None, now: float = 0.0) -> bool:
        """A slot on `model_id` for request `key` sent at `now`, or False when all of its slots at
        this ingress are held or its oldest queued request has waited too long. Only requests with a
        `key` are timed in the queue: streams, whose first item comes back when their generation
        starts (a plain answer's comes back at its end)."""
        if self.held[model_id] >= self.slots.get(model_id, 1) * max(1, ready_replicas):
            return False
        queued = self._queued.setdefault(model_id, {})
        if self.max_queue_wait_s is not None and queued and now - min(queued.values()) > self.max_queue_wait_s:
            return False
        self.held[model_id] += 1
        if key is not None:
            queued[key] = now
        return True

    def started(self, model_id: str, key: int = 0) -> None:
        """Request `key` left the queue: a replica answered it."""
        self._queued.get(model_id, {}).pop(key, None)

    def give(self, model_id: str, key: int = 0) -> None:
        self.started(model_id, key)
        if self.held[model_id] > 0:
            self.held[model_id] -= 1
