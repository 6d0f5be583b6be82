"""Cascade decisions (FrugalGPT-style), pure: confidence from token logprobs, escalate or not, cost.

Flow (the gateway wires it): route to the decision's model with ``logprobs``
on; score the answer's confidence from its token logprobs; when it falls below
the thresholds, ask `decision.escalate_to` and answer with that instead. Both
calls are paid: `cascade_cost` adds them up.

Streaming semantics (proposed): the gateway buffers the small model's first
``CascadeThresholds.buffer_tokens`` tokens (default 16) without sending them.
When the buffer is full, or the small model finishes earlier, it scores the
buffer: confident -> it flushes the buffer and streams the rest of the small
model's answer (committed: no later escalation, since the client has text);
not confident -> it cancels the small stream and streams the large model's
answer from its start. The client sees one answer, with a TTFT that includes
the buffer time; `x-petit-cascade: escalated|committed` can report which.
Non-streaming requests score the whole small answer.

Logprob thresholds are model-specific; calibrate them on recorded answers
(the defaults suit instruct models of ~0.1-1B parameters on short answers).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from serving.router.types import ModelSnapshot

PROMPT_KINDS = ("choice", "open")
_OPTION_LINE = re.compile(r"(?m)^[ \t]*\(?[A-J][.)][ \t]")


def prompt_kind(text: str) -> str:
    """``choice`` when the prompt lists two or more lettered options (``A.``, ``A)``, ``(A)`` at a line
    start), else ``open``. The cascade may hold a threshold per kind: a fleet's large model can be no
    better than its small one on multiple choice while far better on open answers."""
    found = 0
    for _ in _OPTION_LINE.finditer(text):
        found += 1
        if found == 2:
            return "choice"
    return "open"


@dataclass(frozen=True)
class Confidence:
    mean_logprob: float
    min_logprob: float
    n_tokens: int


@dataclass(frozen=True)
class CascadeThresholds:
    """Escalate when the mean token logprob < `min_mean_logprob` or any token's < `min_token_logprob`.

    Raises ValueError for positive logprob thresholds or a buffer below 1.
    """

    min_mean_logprob: float = -0.8
    min_token_logprob: float = -5.0
    buffer_tokens: int = 16

    def __post_init__(self) -> None:
        if self.min_mean_logprob > 0 or self.min_token_logprob > 0:
            raise ValueError("logprob thresholds must be <= 0")
        if self.buffer_tokens < 1:
            raise ValueError("buffer_tokens must be >= 1")


@dataclass(frozen=True)
class Escalation:
    escalate: bool
    reason: str
    confidence: Confidence | None


def token_logprobs(logprobs: Mapping[str, Any] | None) -> list[float]:
    """Sampled-token logprobs from an OpenAI-shaped ``logprobs`` object, in order.

    Accepts chat (``{"content": [{"token", "logprob", ...}, ...]}``) and
    completions (``{"token_logprobs": [...]}``) shapes; `None` logprobs (the
    first token of an echoed prompt) are skipped. Raises ValueError otherwise.
    """
    if not logprobs:
        return []
    if "content" in logprobs:
        items = logprobs["content"] or []
        values = [i.get("logprob") if isinstance(i, Mapping) else None for i in items]
    elif "token_logprobs" in logprobs:
        values = list(logprobs["token_logprobs"] or [])
    else:
        raise ValueError(f"not an OpenAI logprobs object (keys: {sorted(logprobs)})")
    out = []
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or v > 1e-6:
            raise ValueError(f"invalid token logprob {v!r}")
        out.append(max(float(v), -1e4))  # -inf (a masked token) counts as very unlikely, not NaN
    return out


def stream_logprobs(chunks: Iterable[Mapping[str, Any]]) -> list[float]:
    """Token logprobs gathered from streamed chunks (each an OpenAI chunk dict), in order."""
    out: list[float] = []
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            out += token_logprobs(choice.get("logprobs"))
    return out


def confidence(values: list[float], first_n: int | None = None) -> Confidence | None:
    """Mean and minimum of the first `first_n` (all if None) logprobs; None when there are none."""
    values = values[:first_n] if first_n else values
    if not values:
        return None
    return Confidence(sum(values) / len(values), min(values), len(values))


def judge(conf: Confidence | None, t: CascadeThresholds = CascadeThresholds()) -> Escalation:
    """Escalate when there is no answer to judge, or it is not confident enough."""
    if conf is None:
        return Escalation(True, "no_tokens", None)
    if conf.mean_logprob < t.min_mean_logprob:
        return Escalation(True, f"mean_logprob={conf.mean_logprob:.3f}<{t.min_mean_logprob}", conf)
    if conf.min_logprob < t.min_token_logprob:
        return Escalation(True, f"min_logprob={conf.min_logprob:.3f}<{t.min_token_logprob}", conf)
    return Escalation(False, f"confident;mean_logprob={conf.mean_logprob:.3f};min={conf.min_logprob:.3f}", conf)


def decide_on_logprobs(
    logprobs: Mapping[str, Any] | None, t: CascadeThresholds = CascadeThresholds(), first_n: int | None = None
) -> Escalation:
    """`judge` on an OpenAI logprobs object (optionally only its first `first_n` tokens)."""
    return judge(confidence(token_logprobs(logprobs), first_n), t)


@dataclass(frozen=True)
class CascadeCost:
    first_usd: float
    second_usd: float | None

    @property
    def escalated(self) -> bool:
        return self.second_usd is not None

    @property
    def total_usd(self) -> float:
        return self.first_usd + (self.second_usd or 0.0)


def cascade_cost(
    first: ModelSnapshot,
    first_usage: Mapping[str, Any],
    second: ModelSnapshot | None = None,
    second_usage: Mapping[str, Any] | None = None,
) -> CascadeCost:
    """Both calls' cost from their OpenAI ``usage`` (prompt_tokens, completion_tokens).

    A cancelled small stream is paid for the tokens it produced. Raises
    ValueError when only one of `second` / `second_usage` is given.
    """
    if (second is None) != (second_usage is None):
        raise ValueError("give both the second model and its usage, or neither")

    def one(m: ModelSnapshot, u: Mapping[str, Any]) -> float:
        return m.cost(int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0)))

    if second is None or second_usage is None:
        return CascadeCost(one(first, first_usage), None)
    return CascadeCost(one(first, first_usage), one(second, second_usage))
