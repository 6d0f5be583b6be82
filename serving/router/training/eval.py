"""`petit router eval`: the quality-vs-strong-share curve of routers on labelled data, with baselines.

    petit router eval [--data FILE|DIR] [--policy learned,length,random,oracle] [--split test|all]
                      [--out-json PATH] [--out-png PATH] [--n-boot 1000]
    petit router eval --split by-group [--data-dir DIR] [--out-json PATH]

``--split by-group`` is the out-of-distribution headline: every labelled
source in the data folder, one task group held out at a time (see
`group_eval`); it writes a JSON and a Markdown table beside it.

Data: a CSV with columns ``prompt, weak_correct, strong_correct`` (booleans as
1/0 or true/false; see `serving.router.training.data`), or RouteLLM's per-subject MMLU
files (one file or the folder). Routers: ``learned`` (the shipped artefact's
score), ``length`` (longer prompts go strong), ``random``, ``oracle`` (knows
the labels; an upper bound). ``--split test`` (the default when the data is
the artefact's training data) evaluates on the held-out rows only.

Output: a PNG (quality vs strong share, all routers on one plot) and a JSON
with APGR, APGR(10 points), CPT(50%), CPT(80%) and bootstrap 95% CIs, plus
paired APGR differences between routers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from serving.router import artifact as artifacts
from serving.router.classifier import prompt_features
from serving.router.training.data import (
    REPO_ROOT,
    DataError,
    LabelledSet,
    default_mmlu_dir,
    load_labelled,
    split_indices,
)
from serving.router.training.embeddings import DEFAULT_CACHE_DIR, embed_labelled
from serving.router.training.metrics import bootstrap, curve
from serving.router.training.plots import finish, new_axes

ROUTERS = ("learned", "length", "random", "oracle")
RESULTS = REPO_ROOT / "benchmarks" / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="petit router eval", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None, help="CSV or RouteLLM MMLU file/folder (default: MMLU)")
    p.add_argument("--policy", default=",".join(ROUTERS), help=f"comma-separated subset of {', '.join(ROUTERS)}")
    p.add_argument("--split", choices=("auto", "test", "all", "by-group"), default="auto")
    p.add_argument("--data-dir", type=Path, default=None, help="by-group: the router data folder")
    p.add_argument("--out-json", type=Path, default=RESULTS / "router_eval.json")
    p.add_argument("--out-png", type=Path, default=RESULTS / "router_eval.png")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    return p.parse_args(argv)


def router_scores(names: list[str], ds: LabelledSet, learned: np.ndarray | None) -> dict:
    """name -> fn(idx, rng) giving scores for rows idx (random draws fresh scores per call)."""
    length = np.array([len(p) for p in ds.prompts], float)
    oracle = ds.strong_correct.astype(float) - ds.weak_correct.astype(float)
    table = {
        "learned": lambda idx, rng: learned[idx],
        "length": lambda idx, rng: length[idx],
        "random": lambda idx, rng: rng.random(len(idx)),
        "oracle": lambda idx, rng: oracle[idx],
    }
    return {n: table[n] for n in names}


def plot(path: Path, fns: dict, ds: LabelledSet, title: str) -> None:
    fig, ax = new_axes()
    full = np.arange(len(ds))
    for name, fn in fns.items():
        c = curve(fn(full, np.random.default_rng(0)), ds.weak_correct, ds.strong_correct)
        ax.plot(100 * c.share, 100 * c.quality, label=name, linestyle="--" if name == "oracle" else "-")
    ax.axhline(100 * ds.weak_correct.mean(), color="grey", lw=0.8, ls=":", label="weak only")
    ax.axhline(100 * ds.strong_correct.mean(), color="black", lw=0.8, ls=":", label="strong only")
    finish(fig, ax, path, title, "strong-model calls (%)", "accuracy (%)")


def _learned_scores(ds: LabelledSet, art: artifacts.RouterArtifact, args, encoder_factory) -> np.ndarray:
    emb = embed_labelled(ds, art.max_seq_length, encoder_factory, args.cache_dir)
    return art.classifier.scores(prompt_features(emb, np.array([len(p) for p in ds.prompts])))


def by_group(args: argparse.Namespace, encoder_factory) -> int:
    from serving.router.encoder import MAX_SEQ_LENGTH
    from serving.router.training.group_eval import evaluate_by_group, markdown_table
    from serving.router.training.sources import load_grouped

    try:
        gs = load_grouped(args.data_dir)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{len(gs.data)} prompts in {len(gs.group_names)} groups (deduplicated); embedding...", flush=True)
    emb = embed_labelled(gs.data, MAX_SEQ_LENGTH, encoder_factory, args.cache_dir)
    result = evaluate_by_group(gs, emb, n_boot=args.n_boot, seed=args.seed, progress=lambda s: print(s, flush=True))
    result.update(data=gs.data.source, data_sha256=gs.data.sha256, n=len(gs.data))
    out = args.out_json if args.out_json != RESULTS / "router_eval.json" else RESULTS / "router_eval_by_group.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    table = markdown_table(result)
    out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
    print(table)
    print(f"learned beats length by >= 0.05 APGR on {result['learned_beats_length_by_0.05']}")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def main(argv: list[str] | None = None, encoder_factory=None, artifact: artifacts.RouterArtifact | None = None) -> int:
    args = parse_args(argv)
    if args.split == "by-group":
        if encoder_factory is None:
            from serving.router.predictor import default_encoder_factory as encoder_factory
        return by_group(args, encoder_factory)
    names = [n.strip() for n in args.policy.split(",") if n.strip()]
    bad = [n for n in names if n not in ROUTERS]
    if bad or not names:
        print(f"error: unknown router(s) {bad}; known: {', '.join(ROUTERS)}", file=sys.stderr)
        return 2
    try:
        ds = load_labelled(args.data or default_mmlu_dir())
        art = artifact or (artifacts.load() if "learned" in names else None)
    except (DataError, artifacts.ArtifactError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    trained_on_it = art is not None and art.metadata["training"]["data_sha256"] == ds.sha256
    split = args.split if args.split != "auto" else ("test" if trained_on_it else "all")
    if encoder_factory is None:
        from serving.router.predictor import default_encoder_factory as encoder_factory
    learned = _learned_scores(ds, art, args, encoder_factory) if "learned" in names else None
    if split == "test":  # embed the whole set (one cache entry), then keep the held-out rows
        idx = split_indices(len(ds))[1]
        ds, learned = ds.subset(idx), None if learned is None else learned[idx]
    fns = router_scores(names, ds, learned)
    try:
        result = bootstrap(fns, ds.weak_correct, ds.strong_correct, n_boot=args.n_boot, seed=args.seed)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    report = {
        "data": ds.source,
        "data_sha256": ds.sha256,
        "split": split,
        "n": len(ds),
        "weak_accuracy": float(ds.weak_correct.mean()),
        "strong_accuracy": float(ds.strong_correct.mean()),
        "artifact": None if art is None else {k: art.metadata.get(k) for k in ("name", "version", "encoder")},
        "metric_notes": "APGR: exact area under PGR(strong share); apgr10: RouteLLM's 10-point mean; "
        "CPT(x): min strong share with PGR>=x; 95% percentile bootstrap CIs (paired)",
        "routers": result,
    }
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    args.out_json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    plot(args.out_png, fns, ds, f"{Path(ds.source).name} ({split}, n={len(ds)})")
    for n in names:
        r = result[n]
        print(
            f"{n:8s} APGR {r['apgr']['value']:.3f} [{r['apgr']['ci'][0]:.3f}, {r['apgr']['ci'][1]:.3f}]  "
            f"CPT50 {r['cpt50']['value']:.1%}  CPT80 {r['cpt80']['value']:.1%}"
        )
    print(f"wrote {args.out_json} and {args.out_png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
