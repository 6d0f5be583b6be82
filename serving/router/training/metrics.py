"""Router evaluation metrics (pure numpy): the quality-vs-strong-share curve, PGR, APGR, CPT.

Definitions (RouteLLM, Ong et al. 2024, section 5.1): a router sends the
prompts with the highest scores to the strong model. At strong-call share `c`
its quality is the mean correctness of the answers it gets; the performance
gap recovered is ``PGR(c) = (quality(c) - quality_weak) / (quality_strong -
quality_weak)``. APGR is the area under PGR over c in [0, 1] (exact here: one
point per prompt, trapezoids; a random router scores 0.5 in expectation);
``apgr10`` is RouteLLM's 10-point discretisation (mean PGR at c = 0.1 .. 1.0).
CPT(x) is the smallest strong-call share whose PGR reaches x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Curve:
    """Quality and PGR at every strong-call share k/n, k = 0..n."""

    share: np.ndarray
    quality: np.ndarray
    pgr: np.ndarray


def curve(scores: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> Curve:
    """The routing curve of `scores` (higher = send to strong first; ties keep input order).

    Raises ValueError when the two models are equally good (PGR undefined).
    """
    scores, weak, strong = np.asarray(scores, float), np.asarray(weak, float), np.asarray(strong, float)
    n = len(scores)
    if not (len(weak) == len(strong) == n) or n == 0:
        raise ValueError("scores, weak and strong must have the same non-zero length")
    order = np.argsort(-scores, kind="stable")
    gain = np.concatenate([[0.0], np.cumsum(strong[order] - weak[order])])
    quality = (weak.sum() + gain) / n
    q_weak, q_strong = weak.mean(), strong.mean()
    if q_strong == q_weak:
        raise ValueError("the strong and weak models are equally good on this set: PGR is undefined")
    return Curve(np.arange(n + 1) / n, quality, (quality - q_weak) / (q_strong - q_weak))


def apgr(c: Curve) -> float:
    """Area under PGR(share) on [0, 1] (trapezoids over the exact curve)."""
    return float(np.sum((c.pgr[1:] + c.pgr[:-1]) / 2 * np.diff(c.share)))


def apgr10(c: Curve) -> float:
    """RouteLLM's discretisation: mean PGR at shares 0.1, 0.2, ..., 1.0."""
    idx = [int(round(f * (len(c.share) - 1))) for f in np.linspace(0.1, 1.0, 10)]
    return float(np.mean(c.pgr[idx]))


def cpt(c: Curve, target: float) -> float:
    """Smallest strong-call share with PGR >= `target` (1.0 if never reached before all-strong)."""
    hit = np.nonzero(c.pgr >= target - 1e-12)[0]
    return float(c.share[hit[0]]) if len(hit) else 1.0


def router_summary(scores: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> dict[str, float]:
    c = curve(scores, weak, strong)
    return {"apgr": apgr(c), "apgr10": apgr10(c), "cpt50": cpt(c, 0.5), "cpt80": cpt(c, 0.8)}


def bootstrap(
    score_fns: dict[str, callable],
    weak: np.ndarray,
    strong: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, dict]:
    """Point estimates and percentile bootstrap CIs of `router_summary` for several routers, paired.

    `score_fns[name](idx, rng)` returns the router's scores for rows `idx` (so a
    random baseline can draw fresh scores per replicate). Every replicate
    resamples the same rows for all routers, so differences are paired; the
    result also holds ``diff_apgr`` CIs of each router against every other.
    """
    weak, strong = np.asarray(weak), np.asarray(strong)
    n = len(weak)
    rng = np.random.default_rng(seed)
    full = np.arange(n)
    point = {k: router_summary(f(full, np.random.default_rng([seed, 1])), weak, strong) for k, f in score_fns.items()}
    reps: dict[str, list[dict]] = {k: [] for k in score_fns}
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if weak[idx].mean() == strong[idx].mean():
            continue
        for k, f in score_fns.items():
            reps[k].append(router_summary(f(idx, rng), weak[idx], strong[idx]))
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
    out: dict[str, dict] = {}
    for k in score_fns:
        metrics = {
            m: {
                "value": point[k][m],
                "ci": [
                    float(np.percentile([r[m] for r in reps[k]], lo)),
                    float(np.percentile([r[m] for r in reps[k]], hi)),
                ],
            }
            for m in point[k]
        }
        diffs = {}
        for other in score_fns:
            if other != k:
                d = [a["apgr"] - b["apgr"] for a, b in zip(reps[k], reps[other])]
                diffs[other] = {
                    "value": point[k]["apgr"] - point[other]["apgr"],
                    "ci": [float(np.percentile(d, lo)), float(np.percentile(d, hi))],
                }
        out[k] = dict(metrics, diff_apgr=diffs, n_boot=len(reps[k]))
    return out
