"""`petit router live`: accuracy and cost of routing policies on a running fleet.

Sends the live question set (serving/router/training/data/live_questions.jsonl: short
questions with checkable answers) through a running Petit endpoint once per
configuration — the cheapest model only, the strongest model only, and `auto`
under each enabled routing policy (chosen per request with `x-petit-policy`)
— scores every reply with `live_scorer`, and reports accuracy, total cost (the
`x-petit-cost-usd` headers: both calls of a cascade are included) and the
share answered by each model. Greedy decoding, so reruns agree.

    petit router live --target http://127.0.0.1:8000 [--limit N] [--concurrency 4] [--out FILE.json]
    petit router live --set all --split report ...   the held-out part of `petit router calibrate`'s questions

With ``--set``, the questions are a built-in calibration set (see `questions`)
instead of the JSONL file; ``--split report`` keeps only the part calibration
never fitted on (the same fixed split), so the live run checks the fitted
thresholds on questions they were not fitted to. `large_calls` counts every
request that reached the large model (an escalated cascade counts once more).

Exit status: 0 when every configuration ran, 1 when the target failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from serving.router.training.calibrate import MAX_TOKENS
from serving.router.training.live_scorer import QUESTIONS_PATH, Question, load_questions, score
from serving.router.training.questions import QUESTION_SETS, question_set, split_questions

DEFAULT_POLICIES = ("learned", "cascade", "cheapest_fit")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="petit router live", description=__doc__.splitlines()[0])
    p.add_argument("--target", default="http://127.0.0.1:8000", help="Petit's base URL (without /v1)")
    p.add_argument("--questions", type=Path, default=QUESTIONS_PATH)
    p.add_argument("--set", choices=QUESTION_SETS, default=None, help="a built-in question set instead of --questions")
    p.add_argument("--split", choices=("all", "report"), default="all", help="with --set: all, or the held-out part")
    p.add_argument("--max-tokens-set", type=int, default=MAX_TOKENS, help="max_tokens for --set questions")
    p.add_argument("--limit", type=int, default=None, help="only the first N questions")
    p.add_argument("--policies", default=",".join(DEFAULT_POLICIES), help="auto policies to try (comma-separated)")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--api-key", default=None)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/router_live.json"))
    return p.parse_args(argv)


RETRIES_429 = 3


async def _ask(
    client: httpx.AsyncClient, sem: asyncio.Semaphore, q: Question, model: str, policy: str | None, max_tokens: int
) -> dict:
    headers = {"x-petit-policy": policy} if policy else {}
    body = {
        "model": model,
        "messages": [{"role": "user", "content": q.question}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    async with sem:
        for attempt in range(RETRIES_429 + 1):  # a full queue is back-pressure, not a wrong answer
            r = await client.post("/v1/chat/completions", json=body, headers=headers)
            if r.status_code != 429 or attempt == RETRIES_429:
                break
            await asyncio.sleep(min(float(r.headers.get("retry-after") or 1), 10.0))
    if r.status_code != 200:
        return {"ok": False, "error": f"HTTP {r.status_code}: {r.text[:200]}"}
    reply = r.json()["choices"][0]["message"].get("content") or ""
    return {
        "ok": True,
        "correct": score(reply, q),
        "model": r.headers.get("x-petit-model"),
        "cost_usd": float(r.headers.get("x-petit-cost-usd") or 0),
        "cascade": r.headers.get("x-petit-cascade"),
    }


async def run_config(
    client: httpx.AsyncClient, questions: list[Question], model: str, policy: str | None, args: argparse.Namespace
) -> dict:
    sem = asyncio.Semaphore(args.concurrency)
    t0 = time.perf_counter()
    rows = await asyncio.gather(*(_ask(client, sem, q, model, policy, args.max_tokens) for q in questions))
    good = [r for r in rows if r["ok"]]
    answered_by = Counter(r["model"] for r in good)
    return {
        "model": model,
        "policy": policy,
        "questions": len(rows),
        "errors": len(rows) - len(good),
        "accuracy": sum(r["correct"] for r in good) / max(1, len(good)),
        "cost_usd": sum(r["cost_usd"] for r in good),
        "answered_by": {m: n / max(1, len(good)) for m, n in answered_by.items()},
        "escalated": sum(r["cascade"] == "escalated" for r in good),
        "wall_s": time.perf_counter() - t0,
        "first_error": next((r["error"] for r in rows if not r["ok"]), None),
    }


def configurations(models: list[dict], policies: list[str]) -> list[tuple[str, str, str | None]]:
    """(label, model, policy): cheapest-tier model only, strongest-tier model only, then auto per policy."""
    fleet = [m for m in models if m["id"] != "auto"]
    by_price = sorted(fleet, key=lambda m: (m["petit"]["tier"] != "small", m["petit"]["price_per_replica_hour"]))
    small, large = by_price[0]["id"], by_price[-1]["id"]
    out = [(f"{small} only", small, None), (f"{large} only", large, None)]
    return out + [(f"auto ({p})", "auto", p) for p in policies]


async def main_async(args: argparse.Namespace) -> int:
    if args.set:
        questions = [q for _, q in question_set(args.set)]
        if args.split == "report":
            questions = [questions[i] for i in split_questions(len(questions))[1]]
        args.max_tokens = args.max_tokens_set
    else:
        questions = load_questions(args.questions)
    questions = questions[: args.limit]
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    async with httpx.AsyncClient(base_url=args.target, timeout=600, headers=headers) as client:
        try:
            models = (await client.get("/v1/models")).raise_for_status().json()["data"]
        except httpx.HTTPError as err:
            print(f"error: {args.target}: {err}", file=sys.stderr)
            return 1
        results = {}
        configs = configurations(models, [p for p in args.policies.split(",") if p])
        large = configs[1][1]
        for label, model, policy in configs:
            res = await run_config(client, questions, model, policy, args)
            res["large_share"] = res["answered_by"].get(large, 0.0)  # escalated cascades included
            results[label] = res
            print(
                f"{label:28s} accuracy {res['accuracy']:6.1%}  cost ${res['cost_usd']:.6f}  "
                f"answered by {json.dumps({k: round(v, 2) for k, v in res['answered_by'].items()})}"
                f"  errors {res['errors']}",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"target": args.target, "questions": len(questions), "results": results}, indent=2))
    print(f"wrote {args.out}")
    return 0 if all(r["errors"] == 0 for r in results.values()) else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
