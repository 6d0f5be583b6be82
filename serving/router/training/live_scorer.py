"""Scoring answers to the live-eval question set (pure).

Each line of ``serving/router/training/data/live_questions.jsonl`` is
``{"question": str, "answer": str, "kind": "exact" | "numeric" | "contains"}``:

- ``exact``: the reply, normalised (case, surrounding spaces, quotes, trailing
  punctuation, a leading "Answer:"), equals the answer; a reply whose first
  line does is also accepted (small models often add an explanation);
- ``numeric``: the last number in the reply (commas as thousands separators
  allowed) equals the answer within 1e-6 relative tolerance;
- ``contains``: the normalised reply contains the answer; ``|`` separates
  accepted alternatives (``"Paris|paris"``);
- ``choice``: a multiple-choice letter (A-J): the first standalone option letter
  in the reply (``"B"``, ``"B."``, ``"(B) paris"``, ``"Answer: B"``) equals the answer.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

KINDS = ("exact", "numeric", "contains", "choice")
QUESTIONS_PATH = Path(__file__).resolve().parent / "data" / "live_questions.jsonl"
_OPTION_LINE = re.compile(r"^\(?([A-J])[.)]\s", re.M)
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not self.question.strip() or not self.answer.strip():
            raise ValueError("question and answer must be non-empty")
        if self.kind == "numeric":
            float(self.answer)  # raises ValueError for a non-number
        if self.kind == "choice" and not re.fullmatch(r"[A-J]", self.answer):
            raise ValueError(f"a choice answer is one letter A-J, got {self.answer!r}")


def normalise(text: str) -> str:
    t = " ".join(text.strip().lower().split())
    t = re.sub(r"^(the )?(final )?answer( is)?\s*[:=]?\s*", "", t)
    return t.strip(" \"'`*").rstrip(".!?;:,").strip(" \"'`*")


def last_number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    return float(found[-1].replace(",", "")) if found else None


def option_letters(question: str) -> str:
    """The option letters a question lists (lines like "B. text"); all of A-J when it lists none."""
    found = "".join(dict.fromkeys(_OPTION_LINE.findall(question)))
    return found or "ABCDEFGHIJ"


def first_letter(text: str, letters: str = "ABCDEFGHIJ") -> str | None:
    """The first standalone option letter of `letters` in `text`, after an optional leading "Answer:"."""
    t = re.sub(r"^\s*(the )?(final )?answer( is)?\s*[:=]?\s*", "", text.strip(), flags=re.I)
    m = re.search(rf"(?<![A-Za-z])\(?([{letters}])(?:[).:,]|\s|$)", t)
    return m.group(1) if m else None


def score(reply: str, q: Question) -> bool:
    """Whether `reply` answers `q` correctly under its kind's rule (see the module docstring)."""
    if q.kind == "choice":
        return first_letter(reply, option_letters(q.question)) == q.answer
    if q.kind == "numeric":
        got = last_number(reply)
        return got is not None and math.isclose(got, float(q.answer), rel_tol=1e-6, abs_tol=1e-9)
    reply_n = normalise(reply)
    options = [normalise(a) for a in q.answer.split("|")]
    if q.kind == "contains":
        return any(o and o in reply_n for o in options)
    first_line = normalise(reply.strip().splitlines()[0]) if reply.strip() else ""
    return any(o in (reply_n, first_line) for o in options)


def load_questions(path: Path = QUESTIONS_PATH) -> list[Question]:
    """Read the JSONL question set. Raises ValueError naming the line of a bad entry."""
    out = []
    for i, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(Question(str(d["question"]), str(d["answer"]), str(d["kind"])))
        except (KeyError, ValueError, TypeError) as err:
            raise ValueError(f"{path}:{i}: {err}") from err
    return out


def live_accuracy(replies: list[str], questions: list[Question]) -> float:
    """Share of correct replies; raises ValueError when the lengths differ or there are none."""
    if len(replies) != len(questions) or not questions:
        raise ValueError("need one reply per question, and at least one question")
    return sum(score(r, q) for r, q in zip(replies, questions)) / len(questions)
