"""Prompts for the load: synthesized to a token count, or read from a prompt file.

Synthesized prompts reach the requested number of prompt tokens:

- with a Hugging Face tokenizer (a local model folder, e.g.
  ~/.cache/petit/models/smollm2-135m-instruct) the text is cut to exactly
  that many tokens of the model's tokenizer (the chat template adds a few);
- without one (or when the folder does not exist), by the rule of thumb **1 token ~ 0.75 English words** (OpenAI's
  guide: 100 tokens ~ 75 words); the words used are short common English
  words, which most BPE vocabularies hold as single tokens, so the count is
  within ~10-25% for typical tokenizers.

Every synthesized prompt starts with a unique request number, so the server's
prefix cache cannot serve the whole prompt from an earlier request.

A prompt file is JSONL, one object per line::

    {"prompt": "What is 17 + 25? Answer with the number only.", "expected": "42", "match": "numeric"}
    {"prompt": "Capital of France? One word.", "expected": "Paris"}          # match: exact (default)
    {"prompt": "Write a haiku."}                                            # unlabelled

or plain text (`.txt`: one prompt per line). Pure module (transformers is
imported only when a tokenizer folder is given).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from loadtests.config_files import LoadTestInputError, read_text

WORDS_PER_TOKEN = 0.75
_WORDS = (
    "the of and to in is you that it he was for on are as with his they at be this have from or one "
    "had by word but not what all were we when your can said there use an each which she do how their "
    "if will up other about out many then them these so some her would make like him into time has look "
    "two more write go see number no way could people my than first water been call who oil its now find "
    "long down day did get come made may part"
).split()


@dataclass(frozen=True)
class Prompt:
    text: str
    expected: str | None = None
    match: Literal["exact", "numeric"] = "exact"


def _filler(n_words: int, salt: int) -> str:
    words = [_WORDS[(salt * 7 + i * 13) % len(_WORDS)] for i in range(n_words)]
    return " ".join(words)


class SyntheticPrompts:
    """Text of a requested token count; exact with a tokenizer, approximate without."""

    def __init__(self, tokenizer_path: str | Path | None = None):
        self.note = ""
        self.tokenizer = None
        if tokenizer_path and not Path(tokenizer_path).expanduser().is_dir():
            self.note = f" (tokenizer folder {tokenizer_path} not found)"  # fall back, visibly
        elif tokenizer_path:
            self.tokenizer = _load_tokenizer(tokenizer_path)

    @property
    def method(self) -> str:
        if self.tokenizer is not None:
            return f"exact token counts ({type(self.tokenizer).__name__})"
        return f"~{WORDS_PER_TOKEN} words/token{self.note}"

    def make(self, n_tokens: int, salt: int) -> Prompt:
        head = f"Request {salt}. Continue this text:"
        n_tokens = max(n_tokens, 1)
        if self.tokenizer is None:
            n_words = max(int(round(n_tokens * WORDS_PER_TOKEN)) - 5, 0)
            return Prompt(f"{head} {_filler(n_words, salt)}".strip())
        head_ids = self.tokenizer.encode(head, add_special_tokens=False)
        need = max(n_tokens - len(head_ids), 0)
        fill = self._filler_ids(need)
        start = (salt * 31) % max(len(fill) - need, 1)
        return Prompt(self.tokenizer.decode((head_ids + fill[start : start + need])[:n_tokens]))

    def _filler_ids(self, need: int) -> list[int]:
        # encode a long filler once; prompts are slices of it (fast even for 10k-token prompts)
        if not hasattr(self, "_ids"):
            self._ids: list[int] = self.tokenizer.encode(" " + _filler(2000, 0), add_special_tokens=False)
        reps = need // max(len(self._ids), 1) + 2
        return self._ids * reps


def _load_tokenizer(path: str | Path):
    p = Path(path).expanduser()
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise LoadTestInputError(f"{p}: a tokenizer needs the `transformers` package") from None
    try:
        return AutoTokenizer.from_pretrained(str(p))
    except Exception as err:  # transformers raises many types for a broken folder
        raise LoadTestInputError(f"{p}: cannot load tokenizer: {err}") from None


def load_prompt_file(path: str | Path) -> list[Prompt]:
    """Read a JSONL (or .txt) prompt file. Raises LoadTestInputError naming file:line."""
    p = Path(path)
    text = read_text(p, "prompt")
    prompts = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        if p.suffix == ".txt":
            prompts.append(Prompt(raw.strip()))
            continue
        prompts.append(_parse_prompt_line(raw, f"{p}:{line}"))
    if not prompts:
        raise LoadTestInputError(f"{p}: the prompt file has no prompts")
    return prompts


def _parse_prompt_line(raw: str, where: str) -> Prompt:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as err:
        raise LoadTestInputError(f"{where}: not valid JSON: {err.msg}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str) or not obj["prompt"]:
        raise LoadTestInputError(f'{where}: each line needs a non-empty string "prompt"')
    unknown = set(obj) - {"prompt", "expected", "match"}
    if unknown:
        raise LoadTestInputError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))} (allowed: prompt, expected, match)"
        )
    match = obj.get("match", "exact")
    if match not in ("exact", "numeric"):
        raise LoadTestInputError(f"{where}: match must be exact or numeric, got {match!r}")
    expected = obj.get("expected")
    if expected is not None:
        expected = str(expected)
        if match == "numeric" and _first_number(expected) is None:
            raise LoadTestInputError(f"{where}: expected {expected!r} is not a number (match: numeric)")
    return Prompt(obj["prompt"], expected, match)


_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


def _first_number(text: str) -> float | None:
    m = _NUMBER.search(text)
    return float(m.group().replace(",", "")) if m else None


def _norm(text: str) -> str:
    return text.strip().strip("\"'`*.!?,;: \n").casefold()


def is_correct(answer: str, prompt: Prompt) -> bool | None:
    """None for unlabelled prompts. exact: the answer (or its first line) equals the expected
    text, ignoring case, spaces and surrounding punctuation; numeric: its first number equals
    the expected number (relative tolerance 1e-6)."""
    if prompt.expected is None:
        return None
    if prompt.match == "numeric":
        got, want = _first_number(answer), _first_number(prompt.expected)
        return got is not None and want is not None and abs(got - want) <= 1e-6 * max(1.0, abs(want))
    first_line = answer.strip().splitlines()[0] if answer.strip() else ""
    want = _norm(prompt.expected)
    return _norm(answer) == want or _norm(first_line) == want
