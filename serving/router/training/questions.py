"""Checkable questions for calibrating a fleet, in short-answer formats small models can produce.

Two families, both with gold answers and a fixed seed:

- ``choice`` (`choice_questions`): a sample per task of LLMRouter's query
  files (ARC-Challenge, CommonsenseQA, OpenBookQA, MMLU) and of MMLU-Pro, as
  multiple choice ("Answer with the letter only."). Read from the data folder
  (`data.default_data_dir`) and verified by sha256; nothing is copied into the
  repository. Right for 7B-70B fleets; sub-1B models answer it at chance.
- ``arithmetic`` (`arithmetic_questions`): generated questions of eight kinds
  from one-digit sums to two-step word problems ("Answer with only the
  number."), which sub-1B models answer well on the easy kinds only.

`question_set("all")` is both. Users pass their own set as JSONL
(`live_scorer.load_questions`).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from serving.router.training.data import DataError, default_data_dir
from serving.router.training.live_scorer import Question
from serving.router.training.sources import LETTERS, parse_options

CHOICE_TASKS = ("arc_challenge", "commonsense_qa", "openbook_qa", "mmlu")
PER_TASK = 120
MMLU_PRO_N = 120
SEED = 20261129
FILES = {
    "llmrouter_ulab/data/example_data/query_data/default_query_test.jsonl": (
        "ecb291d4d65f6329801850ff601f684c5d8ea3dce91ec8ed87fa8c562bcfc50a"
    ),
    "llmrouter_ulab/data/example_data/query_data/default_query_train.jsonl": (
        "38ec743ea7a209c2bbaa722c0027c29cb67d73738316951d92e3d40714194958"
    ),
    "mmlu_pro/model_outputs_Meta-Llama-3_1-70B-Instruct_5shots.zip": (
        "26573565138fcd27358a0945c9f525a7d9a75a756689058a0d5bfcbc64fa55cb"
    ),
}
INSTRUCTION = "Answer with the letter only."


def _read_verified(base: Path, rel: str) -> bytes:
    path = base / rel
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror}); set PETIT_ROUTER_DATA or pass --questions") from None
    got = hashlib.sha256(raw).hexdigest()
    if got != FILES[rel]:
        raise DataError(f"{path}: sha256 {got[:12]}... does not match the expected {FILES[rel][:12]}...")
    return raw


def format_choice(stem: str, options: list[str]) -> str:
    lines = [stem.strip()] + [f"{LETTERS[i]}. {str(o).strip()}" for i, o in enumerate(options)]
    return "\n".join(lines + [INSTRUCTION])


def _llmrouter(base: Path, rng: np.random.Generator) -> list[tuple[str, Question]]:
    by_task: dict[str, list[Question]] = {t: [] for t in CHOICE_TASKS}
    seen: set[str] = set()
    for rel in list(FILES)[:2]:
        for line in _read_verified(base, rel).decode("utf-8").split("\n"):
            if not line.strip():
                continue
            q = json.loads(line)
            task, gold = q.get("task_name"), str(q.get("ground_truth", "")).strip()
            opts = parse_options(q.get("choices"))
            if task not in by_task or opts is None or gold not in LETTERS[: len(opts)] or q["query"] in seen:
                continue
            seen.add(q["query"])
            by_task[task].append(Question(format_choice(q["query"], opts), gold, "choice"))
    out = []
    for task, qs in by_task.items():
        for i in rng.permutation(len(qs))[:PER_TASK]:
            out.append((task, qs[i]))
    return out


def _mmlu_pro(base: Path, rng: np.random.Generator) -> list[tuple[str, Question]]:
    rel = list(FILES)[2]
    raw = _read_verified(base, rel)
    with zipfile.ZipFile(__import__("io").BytesIO(raw)) as z:
        rows: list[dict[str, object]] = json.loads(z.read(z.namelist()[0]))
    rows = [r for r in rows if not str(r.get("src", "")).startswith("ori_mmlu")]  # MMLU is sampled above
    out = []
    for i in rng.permutation(len(rows))[:MMLU_PRO_N]:
        r = rows[i]
        opts = parse_options(r["options"])
        if opts is not None and str(r["answer"]) in LETTERS[: len(opts)]:
            out.append(("mmlu_pro", Question(format_choice(str(r["question"]), opts), str(r["answer"]), "choice")))
    return out


def choice_questions(data_dir: Path | None = None) -> list[tuple[str, Question]]:
    """(task, question) pairs of the multiple-choice set, in a fixed order. Raises DataError."""
    base = data_dir or default_data_dir()
    rng = np.random.default_rng(SEED)
    return _llmrouter(base, rng) + _mmlu_pro(base, rng)


ARITHMETIC_KINDS = ("add_1digit", "mul_1digit", "add_2digit", "sub_2digit", "mul_2x1", "add_3digit",
                    "word_add", "word_mul")  # fmt: skip
ARITHMETIC_PER_KIND = 50


def _arithmetic(kind: str, rng: np.random.Generator) -> tuple[str, int]:
    a, b = (int(v) for v in rng.integers(2, 10, 2))
    x, y = (int(v) for v in rng.integers(10, 100, 2))
    u, v = (int(w) for w in rng.integers(100, 1000, 2))
    table = {
        "add_1digit": (f"What is {a} + {b}?", a + b),
        "mul_1digit": (f"What is {a} * {b}?", a * b),
        "add_2digit": (f"What is {x} + {y}?", x + y),
        "sub_2digit": (f"What is {max(x, y)} - {min(x, y)}?", max(x, y) - min(x, y)),
        "mul_2x1": (f"What is {x} * {a}?", x * a),
        "add_3digit": (f"What is {u} + {v}?", u + v),
        "word_add": (f"Sam has {x} apples and buys {y} more. How many apples does Sam have now?", x + y),
        "word_mul": (f"A box holds {a} pens. How many pens are in {b} boxes?", a * b),
    }
    return table[kind]


def arithmetic_questions(per_kind: int = ARITHMETIC_PER_KIND, seed: int = SEED) -> list[tuple[str, Question]]:
    """(kind, question) pairs: `per_kind` generated questions of each of `ARITHMETIC_KINDS`, interleaved."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(per_kind):
        for kind in ARITHMETIC_KINDS:
            text, answer = _arithmetic(kind, rng)
            out.append((f"arithmetic:{kind}", Question(f"{text} Answer with only the number.", str(answer), "numeric")))
    return out


QUESTION_SETS = ("all", "choice", "arithmetic")


def question_set(name: str = "all", data_dir: Path | None = None) -> list[tuple[str, Question]]:
    """The named built-in set. Raises DataError (choice data missing) or ValueError (unknown name)."""
    if name == "arithmetic":
        return arithmetic_questions()
    if name == "choice":
        return choice_questions(data_dir)
    if name == "all":
        return choice_questions(data_dir) + arithmetic_questions()
    raise ValueError(f"unknown question set {name!r}; known: {', '.join(QUESTION_SETS)}")


def split_questions(n: int, report_fraction: float = 0.4, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """A fixed split of n questions: (calibration, report) index arrays; the report part is never fitted on."""
    order = np.random.default_rng(seed + 1).permutation(n)
    k = int(round(n * report_fraction))
    return np.sort(order[k:]), np.sort(order[:k])
