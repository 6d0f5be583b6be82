"""Threshold calibration, RouteLLM-style (pure).

The operator states a target share of strong-model calls, or a cost budget per
request; the router turns it into a score threshold using a sample of routing
scores (the artefact ships 101 quantiles of the score on a calibration sample;
an operator can recalibrate on a sample of their own traffic).
"""

from __future__ import annotations

import numpy as np


def score_quantiles(scores: np.ndarray, n: int = 101) -> list[float]:
    """`n` evenly spaced quantiles (0..1) of a score sample, for shipping in the artefact."""
    return [float(v) for v in np.quantile(np.asarray(scores, float), np.linspace(0, 1, n))]


def threshold_for_share(quantiles: np.ndarray | list[float], strong_share: float) -> float:
    """The score threshold that sends about `strong_share` of the sample to the strong model.

    A prompt goes strong when its score is >= the threshold. share 0 -> +inf
    (never strong), share 1 -> the sample minimum. Raises ValueError outside [0, 1].
    """
    if not 0.0 <= strong_share <= 1.0:
        raise ValueError(f"strong_share must lie in [0, 1], got {strong_share}")
    q = np.asarray(quantiles, float)
    if strong_share == 0.0:
        return float("inf")
    return float(np.interp(1.0 - strong_share, np.linspace(0, 1, len(q)), q))


def share_for_threshold(quantiles: np.ndarray | list[float], threshold: float) -> float:
    """Inverse of `threshold_for_share` on the sample: the share of scores >= threshold."""
    q = np.asarray(quantiles, float)
    if threshold == float("inf"):
        return 0.0
    return float(1.0 - np.interp(threshold, q, np.linspace(0, 1, len(q)), left=0.0, right=1.0))


def share_for_budget(budget_usd: float, weak_cost_usd: float, strong_cost_usd: float) -> float:
    """Largest strong share whose mean cost per request stays within `budget_usd`.

    Mean cost at share s is ``s * strong + (1 - s) * weak``. Clamped to [0, 1].
    Raises ValueError for negative inputs.
    """
    if min(budget_usd, weak_cost_usd, strong_cost_usd) < 0:
        raise ValueError("budget and costs must be non-negative")
    if strong_cost_usd <= weak_cost_usd:
        return 1.0  # the strong model is no dearer: no reason to hold it back
    return float(np.clip((budget_usd - weak_cost_usd) / (strong_cost_usd - weak_cost_usd), 0.0, 1.0))


def threshold_for_budget(
    quantiles: np.ndarray | list[float], budget_usd: float, weak_cost_usd: float, strong_cost_usd: float
) -> float:
    return threshold_for_share(quantiles, share_for_budget(budget_usd, weak_cost_usd, strong_cost_usd))
