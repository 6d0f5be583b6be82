"""The difficulty classifier: a small numpy MLP (or multinomial logistic regression) over prompt embeddings.

It predicts the four outcomes of sending a prompt to both models:
``both_wrong, only_weak, only_strong, both_right``. From them:

- ``p_strong_needed = P(only_strong)``: the weak model fails where the strong one succeeds;
- ``p_weak_ok = P(only_weak) + P(both_right)``, ``p_strong_ok = P(only_strong) + P(both_right)``;
- the routing score is ``P(only_strong) - P(only_weak)`` (expected gain of the strong model;
  "gain") or ``P(only_strong)`` ("need"), whichever the training run chose.

Pure numpy: no torch, no I/O (see `artifact` for saving and loading).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

OUTCOMES = ("both_wrong", "only_weak", "only_strong", "both_right")
SCORE_KINDS = ("gain", "need")


def outcome_labels(weak_correct: np.ndarray, strong_correct: np.ndarray) -> np.ndarray:
    """Outcome class index per row: 0 both wrong, 1 only weak, 2 only strong, 3 both right."""
    labels: np.ndarray = np.asarray(weak_correct, int) + 2 * np.asarray(strong_correct, int)
    return labels


def prompt_features(embeddings: np.ndarray, prompt_chars: np.ndarray) -> np.ndarray:
    """Classifier input: the embedding plus log prompt length (a cheap difficulty cue)."""
    length = np.log1p(np.asarray(prompt_chars, np.float32)).reshape(-1, 1) / 8.0
    return np.hstack([np.asarray(embeddings, np.float32), length]).astype(np.float32)


@dataclass
class MLPClassifier:
    """Softmax classifier with an optional ReLU hidden layer. `hidden == 0` is logistic regression."""

    weights: dict[str, np.ndarray] = field(default_factory=dict)
    score_kind: str = "gain"

    @property
    def hidden(self) -> int:
        return int(self.weights["w1"].shape[1]) if "w1" in self.weights else 0

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Outcome probabilities, shape (n, 4); rows sum to 1."""
        z = (np.asarray(x, np.float32) - self.weights["mean"]) / self.weights["std"]
        if "w1" in self.weights:
            z = np.maximum(z @ self.weights["w1"] + self.weights["b1"], 0.0)
        logits = z @ self.weights["w2"] + self.weights["b2"]
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        probs: np.ndarray = e / e.sum(axis=1, keepdims=True)
        return probs

    def scores(self, x: np.ndarray) -> np.ndarray:
        return routing_score(self.probabilities(x), self.score_kind)


def routing_score(p: np.ndarray, kind: str) -> np.ndarray:
    """Higher = more worth sending to the strong model. Raises ValueError for an unknown kind."""
    if kind == "gain":
        gain: np.ndarray = p[:, 2] - p[:, 1]
        return gain
    if kind == "need":
        return p[:, 2]
    raise ValueError(f"unknown score kind {kind!r}; known: {SCORE_KINDS}")


def _init(d: int, hidden: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    k = len(OUTCOMES)
    w: dict[str, np.ndarray] = {}
    if hidden:
        w["w1"] = (rng.standard_normal((d, hidden)) * np.sqrt(2.0 / d)).astype(np.float32)
        w["b1"] = np.zeros(hidden, np.float32)
        d = hidden
    w["w2"] = (rng.standard_normal((d, k)) * np.sqrt(1.0 / d)).astype(np.float32)
    w["b2"] = np.zeros(k, np.float32)
    return w


def _grads(
    w: dict[str, np.ndarray], z: np.ndarray, y: np.ndarray, l2: float, dropout: float, rng: np.random.Generator
) -> tuple[float, dict[str, np.ndarray]]:
    n = len(y)
    h = z
    if "w1" in w:
        pre = z @ w["w1"] + w["b1"]
        h = np.maximum(pre, 0.0)
        if dropout:
            mask = (rng.random(h.shape) >= dropout) / (1 - dropout)
            h = h * mask
    logits = h @ w["w2"] + w["b2"]
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(n), y] + 1e-12).mean()
    d = p
    d[np.arange(n), y] -= 1
    d /= n
    g = {"w2": h.T @ d + l2 * w["w2"], "b2": d.sum(0)}
    if "w1" in w:
        dh = (d @ w["w2"].T) * (pre > 0)
        if dropout:
            dh = dh * mask
        g["w1"] = z.T @ dh + l2 * w["w1"]
        g["b1"] = dh.sum(0)
    return float(loss), g


def fit(
    x: np.ndarray,
    y: np.ndarray,
    hidden: int = 64,
    l2: float = 1e-3,
    epochs: int = 60,
    lr: float = 2e-3,
    batch: int = 256,
    dropout: float = 0.2,
    seed: int = 0,
    score_kind: str = "gain",
) -> MLPClassifier:
    """Train with Adam on mini-batches; deterministic for a given seed. Returns the fitted classifier."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float32)
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    w = _init(z.shape[1], hidden, rng)
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v = {k: np.zeros_like(v_) for k, v_ in w.items()}
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for s in range(0, len(y), batch):
            idx = order[s : s + batch]
            _, g = _grads(w, z[idx], y[idx], l2, dropout, rng)
            step += 1
            for k in w:
                m[k] = 0.9 * m[k] + 0.1 * g[k]
                v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
                mh, vh = m[k] / (1 - 0.9**step), v[k] / (1 - 0.999**step)
                w[k] = (w[k] - lr * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
    w["mean"], w["std"] = mean.astype(np.float32), std.astype(np.float32)
    return MLPClassifier(w, score_kind)
