"""`petit router train`: fit the difficulty classifier and write the shipped artefact.

    petit router train [--data PATH] [--out-dir DIR] [--name NAME] [--cache-dir DIR]

Reads RouteLLM's MMLU labels (default: ../shared/data/router/routellm_mmlu/
mmlu_responses, contaminated prompts excluded), holds out a fixed by-row test
split (seed `data.SPLIT_SEED`, 20 %) that training never sees, splits the rest
into fit (90 %) and validation (10 %), picks the model shape and score kind by
validation APGR, calibrates the threshold quantiles on the validation scores
and writes ``<name>.npz`` + ``<name>.json`` into serving/router/artifacts/.
Embedding the ~14k prompts takes a few minutes on 2 CPU cores (cached).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from serving.router import artifact as artifacts
from serving.router.calibration import score_quantiles
from serving.router.classifier import SCORE_KINDS, fit, outcome_labels, prompt_features, routing_score
from serving.router.training.data import (
    SPLIT_SEED,
    TEST_FRACTION,
    DataError,
    default_mmlu_dir,
    load_labelled,
    split_indices,
)
from serving.router.training.embeddings import DEFAULT_CACHE_DIR, embed_labelled
from serving.router.training.metrics import router_summary

GRID = (
    {"hidden": 0, "epochs": 30, "l2": 1e-1, "dropout": 0.0},
    {"hidden": 128, "epochs": 30, "l2": 3e-2, "dropout": 0.5},
)
VAL_FRACTION = 0.1
DEFAULT_STRONG_SHARE = 0.5


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="petit router train", description=__doc__.splitlines()[0])
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="labelled data: a CSV or RouteLLM folder, or 'all' (every source in the data dir, minus the "
        "calibration questions; default: RouteLLM MMLU)",
    )
    p.add_argument("--out-dir", type=Path, default=artifacts.ARTIFACTS_DIR)
    p.add_argument("--name", default=artifacts.DEFAULT_NAME)
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="embedding cache")
    p.add_argument("--seed", type=int, default=0, help="training seed (the test split seed is fixed)")
    return p.parse_args(argv)


def select_classifier(
    x: np.ndarray,
    y: np.ndarray,
    weak: np.ndarray,
    strong: np.ndarray,
    fit_idx: np.ndarray,
    val_idx: np.ndarray,
    seed: int,
) -> tuple[object, dict, list[dict]]:
    """Fit every GRID entry on `fit_idx`; return the best (by validation APGR) classifier, its config and all results."""
    results, best = [], None
    for cfg in GRID:
        clf = fit(x[fit_idx], y[fit_idx], seed=seed, **cfg)
        p = clf.probabilities(x[val_idx])
        for kind in SCORE_KINDS:
            m = router_summary(routing_score(p, kind), weak[val_idx], strong[val_idx])
            results.append(dict(cfg, score_kind=kind, val_apgr=m["apgr"]))
            if best is None or m["apgr"] > best[1]["val_apgr"]:
                best = (clf, results[-1])
    clf, cfg = best
    clf.score_kind = cfg["score_kind"]
    return clf, cfg, results


def all_sources_without_calibration(encoder_factory, cache_dir: Path, max_seq_length: int):
    """Every grouped source, minus prompts whose question stem is in the calibration set (no leak into
    `petit router calibrate`'s results). Returns (set, embeddings, rows left out)."""
    from serving.router.training.questions import choice_questions
    from serving.router.training.sources import load_grouped, stem_key

    gs = load_grouped()
    emb = embed_labelled(gs.data, max_seq_length, encoder_factory, cache_dir)  # the whole set: one cache entry
    held = {stem_key(q.question) for _, q in choice_questions()}
    keep = np.array([stem_key(p) not in held for p in gs.data.prompts])
    idx = np.nonzero(keep)[0]
    return gs.data.subset(idx), emb[idx], int((~keep).sum())


def held_out_summary(clf, x: np.ndarray, ds, test_idx: np.ndarray) -> dict:
    """APGR of the fitted router and the length baseline on the held-out rows (point estimates)."""
    weak, strong = ds.weak_correct[test_idx], ds.strong_correct[test_idx]
    length = np.log1p([len(ds.prompts[i]) for i in test_idx])
    if weak.mean() == strong.mean():
        return {"n": int(len(test_idx)), "learned_apgr": None, "length_apgr": None}  # PGR undefined
    return {
        "n": int(len(test_idx)),
        "learned_apgr": router_summary(clf.scores(x[test_idx]), weak, strong)["apgr"],
        "length_apgr": router_summary(length, weak, strong)["apgr"],
    }


def main(argv: list[str] | None = None, encoder_factory=None) -> int:
    args = parse_args(argv)
    if encoder_factory is None:
        from serving.router.predictor import default_encoder_factory as encoder_factory
    from serving.router.encoder import ENCODER_NAME, MAX_SEQ_LENGTH

    t0 = time.perf_counter()
    source = "RouteLLM MMLU (weak=Mixtral-8x7B, strong=GPT-4-1106)"
    try:
        if str(args.data) == "all":
            ds, emb, excluded = all_sources_without_calibration(encoder_factory, args.cache_dir, MAX_SEQ_LENGTH)
            source = f"every source ({ds.source}); {excluded} calibration questions left out"
        else:
            ds = load_labelled(args.data or default_mmlu_dir())
            emb = embed_labelled(ds, MAX_SEQ_LENGTH, encoder_factory, args.cache_dir)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    x = prompt_features(emb, np.array([len(p) for p in ds.prompts]))
    y = outcome_labels(ds.weak_correct, ds.strong_correct)
    train_idx, test_idx = split_indices(len(ds))
    inner = np.random.default_rng(SPLIT_SEED + 1).permutation(train_idx)
    n_val = int(round(len(inner) * VAL_FRACTION))
    val_idx, fit_idx = np.sort(inner[:n_val]), np.sort(inner[n_val:])
    clf, cfg, results = select_classifier(x, y, ds.weak_correct, ds.strong_correct, fit_idx, val_idx, args.seed)
    meta = {
        "name": args.name,
        "encoder": ENCODER_NAME,
        "max_seq_length": MAX_SEQ_LENGTH,
        "encoder_runtime": getattr(encoder_factory, "tag", "custom"),  # onnx-int8 | st: what embedded the data
        "features": "embedding(384, L2-normalised) + log1p(prompt chars)/8",
        "outcomes": ["both_wrong", "only_weak", "only_strong", "both_right"],
        "training": {
            "data_sha256": ds.sha256,
            "source": source,
            "n_rows": len(ds),
            "n_fit": int(len(fit_idx)),
            "n_val": int(len(val_idx)),
            "split_seed": SPLIT_SEED,
            "test_fraction": TEST_FRACTION,
            "train_seed": args.seed,
            "config": cfg,
            "grid": results,
        },
        "calibration": {"sample": "validation split", "score_quantiles": score_quantiles(clf.scores(x[val_idx]))},
        "default_strong_share": DEFAULT_STRONG_SHARE,
    }
    meta["test"] = held_out_summary(clf, x, ds, test_idx)
    print(f"held-out rows (in distribution): {json.dumps(meta['test'])}")
    npz, js = args.out_dir / f"{args.name}.npz", args.out_dir / f"{args.name}.json"
    artifacts.save(clf, meta, npz, js)
    print(
        f"wrote {npz} ({npz.stat().st_size / 1024:.0f} KiB) and {js.name}; chose {cfg} "
        f"in {time.perf_counter() - t0:.0f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
