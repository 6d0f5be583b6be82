"""Quality under load: accuracy on labelled prompts next to cost, per model and for `auto`. Pure module.

A labelled prompt file (`expected` answers, see prompts.py) grades every
successful answer (`RequestSample.correct`). Requesting several models in one
run (`model: [auto, small, large]`) asks each the same prompts in turn, so
their accuracy and cost compare under the same load; `auto`'s answers are
also split by the model that gave them (what the router chose).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from loadtests.metrics import RequestSample


@dataclass(frozen=True)
class QualityRow:
    """Accuracy and cost of one scope: a requested model, or a requested model's answers from one model."""

    requested: str
    answered_by: str | None  # None: every answer to `requested`
    labelled: int  # successful answers to labelled prompts
    correct: int
    cost_usd: float | None  # summed over the labelled answers that have a cost
    output_tokens: int

    @property
    def scope(self) -> str:
        return self.requested if self.answered_by is None else f"{self.requested} → {self.answered_by}"

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    @property
    def usd_per_1k_answers(self) -> float | None:
        return None if self.cost_usd is None or not self.labelled else self.cost_usd / self.labelled * 1000

    @property
    def usd_per_1m_output_tokens(self) -> float | None:
        return None if self.cost_usd is None or not self.output_tokens else self.cost_usd / self.output_tokens * 1e6

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "scope": self.scope,
            "accuracy": self.accuracy,
            "usd_per_1k_answers": self.usd_per_1k_answers,
            "usd_per_1m_output_tokens": self.usd_per_1m_output_tokens,
        }


def graded(samples: list[RequestSample]) -> list[RequestSample]:
    """Successful answers to labelled prompts."""
    return [s for s in samples if s.ok and s.correct is not None]


def _row(requested: str, answered_by: str | None, group: list[RequestSample]) -> QualityRow:
    priced = [s for s in group if s.cost_usd is not None]
    return QualityRow(
        requested,
        answered_by,
        len(group),
        sum(1 for s in group if s.correct),
        sum(s.cost_usd or 0.0 for s in priced) if priced else None,
        sum(s.output_tokens or 0 for s in group),
    )


def quality_rows(samples: list[RequestSample]) -> list[QualityRow]:
    """Per requested model (in order of first request) a row, then, when its answers came from
    another model or several (`auto`), one row per answering model. Empty without labelled answers."""
    done = graded(samples)
    rows = []
    for req in dict.fromkeys(s.requested_model for s in done):
        mine = [s for s in done if s.requested_model == req]
        rows.append(_row(req, None, mine))
        by = sorted({s.model or "unknown" for s in mine})
        if by != [req]:
            rows += [_row(req, m, [s for s in mine if (s.model or "unknown") == m]) for m in by]
    return rows


def quality_bins(elapsed_s: float) -> float:
    """Bin width for accuracy over time: about 8 bins (accuracy needs several answers per bin), >= 1 s."""
    return max(1.0, round(max(elapsed_s, 1.0) / 8))


def quality_series(
    samples: list[RequestSample], elapsed_s: float, width_s: float
) -> dict[str, dict[str, list[float | None]]]:
    """Per requested model: bin starts `t`, `accuracy` and `usd_per_1k` (answers) per bin, by send time;
    None in a bin without labelled answers (or without a cost)."""
    n = int(max(elapsed_s, 1.0) // width_s) + 1
    out: dict[str, dict[str, list[float | None]]] = {}
    done = graded(samples)
    for req in dict.fromkeys(s.requested_model for s in done):
        bins: list[list[RequestSample]] = [[] for _ in range(n)]
        for s in done:
            if s.requested_model == req:
                bins[min(int(s.start_s // width_s), n - 1)].append(s)
        rows = [_row(req, None, b) for b in bins]
        out[req] = {
            "t": [i * width_s for i in range(n)],
            "accuracy": [r.accuracy for r in rows],
            "usd_per_1k": [r.usd_per_1k_answers for r in rows],
        }
    return out
