from __future__ import annotations

import numpy as np

from serving.router.types import DifficultyPrediction, FleetSnapshot, ModelSnapshot, RequestConstraints, RouteRequest


def fleet(
    ready_small=1, ready_medium=0, ready_large=1, small_len=64, large_len=256, small_price=0.05, large_price=0.20
) -> FleetSnapshot:
    models = [
        ModelSnapshot("small", "small", 0, small_len, small_price, 250, 0.1, ready_small),
        ModelSnapshot("large", "large", 2, large_len, large_price, 80, 0.1, ready_large),
    ]
    if ready_medium:
        models.insert(1, ModelSnapshot("medium", "medium", 1, 128, 0.1, 150, 0.1, ready_medium))
    return FleetSnapshot(tuple(models))


def req(score=None, tokens=None, max_tokens=16, key=0.5, **constraints) -> RouteRequest:
    pred = None if score is None else DifficultyPrediction(score, 0.6, 0.9)
    return RouteRequest(
        "auto",
        max_tokens,
        tokens if tokens is not None else {"small": 10, "medium": 10, "large": 10},
        RequestConstraints(**constraints),
        pred,
        key,
    )


class FakeEncoder:
    """Deterministic 384-dim 'embeddings' from character statistics (no model)."""

    def __init__(self, max_seq_length: int = 128) -> None:
        self.calls: list[int] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), 384), np.float32)
        for i, t in enumerate(texts):
            for ch in t:
                out[i, ord(ch) % 384] += 1.0
        return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-9)
