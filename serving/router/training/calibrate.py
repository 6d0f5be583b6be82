"""`petit router calibrate`: fit the router's and the cascade's thresholds to the fleet that serves them.

    petit router calibrate [--target URL] [--fleet FILE] [--questions FILE.jsonl] [--frac 0.6]
                           [--max-large-share 0.4] [--out-json PATH] [--out-png PATH]

Asks every question of a checkable set (``--set all``: 600 multiple-choice
questions across five task types from the data folder, verified by sha256,
plus 400 generated arithmetic questions of eight kinds; see `questions`) to
the fleet's cheapest and strongest model by
name, temperature 0, and records correctness, the small model's token
logprobs and the learned router's score. A fixed 40 % of the questions is
kept out of fitting (the report split). On the rest it fits, for `learned` and
for `cascade`, the cheapest setting whose accuracy reaches
``small + frac * (large - small)`` (see `fitting`), and reports every policy
on the held-out part. The fitted values go into the fleet file's
``routing.initial_state`` (printed as YAML), which every ingress replica
starts from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import httpx
import numpy as np

from serving.fleet.schema import FleetConfig, FleetConfigError, RoutingConfig, load_fleet
from serving.router.build import build_router
from serving.router.cascade import Confidence, confidence, prompt_kind, token_logprobs
from serving.router.training.data import REPO_ROOT, DataError
from serving.router.training.fitting import (
    Outcome,
    Recorded,
    cascade_outcome,
    choose_margin,
    fit_thresholds,
    kind_thresholds,
    learned_outcome,
    margin_cv,
    settings,
    single_outcomes,
)
from serving.router.training.live_scorer import Question, load_questions, score
from serving.router.training.plots import finish, new_axes
from serving.router.training.questions import QUESTION_SETS, question_set, split_questions

RESULTS = REPO_ROOT / "benchmarks" / "results"
MAX_TOKENS = 12  # room for "7 + 5 = 12": small models rarely answer with the bare number


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="petit router calibrate", description=__doc__.splitlines()[0])
    p.add_argument("--target", default="http://127.0.0.1:8000", help="Petit's base URL (without /v1)")
    p.add_argument("--fleet", type=Path, default=Path("deploy/fleet.local.yaml"))
    p.add_argument("--questions", type=Path, default=None, help="your own JSONL question set (overrides --set)")
    p.add_argument("--set", choices=QUESTION_SETS, default="all", help="built-in question set (see questions.py)")
    p.add_argument("--frac", type=float, default=0.6, help="target: small + frac x (large - small) accuracy")
    p.add_argument("--max-large-share", type=float, default=0.4)
    p.add_argument(
        "--margin-se",
        type=float,
        default=None,
        help="reach the goal by this many standard errors on the calibration part (default: the smallest of "
        "0/1/2/3 whose every 5-fold cross-validation fold inside the calibration part reaches its goal)",
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N questions (smoke runs)")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--api-key", default=None)
    p.add_argument("--out-json", type=Path, default=RESULTS / "router_calibration.json")
    p.add_argument("--out-png", type=Path, default=RESULTS / "router_calibration.png")
    p.add_argument("--from-json", type=Path, default=None, help="refit and replot a previous run's answers (no asking)")
    p.add_argument("--live", type=Path, default=None, help="`petit router live --split report` results to plot too")
    p.add_argument(
        "--rescore", action="store_true", help="with --from-json: the router's scores from the current artefact"
    )
    return p.parse_args(argv)


def small_and_large(fleet: FleetConfig) -> tuple[str, str]:
    """The cheapest-tier model and the strongest-tier one (price breaks ties)."""
    ms = sorted(fleet.models, key=lambda m: (m.tier.rank, m.price_per_replica_hour))
    return ms[0].id, ms[-1].id


RETRIES_429 = 5


async def ask(client: httpx.AsyncClient, sem: asyncio.Semaphore, q: Question, model: str) -> tuple[bool, list[float]]:
    """(correct, the reply's token logprobs). Raises httpx.HTTPStatusError on a non-200 answer."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": q.question}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "logprobs": True,
    }
    async with sem:
        for attempt in range(RETRIES_429 + 1):
            r = await client.post("/v1/chat/completions", json=body)
            if r.status_code != 429 or attempt == RETRIES_429:
                break
            await asyncio.sleep(min(float(r.headers.get("retry-after") or 1), 10.0))
    r.raise_for_status()
    choice = r.json()["choices"][0]
    return score(choice["message"].get("content") or "", q), token_logprobs(choice.get("logprobs"))


Scorer = Callable[[list[str]], list[float | None]]


def learned_scores(texts: list[str]) -> list[float | None]:
    """The shipped learned router's score for each prompt (None when it runs degraded)."""
    router = build_router(RoutingConfig(default_policy="learned"))
    preds = router.predictor.predict(texts) if router.predictor else None
    return [None] * len(texts) if preds is None else [p.score for p in preds]


async def record(
    args: argparse.Namespace,
    questions: list[Question],
    small: str,
    large: str,
    scorer: Scorer = learned_scores,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[Recorded]:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    sem = asyncio.Semaphore(args.concurrency)
    async with httpx.AsyncClient(base_url=args.target, timeout=600, headers=headers, transport=transport) as client:
        answers = {}
        for model in (small, large):
            t0 = time.perf_counter()
            answers[model] = await asyncio.gather(*(ask(client, sem, q, model) for q in questions))
            print(f"asked {model}: {len(questions)} questions in {time.perf_counter() - t0:.0f}s", flush=True)
    scores = scorer([q.question for q in questions])
    return [
        Recorded(ok_s, ok_l, confidence(lp_s), scores[i], prompt_kind(questions[i].question))
        for i, ((ok_s, lp_s), (ok_l, _)) in enumerate(zip(answers[small], answers[large]))
    ]


def _recorded(d: dict[str, object]) -> Recorded:
    conf = d.get("small_confidence")
    c = Confidence(**conf) if isinstance(conf, dict) else None
    score = d.get("score")
    return Recorded(bool(d["small_correct"]), bool(d["large_correct"]), c, None if score is None else float(score))  # type: ignore[arg-type]


def report_outcomes(rows: list[Recorded], fitted: dict[str, Outcome]) -> dict[str, dict[str, object]]:
    """Every policy's outcome on held-out rows, with the fitted settings."""
    small, large = single_outcomes(rows)
    out = {"small": asdict(small), "large": asdict(large)}
    lp = fitted["learned"].params
    out["learned"] = asdict(learned_outcome(rows, lp["threshold"]))
    cp = fitted["cascade"].params
    mean, floor = cp["cascade_min_mean_logprob"], cp["cascade_min_token_logprob"]
    out["cascade"] = asdict(cascade_outcome(rows, mean, floor, kind_thresholds(cp)))
    return out


def frontier(rows: list[Recorded], policy: str) -> list[tuple[float, float]]:
    """(large share, accuracy) of every setting, upper-left hull order (for the plot)."""
    pts = sorted({(o.large_share, o.accuracy) for o in settings(rows, policy)})
    hull: list[tuple[float, float]] = []
    for x, y in pts:
        if not hull or y > hull[-1][1]:
            hull.append((x, y))
    return hull


def live_points(path: Path | None) -> dict[str, tuple[float, float]]:
    """`auto (<policy>)` -> (large share, accuracy) from a `petit router live` result file."""
    if path is None or not path.exists():
        return {}
    results = json.loads(path.read_text("utf-8"))["results"]
    return {k: (float(v["large_share"]), float(v["accuracy"])) for k, v in results.items() if k.startswith("auto")}


def plot_calibration(
    path: Path,
    rows: list[Recorded],
    held: dict[str, dict[str, object]],
    title: str,
    live: dict[str, tuple[float, float]] | None = None,
) -> None:
    fig, ax = new_axes()
    s, lg = held["small"], held["large"]
    ax.plot([0, 100], [100 * float(s["accuracy"]), 100 * float(lg["accuracy"])], color="grey", ls=":",
            label="random mix of the two models")  # fmt: skip
    for policy, style in (("learned", "-"), ("cascade", "--")):
        pts = frontier(rows, policy)
        ax.plot([100 * x for x, _ in pts], [100 * y for _, y in pts], style, label=f"{policy}, every threshold")
        o = held[policy]
        ax.scatter([100 * float(o["large_share"])], [100 * float(o["accuracy"])], zorder=3, label=f"{policy}, fitted")
    ax.scatter([0, 100], [100 * float(s["accuracy"]), 100 * float(lg["accuracy"])], color="black", zorder=3)
    for label, (x, y) in (live or {}).items():
        ax.scatter([100 * x], [100 * y], marker="*", s=140, zorder=4, label=f"{label}, live on the fleet")
    xlabel = "questions reaching the large model (%)  (escalations count)"
    finish(fig, ax, path, title, xlabel, "accuracy on held-out questions (%)", legend_at="lower right")


def _yaml_float(v: float) -> str:
    return (".inf" if v > 0 else "-.inf") if np.isinf(v) else f"{v:.6g}"


def initial_state_yaml(fitted: dict[str, Outcome]) -> str:
    """The fitted values as the fleet file's `routing.initial_state` block."""
    c = fitted["cascade"].params
    by_kind = kind_thresholds(c)
    kinds = ", ".join(f"{k}: {_yaml_float(v)}" for k, v in by_kind.items())
    return (
        "routing:\n  initial_state:\n"
        f"    threshold: {_yaml_float(fitted['learned'].params['threshold'])}\n"
        f"    cascade_min_mean_logprob: {_yaml_float(c['cascade_min_mean_logprob'])}\n"
        f"    cascade_min_token_logprob: {_yaml_float(c['cascade_min_token_logprob'])}\n"
        + (f"    cascade_min_mean_logprob_by_kind: {{{kinds}}}\n" if by_kind else "")
    )


def main(
    argv: list[str] | None = None, scorer: Scorer = learned_scores, transport: httpx.AsyncBaseTransport | None = None
) -> int:
    args = parse_args(argv)
    try:
        fleet = load_fleet(args.fleet)
        tasks_qs = [("custom", q) for q in load_questions(args.questions)] if args.questions else question_set(args.set)
    except (FleetConfigError, DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    tasks_qs = tasks_qs[: args.limit]
    tasks, questions = [t for t, _ in tasks_qs], [q for _, q in tasks_qs]
    small, large = small_and_large(fleet)
    if args.from_json:
        rows = [_recorded(r) for r in json.loads(args.from_json.read_text("utf-8"))["recorded"]]
        if len(rows) != len(tasks):
            print(f"error: {args.from_json} has {len(rows)} answers, the question set {len(tasks)}", file=sys.stderr)
            return 1
        rows = [replace(r, kind=prompt_kind(q.question)) for r, q in zip(rows, questions)]
        if args.rescore:
            scores = scorer([q.question for q in questions])
            rows = [replace(r, score=sc) for r, sc in zip(rows, scores)]
    else:
        try:
            rows = asyncio.run(record(args, questions, small, large, scorer, transport))
        except httpx.HTTPError as err:
            print(f"error: {args.target}: {err}", file=sys.stderr)
            return 1
    cal, rep = split_questions(len(rows))
    cal_rows, rep_rows = [rows[i] for i in cal], [rows[i] for i in rep]
    cv = margin_cv(cal_rows, args.frac, args.max_large_share)
    margin = choose_margin(cv) if args.margin_se is None else args.margin_se
    fitted = {p: fit_thresholds(cal_rows, p, args.frac, args.max_large_share, margin) for p in ("learned", "cascade")}
    held = report_outcomes(rep_rows, fitted)
    per_task = {
        t: {
            "n": int(sum(1 for x in tasks if x == t)),
            small: float(np.mean([r.small_correct for r, x in zip(rows, tasks) if x == t])),
            large: float(np.mean([r.large_correct for r, x in zip(rows, tasks) if x == t])),
        }
        for t in sorted(set(tasks))
    }
    goal = held["small"]["accuracy"] + args.frac * (held["large"]["accuracy"] - held["small"]["accuracy"])  # type: ignore[operator]
    report = {
        "fleet": str(args.fleet),
        "small": small,
        "large": large,
        "questions": len(rows),
        "calibration_n": len(cal_rows),
        "report_n": len(rep_rows),
        "target": {
            "frac": args.frac,
            "max_large_share": args.max_large_share,
            "margin_se": margin,
            "report_accuracy_goal": goal,
        },
        "margin_cv": cv,
        "fitted_on_calibration": {p: asdict(o) for p, o in fitted.items()},
        "held_out": held,
        "per_task_accuracy": per_task,
        "recorded": [asdict(r) for r in rows],
    }
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    args.out_json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    title = f"{small} vs {large}, held-out {len(rep_rows)} questions"
    plot_calibration(args.out_png, rep_rows, held, title, live_points(args.live))
    for name, o in held.items():
        print(f"{name:8s} accuracy {float(o['accuracy']):6.1%}  large-model share {float(o['large_share']):6.1%}")  # type: ignore[arg-type]
    print(f"goal (held out): accuracy >= {goal:.1%}")
    print(initial_state_yaml(fitted))
    print(f"wrote {args.out_json} and {args.out_png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
