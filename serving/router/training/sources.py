"""Every labelled routing source in the data folder, as one deduplicated set with a task group per prompt.

Three sources, each a (weak, strong) model pair with 0/1 correctness per prompt:

- ``routellm_mmlu``: RouteLLM's MMLU (Mixtral-8x7B vs GPT-4-1106), grouped by MMLU's
  four subject categories (``mmlu:stem``, ``mmlu:humanities``, ``mmlu:social_sciences``,
  ``mmlu:other``);
- ``llmrouter_ulab``: LLMRouter's 11 task types (Llama-3.1-8B vs Llama-3.1-Nemotron-51B,
  the same family), one group per task (``llmrouter:<task>``); CommonGen's continuous
  coverage score counts as correct at >= 0.75;
- ``mmlu_pro``: MMLU-Pro (Llama-3.1-8B vs Llama-3.1-70B), its 14 categories grouped into
  four (``mmlu_pro:stem``, ``mmlu_pro:life``, ``mmlu_pro:social``, ``mmlu_pro:humanities``).

Prompts are deduplicated across sources by a normalised question stem (MMLU-Pro
and LLMRouter reuse MMLU questions): the first source in the order above keeps
a prompt. The data never ships with Petit (see `data.default_data_dir`).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving.router.training.data import (
    STRONG_COLUMN,
    WEAK_COLUMN,
    DataError,
    LabelledSet,
    contaminated_prompts,
    default_data_dir,
    read_rows,
)

LLMROUTER_WEAK = "llama-3.1-8b-instruct"
LLMROUTER_STRONG = "llama-3.1-nemotron-51b-instruct"
COMMONGEN_CORRECT_AT = 0.75
MMLU_PRO_WEAK = "model_outputs_Meta-Llama-3_1-8B-Instruct_5shots.zip"
MMLU_PRO_STRONG = "model_outputs_Meta-Llama-3_1-70B-Instruct_5shots.zip"
LETTERS = "ABCDEFGHIJ"

# MMLU's own subject -> category table (Hendrycks et al., categories.py).
_MMLU_STEM = (
    "abstract_algebra anatomy astronomy college_biology college_chemistry college_computer_science "
    "college_mathematics college_physics computer_security conceptual_physics electrical_engineering "
    "elementary_mathematics high_school_biology high_school_chemistry high_school_computer_science "
    "high_school_mathematics high_school_physics high_school_statistics machine_learning"
).split()
_MMLU_HUMANITIES = (
    "formal_logic high_school_european_history high_school_us_history high_school_world_history "
    "international_law jurisprudence logical_fallacies moral_disputes moral_scenarios philosophy "
    "prehistory professional_law world_religions"
).split()
_MMLU_SOCIAL = (
    "econometrics high_school_geography high_school_government_and_politics high_school_macroeconomics "
    "high_school_microeconomics high_school_psychology human_sexuality professional_psychology "
    "public_relations security_studies sociology us_foreign_policy"
).split()
MMLU_CATEGORY = {
    **{s: "stem" for s in _MMLU_STEM},
    **{s: "humanities" for s in _MMLU_HUMANITIES},
    **{s: "social_sciences" for s in _MMLU_SOCIAL},
}  # every other subject (business, health, misc, ...) is "other"
MMLU_PRO_GROUP = {
    "math": "stem",
    "physics": "stem",
    "chemistry": "stem",
    "engineering": "stem",
    "computer science": "stem",
    "biology": "life",
    "health": "life",
    "psychology": "life",
    "economics": "social",
    "business": "social",
    "law": "social",
    "history": "humanities",
    "philosophy": "humanities",
    "other": "humanities",
}


@dataclass(frozen=True)
class Row:
    prompt: str
    weak: bool
    strong: bool
    group: str


def stem_key(prompt: str) -> str:
    """A prompt's question stem, normalised: what identifies one question across sources."""
    stem = re.split(r"\n\s*\(?A[.)]\s", prompt, maxsplit=1)[0]
    return re.sub(r"[^a-z0-9]+", " ", stem.lower()).strip()[:300]


def _routellm_rows(folder: Path, digest: Any) -> Iterator[Row]:
    files = sorted(folder.glob("mmlu_*.csv"))
    if not files:
        raise DataError(f"{folder}: no mmlu_<subject>.csv files")
    flagged = contaminated_prompts(folder)
    for f in files:
        group = "mmlu:" + MMLU_CATEGORY.get(f.stem.removeprefix("mmlu_"), "other")
        for prompt, weak, strong in read_rows(f, WEAK_COLUMN, STRONG_COLUMN, digest):
            if prompt not in flagged:
                yield Row(prompt, weak, strong, group)


def _llmrouter_rows(folder: Path, digest: Any) -> Iterator[Row]:
    tasks: dict[str, str] = {}
    for part in ("train", "test"):
        path = folder / "data" / "example_data" / "query_data" / f"default_query_{part}.jsonl"
        raw = path.read_bytes()
        digest.update(raw)
        for line in raw.decode("utf-8").split("\n"):
            if line.strip():
                q = json.loads(line)
                tasks[q["query"]] = q["task_name"]
    for part in ("train", "test"):
        path = folder / "data" / "dcrouter_preprocessed" / f"{part}.json"
        raw = path.read_bytes()
        digest.update(raw)
        for r in json.loads(raw):
            task = tasks.get(r["question"])
            if task is None:
                continue
            at = COMMONGEN_CORRECT_AT if task == "commongen" else 0.5
            s = r["scores"]
            yield Row(r["question"], s[LLMROUTER_WEAK] >= at, s[LLMROUTER_STRONG] >= at, f"llmrouter:{task}")


def parse_options(choices: object, min_options: int = 2) -> list[str] | None:
    """Answer options from a data file: a list, its repr, or ``{"text": [...]}``; None when unusable."""
    if isinstance(choices, str):  # some dumps store the list as its repr
        try:
            choices = ast.literal_eval(choices)
        except (ValueError, SyntaxError):
            return None
    if isinstance(choices, dict):
        choices = choices.get("text")
    if isinstance(choices, list) and min_options <= len(choices) <= len(LETTERS):
        return [str(c) for c in choices]
    return None


def mmlu_pro_prompt(q: dict[str, object]) -> str:
    """An MMLU-Pro question as a prompt, in MMLU's layout (stem, lettered options, 'Answer:')."""
    options = parse_options(q["options"], min_options=1) or []
    lines = [str(q["question"])] + [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]
    return "\n".join(lines + ["Answer:"])


def _mmlu_pro_rows(folder: Path, digest: Any) -> Iterator[Row]:
    def answers(name: str) -> list[dict[str, object]]:
        path = folder / name
        raw = path.read_bytes()
        digest.update(raw)
        with zipfile.ZipFile(path) as z:
            data: list[dict[str, object]] = json.loads(z.read(z.namelist()[0]))
        return data

    weak = {str(r["question_id"]): r for r in answers(MMLU_PRO_WEAK)}
    for s in answers(MMLU_PRO_STRONG):
        w = weak.get(str(s["question_id"]))
        if w is None:
            continue
        group = "mmlu_pro:" + MMLU_PRO_GROUP.get(str(s["category"]), "humanities")
        yield Row(mmlu_pro_prompt(s), w["pred"] == w["answer"], s["pred"] == s["answer"], group)


SOURCES = {
    "routellm_mmlu": (("routellm_mmlu", "mmlu_responses"), _routellm_rows),
    "llmrouter_ulab": (("llmrouter_ulab",), _llmrouter_rows),
    "mmlu_pro": (("mmlu_pro",), _mmlu_pro_rows),
}


@dataclass(frozen=True)
class GroupedSet:
    """A labelled set whose prompts carry a task group (``source:group``)."""

    data: LabelledSet
    groups: np.ndarray  # str, shape (n,)

    def subset(self, idx: np.ndarray) -> GroupedSet:
        return GroupedSet(self.data.subset(idx), self.groups[idx])

    @property
    def group_names(self) -> list[str]:
        return sorted(set(self.groups.tolist()))


def _dedupe(rows: Iterable[Row]) -> list[Row]:
    seen: set[str] = set()
    out = []
    for r in rows:
        key = stem_key(r.prompt)
        if key and key not in seen:
            seen.add(key)
            out.append(r)
    return out


def load_grouped(data_dir: Path | None = None, sources: Iterable[str] = tuple(SOURCES)) -> GroupedSet:
    """Every prompt of `sources` under `data_dir`, deduplicated. Raises DataError naming a missing source."""
    base = data_dir or default_data_dir()
    digest = hashlib.sha256()
    rows: list[Row] = []
    for name in sources:
        if name not in SOURCES:
            raise DataError(f"unknown routing source {name!r}; known: {', '.join(SOURCES)}")
        parts, reader = SOURCES[name]
        folder = base.joinpath(*parts)
        if not folder.exists():
            raise DataError(f"{folder}: routing source {name} not found (set PETIT_ROUTER_DATA)")
        rows += list(reader(folder, digest))
    rows = _dedupe(rows)
    if not rows:
        raise DataError(f"{base}: no labelled rows")
    ds = LabelledSet(
        tuple(r.prompt for r in rows),
        np.array([r.weak for r in rows], bool),
        np.array([r.strong for r in rows], bool),
        digest.hexdigest(),
        f"{base} ({', '.join(sources)})",
    )
    return GroupedSet(ds, np.array([r.group for r in rows]))
