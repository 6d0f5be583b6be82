"""Fitting the router's and the cascade's thresholds to one fleet's recorded answers (pure numpy).

`petit router calibrate` asks every question of a checkable set to the
fleet's small and large model (named, temperature 0) and records, per
question, whether each was right, the small model's token-logprob confidence
and the learned router's score. Because both answers are recorded, any
policy's outcome on those questions follows exactly, without asking again:

- ``learned(threshold)``: the large model answers when score >= threshold;
- ``cascade(min_mean, min_token)``: the small model answers; its answer is
  kept when `cascade.judge` finds it confident, else the large model answers
  (an escalated question costs both calls: it counts as a large call).

`fit` picks, on the calibration part and among settings that send at most
`max_large_share` of the questions to the large model, the one with the
fewest large calls whose accuracy reaches ``small + frac * (large - small)``;
when none does, the most accurate one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from serving.router.cascade import CascadeThresholds, Confidence, judge


@dataclass(frozen=True)
class Recorded:
    """One question's answers: correctness of both models, the small one's confidence, the router's score."""

    small_correct: bool
    large_correct: bool
    small_confidence: Confidence | None
    score: float | None = None


@dataclass(frozen=True)
class Outcome:
    policy: str
    params: dict[str, float]
    accuracy: float
    large_share: float  # share of questions that reached the large model (escalations included)
    calls_per_question: float  # model calls per question (an escalation is two)


def learned_outcome(rows: Sequence[Recorded], threshold: float) -> Outcome:
    strong = np.array([r.score is not None and r.score >= threshold for r in rows])
    correct = np.where(strong, [r.large_correct for r in rows], [r.small_correct for r in rows])
    return Outcome("learned", {"threshold": threshold}, float(correct.mean()), float(strong.mean()), 1.0)


def cascade_outcome(rows: Sequence[Recorded], min_mean: float, min_token: float) -> Outcome:
    limits = CascadeThresholds(min_mean, min_token, 16)
    up = np.array([judge(r.small_confidence, limits).escalate for r in rows])
    correct = np.where(up, [r.large_correct for r in rows], [r.small_correct for r in rows])
    params = {"cascade_min_mean_logprob": min_mean, "cascade_min_token_logprob": min_token}
    return Outcome("cascade", params, float(correct.mean()), float(up.mean()), float(1 + up.mean()))


def single_outcomes(rows: Sequence[Recorded]) -> tuple[Outcome, Outcome]:
    small = float(np.mean([r.small_correct for r in rows]))
    large = float(np.mean([r.large_correct for r in rows]))
    return Outcome("small", {}, small, 0.0, 1.0), Outcome("large", {}, large, 1.0, 1.0)


def settings(rows: Sequence[Recorded], policy: str) -> list[Outcome]:
    """Every distinct setting of `policy` the recorded data can tell apart (thresholds at observed values)."""
    if policy == "learned":
        scores = sorted({r.score for r in rows if r.score is not None})
        return [learned_outcome(rows, t) for t in [*scores, float("inf")]]
    confs = [r.small_confidence for r in rows if r.small_confidence is not None]
    means = sorted({round(c.mean_logprob, 6) for c in confs})
    # A threshold just above an observed value escalates that answer (judge escalates below it).
    # One free parameter (the mean); the per-token floor is off or the default: a finer 2-D grid
    # overfits a few hundred questions (measured: 5 points lost from calibration to held-out).
    grid_mean = [-1e4, *[min(0.0, m + 1e-9) for m in means]]
    return [cascade_outcome(rows, a, b) for a in grid_mean for b in (-1e4, CascadeThresholds().min_token_logprob)]


def target_accuracy(rows: Sequence[Recorded], frac: float) -> float:
    small, large = single_outcomes(rows)
    return small.accuracy + frac * (large.accuracy - small.accuracy)


def fit_thresholds(rows: Sequence[Recorded], policy: str, frac: float = 0.6, max_large_share: float = 0.4) -> Outcome:
    """Within the large-share cap: the fewest large calls reaching the target accuracy, else the most accurate.

    Raises ValueError for an unknown policy or no rows.
    """
    if policy not in ("learned", "cascade"):
        raise ValueError(f"can fit 'learned' or 'cascade', not {policy!r}")
    if not rows:
        raise ValueError("no recorded answers to fit on")
    goal = target_accuracy(rows, frac)
    options = [o for o in settings(rows, policy) if o.large_share <= max_large_share + 1e-12]
    reach = [o for o in options if o.accuracy >= goal - 1e-12]
    if reach:
        return min(reach, key=lambda o: (o.large_share, -o.accuracy))
    return max(options, key=lambda o: (o.accuracy, -o.large_share))
