"""Fitting the router's and the cascade's thresholds to one fleet's recorded answers (pure numpy).

`petit router calibrate` asks every question of a checkable set to the
fleet's small and large model (named, temperature 0) and records, per
question, whether each was right, the small model's token-logprob confidence
and the learned router's score. Because both answers are recorded, any
policy's outcome on those questions follows exactly, without asking again:

- ``learned(threshold)``: the large model answers when score >= threshold;
- ``cascade(min_mean, min_token)``: the small model answers; its answer is
  kept when `cascade.judge` finds it confident, else the large model answers
  (an escalated question costs both calls: it counts as a large call);
  with a mean threshold per prompt kind (`cascade.prompt_kind`) when the
  questions hold more than one kind: on one fleet the large model may be no
  better than the small one on multiple choice and far better on arithmetic.

`fit` picks, on the calibration part and among settings that send at most
`max_large_share` of the questions to the large model, the one with the
fewest large calls whose accuracy reaches ``small + frac * (large - small)``
plus `margin_se` standard errors of that accuracy (a setting that only just
reaches the goal on the questions it was picked on falls short on new ones);
when none does, the most accurate one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from serving.router.cascade import CascadeThresholds, Confidence, judge

NEVER = -1e4  # a logprob threshold no answer falls below: never escalate on it
BY_KIND = "cascade_min_mean_logprob:"  # Outcome.params key prefix of a per-kind mean threshold


@dataclass(frozen=True)
class Recorded:
    """One question's answers: correctness of both models, the small one's confidence, the router's score."""

    small_correct: bool
    large_correct: bool
    small_confidence: Confidence | None
    score: float | None = None
    kind: str = "open"  # `cascade.prompt_kind` of the question


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


def cascade_outcome(
    rows: Sequence[Recorded], min_mean: float, min_token: float, by_kind: Mapping[str, float] | None = None
) -> Outcome:
    """The cascade's outcome; `by_kind` holds mean thresholds per prompt kind, overriding `min_mean`."""
    by_kind = dict(by_kind or {})
    limits = {k: CascadeThresholds(by_kind.get(k, min_mean), min_token, 16) for k in {r.kind for r in rows}}
    up = np.array([judge(r.small_confidence, limits[r.kind]).escalate for r in rows])
    correct = np.where(up, [r.large_correct for r in rows], [r.small_correct for r in rows])
    params = {"cascade_min_mean_logprob": min_mean, "cascade_min_token_logprob": min_token}
    params |= {BY_KIND + k: v for k, v in sorted(by_kind.items())}
    return Outcome("cascade", params, float(correct.mean()), float(up.mean()), float(1 + up.mean()))


def kind_thresholds(params: Mapping[str, float]) -> dict[str, float]:
    """The per-kind mean thresholds held in an Outcome's params."""
    return {k.removeprefix(BY_KIND): v for k, v in params.items() if k.startswith(BY_KIND)}


def _mean_grid(rows: Sequence[Recorded]) -> list[float]:
    # A threshold just above an observed value escalates that answer (judge escalates below it).
    means = sorted({round(r.small_confidence.mean_logprob, 6) for r in rows if r.small_confidence is not None})
    return [NEVER, *[min(0.0, m + 1e-9) for m in means]]


def per_kind_settings(rows: Sequence[Recorded]) -> list[Outcome]:
    """For each number of escalations, the per-kind mean thresholds with the most right answers.

    A knapsack over kinds: each kind's threshold decides its own escalations and
    right answers independently (the per-token floor is off). The general mean
    threshold (for a kind calibration did not see) is the open kind's, else the commonest kind's.
    """
    kinds = sorted({r.kind for r in rows})
    best: dict[int, tuple[int, dict[str, float]]] = {0: (0, {})}
    for kind in kinds:
        sub = [r for r in rows if r.kind == kind]
        options: dict[int, tuple[int, float]] = {}  # escalations -> (right answers, threshold)
        for t in _mean_grid(sub):
            limits = CascadeThresholds(t, NEVER, 16)
            up = [judge(r.small_confidence, limits).escalate for r in sub]
            right = sum(r.large_correct if u else r.small_correct for r, u in zip(sub, up))
            n_up = sum(up)
            if n_up not in options or right > options[n_up][0]:
                options[n_up] = (right, t)
        merged: dict[int, tuple[int, dict[str, float]]] = {}
        for e1, (c1, th) in best.items():
            for e2, (c2, t) in options.items():
                if e1 + e2 not in merged or c1 + c2 > merged[e1 + e2][0]:
                    merged[e1 + e2] = (c1 + c2, {**th, kind: t})
        best = merged
    commonest = max(kinds, key=lambda k: sum(r.kind == k for r in rows))
    outcomes = sorted(best.values(), key=lambda x: x[0])
    return [cascade_outcome(rows, th.get("open", th[commonest]), NEVER, th) for _, th in outcomes]


def single_outcomes(rows: Sequence[Recorded]) -> tuple[Outcome, Outcome]:
    small = float(np.mean([r.small_correct for r in rows]))
    large = float(np.mean([r.large_correct for r in rows]))
    return Outcome("small", {}, small, 0.0, 1.0), Outcome("large", {}, large, 1.0, 1.0)


def settings(rows: Sequence[Recorded], policy: str) -> list[Outcome]:
    """Every distinct setting of `policy` the recorded data can tell apart (thresholds at observed values)."""
    if policy == "learned":
        scores = sorted({r.score for r in rows if r.score is not None})
        return [learned_outcome(rows, t) for t in [*scores, float("inf")]]
    # One free parameter per prompt kind (the mean); the per-token floor is off or the default: a
    # finer 2-D grid overfits a few hundred questions (measured: 5 points lost from calibration to held-out).
    one = [
        cascade_outcome(rows, a, b) for a in _mean_grid(rows) for b in (NEVER, CascadeThresholds().min_token_logprob)
    ]
    return one + (per_kind_settings(rows) if len({r.kind for r in rows}) > 1 else [])


def target_accuracy(rows: Sequence[Recorded], frac: float) -> float:
    small, large = single_outcomes(rows)
    return small.accuracy + frac * (large.accuracy - small.accuracy)


def fit_thresholds(
    rows: Sequence[Recorded], policy: str, frac: float = 0.6, max_large_share: float = 0.4, margin_se: float = 0.0
) -> Outcome:
    """Within the large-share cap: the fewest large calls reaching the target accuracy (plus `margin_se`
    standard errors), else the most accurate.

    Raises ValueError for an unknown policy or no rows.
    """
    if policy not in ("learned", "cascade"):
        raise ValueError(f"can fit 'learned' or 'cascade', not {policy!r}")
    if not rows:
        raise ValueError("no recorded answers to fit on")
    return _pick(settings(rows, policy), _goal(rows, frac, margin_se), max_large_share)


def _goal(rows: Sequence[Recorded], frac: float, margin_se: float) -> float:
    goal = target_accuracy(rows, frac)
    return goal + margin_se * float(np.sqrt(max(goal * (1 - goal), 0.0) / len(rows)))


def _pick(candidates: Sequence[Outcome], goal: float, max_large_share: float) -> Outcome:
    options = [o for o in candidates if o.large_share <= max_large_share + 1e-12]
    reach = [o for o in options if o.accuracy >= goal - 1e-12]
    if reach:
        return min(reach, key=lambda o: (o.large_share, -o.accuracy))
    return max(options, key=lambda o: (o.accuracy, -o.large_share))


def margin_cv(
    rows: Sequence[Recorded],
    frac: float = 0.6,
    max_large_share: float = 0.4,
    margins: Sequence[float] = (0.0, 1.0, 2.0, 3.0),
    folds: int = 5,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Choosing `margin_se` without the report split: k-fold inside the calibration rows.

    Per margin, the cascade fitted on k-1 folds is scored on the one left out:
    mean accuracy and large share over folds, and the share of folds whose
    accuracy reached that fold's own goal (``small + frac * (large - small)``).
    """
    order = np.random.default_rng(seed).permutation(len(rows))
    parts = np.array_split(order, folds)
    out: dict[str, list[tuple[float, float, bool]]] = {str(m): [] for m in margins}
    for i, test_idx in enumerate(parts):
        train = [rows[j] for k, part in enumerate(parts) if k != i for j in part]
        test = [rows[j] for j in test_idx]
        candidates = settings(train, "cascade")
        for m in margins:
            o = _pick(candidates, _goal(train, frac, m), max_large_share)
            got = cascade_outcome(test, o.params["cascade_min_mean_logprob"], o.params["cascade_min_token_logprob"],
                                  kind_thresholds(o.params))  # fmt: skip
            out[str(m)].append((got.accuracy, got.large_share, got.accuracy >= target_accuracy(test, frac) - 1e-12))
    return {
        m: {
            "accuracy": float(np.mean([a for a, _, _ in v])),
            "large_share": float(np.mean([s for _, s, _ in v])),
            "folds_reaching_goal": float(np.mean([r for _, _, r in v])),
        }
        for m, v in out.items()
    }


def choose_margin(cv: Mapping[str, Mapping[str, float]]) -> float:
    """The smallest margin whose every cross-validation fold reached its goal (else the safest tried)."""
    margins = sorted(float(m) for m in cv)
    for m in margins:
        if cv[str(m)]["folds_reaching_goal"] >= 1.0:
            return m
    return max(margins, key=lambda m: (cv[str(m)]["folds_reaching_goal"], -m))
