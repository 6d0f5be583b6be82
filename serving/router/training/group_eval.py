"""Out-of-distribution evaluation: train on every task group but one, test on the one left out.

`petit router eval --split by-group` reads every labelled source
(`sources.load_grouped`: RouteLLM MMLU by subject category, LLMRouter by task,
MMLU-Pro by subject group; deduplicated), and for each group whose strong
model is better than its weak one by at least `MIN_GAP` (elsewhere PGR is
undefined or noise) and that has `MIN_ROWS` rows trains the learned router's recipe (MiniLM embedding +
log length, the outcome classifier, "gain" score) on all other groups and
scores the held-out one. Baselines on the same rows: ``length`` (longer
prompts go strong), ``random``, ``oracle`` (knows the labels). APGR comes with
paired bootstrap 95% CIs; the worst group is the headline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from serving.router.classifier import fit, outcome_labels, prompt_features, routing_score
from serving.router.training.metrics import bootstrap
from serving.router.training.sources import GroupedSet

MIN_GAP = 0.05
MIN_ROWS = 30
RECIPE = {"hidden": 0, "epochs": 30, "l2": 1e-1, "dropout": 0.0}


def held_out_scores(gs: GroupedSet, x: np.ndarray, y: np.ndarray, group: str, seed: int = 0) -> np.ndarray:
    """The learned recipe (features `x`, outcomes `y` of every row) trained on every other group,
    scoring `group`'s rows (in their order)."""
    train, test = gs.groups != group, gs.groups == group
    clf = fit(x[train], y[train], seed=seed, **RECIPE)  # type: ignore[arg-type]
    return routing_score(clf.probabilities(x[test]), "gain")


def _fixed(scores: np.ndarray) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    return lambda idx, rng: scores[idx]


def evaluate_by_group(
    gs: GroupedSet,
    emb: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    progress: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Per held-out group: sizes, accuracies and every router's APGR with CIs; plus the worst group per router."""
    groups: dict[str, Any] = {}
    x = prompt_features(emb, np.array([len(p) for p in gs.data.prompts]))  # once, for every fold
    y = outcome_labels(gs.data.weak_correct, gs.data.strong_correct)
    for name in gs.group_names:
        rows = np.nonzero(gs.groups == name)[0]
        weak, strong = gs.data.weak_correct[rows], gs.data.strong_correct[rows]
        entry: dict[str, Any] = {
            "n": int(len(rows)),
            "weak_accuracy": float(weak.mean()),
            "strong_accuracy": float(strong.mean()),
        }
        groups[name] = entry
        if len(rows) < MIN_ROWS:
            entry["skipped"] = f"{len(rows)} rows < {MIN_ROWS}"
        elif strong.mean() - weak.mean() < MIN_GAP:
            entry["skipped"] = f"strong - weak accuracy {strong.mean() - weak.mean():+.3f} < {MIN_GAP}: PGR undefined"
        if "skipped" in entry:
            progress(f"{name}: skipped ({entry['skipped']})")
            continue
        learned = held_out_scores(gs, x, y, name, seed)
        length = np.log1p([len(gs.data.prompts[i]) for i in rows])
        oracle = strong.astype(float) - weak.astype(float)
        fns = {
            "learned": _fixed(learned),
            "length": _fixed(length),
            "random": lambda idx, rng: rng.random(len(idx)),
            "oracle": _fixed(oracle),
        }
        entry["routers"] = bootstrap(fns, weak, strong, n_boot=n_boot, seed=seed)  # type: ignore[arg-type]
        r = entry["routers"]
        progress(
            f"{name}: learned {r['learned']['apgr']['value']:.3f} length {r['length']['apgr']['value']:.3f} "
            f"random {r['random']['apgr']['value']:.3f} (n={len(rows)})"
        )
    evaluated = {k: v for k, v in groups.items() if "routers" in v}
    worst = {
        router: min(((g, v["routers"][router]["apgr"]["value"]) for g, v in evaluated.items()), key=lambda t: t[1])
        for router in ("learned", "length", "random", "oracle")
    }
    beats = sum(
        v["routers"]["learned"]["apgr"]["value"] >= v["routers"]["length"]["apgr"]["value"] + 0.05
        for v in evaluated.values()
    )
    return {
        "min_gap": MIN_GAP,
        "recipe": RECIPE,
        "groups": groups,
        "worst": {k: {"group": g, "apgr": a} for k, (g, a) in worst.items()},
        "mean_apgr": {k: float(np.mean([v["routers"][k]["apgr"]["value"] for v in evaluated.values()])) for k in worst},
        "learned_beats_length_by_0.05": f"{beats} of {len(evaluated)} groups",
    }


def markdown_table(result: dict[str, Any]) -> str:
    """The per-group table, worst group last."""
    lines = [
        "| held-out group | n | weak | strong | learned APGR [95% CI] | length | random | oracle |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, v in result["groups"].items():
        if "routers" not in v:
            lines.append(
                f"| {name} | {v['n']} | {v['weak_accuracy']:.3f} | {v['strong_accuracy']:.3f} | skipped: no gap | | | |"
            )
            continue
        r = v["routers"]
        ci = r["learned"]["apgr"]["ci"]
        lines.append(
            f"| {name} | {v['n']} | {v['weak_accuracy']:.3f} | {v['strong_accuracy']:.3f} | "
            f"{r['learned']['apgr']['value']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] | {r['length']['apgr']['value']:.3f} | "
            f"{r['random']['apgr']['value']:.3f} | {r['oracle']['apgr']['value']:.3f} |"
        )
    w = result["worst"]
    lines.append(
        f"| **worst group** | | | | {w['learned']['apgr']:.3f} ({w['learned']['group']}) | "
        f"{w['length']['apgr']:.3f} | {w['random']['apgr']:.3f} | {w['oracle']['apgr']:.3f} |"
    )
    return "\n".join(lines)
