"""Labelled routing data: RouteLLM's MMLU files and Petit's generic CSV.

Generic CSV format (what `petit router eval --data FILE` reads): a header row
with at least the columns ``prompt, weak_correct, strong_correct``; the two
label columns hold ``1/0``, ``true/false`` or ``True/False`` (case-insensitive).
Extra columns are ignored.

RouteLLM's per-subject MMLU files (``mmlu_<subject>.csv``, columns ``prompt,
mistralai/Mixtral-8x7B-Instruct-v0.1, gpt-4-1106-preview``) are read directly:
a file, or the ``mmlu_responses`` folder (all subjects; the prompts RouteLLM
flagged in ``contaminated_prompts.jsonl`` are dropped).

The data never ships with Petit: it is read from a path setting whose default
is ``../shared/data/router`` next to the repository root (env
``PETIT_ROUTER_DATA`` overrides it).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA_ENV = "PETIT_ROUTER_DATA"
WEAK_COLUMN = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG_COLUMN = "gpt-4-1106-preview"
SPLIT_SEED = 20240610
TEST_FRACTION = 0.2

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


class DataError(ValueError):
    """The data file is missing, unreadable or has the wrong columns."""


@dataclass(frozen=True)
class LabelledSet:
    """Prompts with whether the weak and the strong model answered each correctly."""

    prompts: tuple[str, ...]
    weak_correct: np.ndarray  # bool, shape (n,)
    strong_correct: np.ndarray  # bool, shape (n,)
    sha256: str  # of the files read, in order (identifies the training data)
    source: str

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, idx: np.ndarray) -> LabelledSet:
        return LabelledSet(
            tuple(self.prompts[i] for i in idx),
            self.weak_correct[idx],
            self.strong_correct[idx],
            self.sha256,
            self.source,
        )


def default_data_dir() -> Path:
    """The router data folder: $PETIT_ROUTER_DATA, else ../shared/data/router beside the repo root."""
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "data" / "router")


def default_mmlu_dir() -> Path:
    return default_data_dir() / "routellm_mmlu" / "mmlu_responses"


def _bool(value: str, where: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise DataError(f"{where}: expected a boolean (1/0, true/false), got {value!r}")


def read_rows(path: Path, weak_col: str, strong_col: str, digest: Any) -> list[tuple[str, bool, bool]]:
    raw = path.read_bytes()
    digest.update(raw)
    reader = csv.DictReader(raw.decode("utf-8").splitlines(keepends=True))
    missing = [c for c in ("prompt", weak_col, strong_col) if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; have {reader.fieldnames}")
    return [
        (r["prompt"], _bool(r[weak_col], f"{path}:{i + 2}"), _bool(r[strong_col], f"{path}:{i + 2}"))
        for i, r in enumerate(reader)
    ]


def contaminated_prompts(folder: Path) -> set[str]:
    path = folder / "contaminated_prompts.jsonl"
    if not path.exists():
        return set()
    return {json.loads(line)["eval_prompt"] for line in path.read_text("utf-8").splitlines() if line.strip()}


def load_labelled(path: str | Path) -> LabelledSet:
    """Read a generic CSV, one RouteLLM ``mmlu_<subject>.csv``, or a folder of them.

    Raises DataError when the path is missing or a file has the wrong columns.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (set {DATA_ENV} or pass --data)")
    digest = hashlib.sha256()
    if path.is_dir():
        files = sorted(path.glob("mmlu_*.csv"))
        if not files:
            raise DataError(f"{path}: no mmlu_<subject>.csv files")
        rows = [r for f in files for r in read_rows(f, WEAK_COLUMN, STRONG_COLUMN, digest)]
        flagged = contaminated_prompts(path)
        rows = [r for r in rows if r[0] not in flagged]
    else:
        with path.open(encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
        routellm = WEAK_COLUMN in header
        rows = read_rows(
            path, WEAK_COLUMN if routellm else "weak_correct", STRONG_COLUMN if routellm else "strong_correct", digest
        )
        if routellm:
            flagged = contaminated_prompts(path.parent)
            rows = [r for r in rows if r[0] not in flagged]
    if not rows:
        raise DataError(f"{path}: no rows")
    prompts, weak, strong = zip(*rows)
    return LabelledSet(tuple(prompts), np.array(weak, bool), np.array(strong, bool), digest.hexdigest(), str(path))


def split_indices(
    n: int, seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed by-row split: (train, test) index arrays, disjoint, sorted, reproducible from `seed`."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return np.sort(order[n_test:]), np.sort(order[:n_test])
