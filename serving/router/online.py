"""The cascade learning from its own traffic (opt-in): when to skip the small model (pure; no I/O).

Every cascade request is a free label for the small model's competence on
that prompt: it either answered confidently (committed) or escalated. Grouped
by the router's difficulty score, the escalation rate tells where asking the
small model first is wasted work: above a score where it escalates at least
`escalate_rate` of the time, the cascade should go straight to the strong
model (`RoutingState.cascade_skip_score`).

`CompetenceTable` keeps decayed (escalated, total) counts per score bucket.
Ingress replicas add their local observations (`Observations`) to one table
on the control board, so every replica learns from all traffic and a
restarted replica starts from what the fleet learned; `skip_score()` turns the
table into the threshold, clamped to [`min_skip`, `max_skip`]. A shifted
prompt mix moves the threshold as old counts decay (half-life in labels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from serving.fleet.schema import OnlineLearningConfig


def bucket_of(score: float, cfg: OnlineLearningConfig) -> int:
    """The bucket of a routing score: `cfg.buckets` equal bins over [score_lo, score_hi], ends open."""
    span = (score - cfg.score_lo) / (cfg.score_hi - cfg.score_lo)
    return min(cfg.buckets - 1, max(0, int(math.floor(span * cfg.buckets))))


def bucket_floor(b: int, cfg: OnlineLearningConfig) -> float:
    return cfg.score_lo + (cfg.score_hi - cfg.score_lo) * b / cfg.buckets


@dataclass
class Observations:
    """One replica's labels since its last push: per bucket, (escalated, total)."""

    escalated: dict[int, int] = field(default_factory=dict)
    total: dict[int, int] = field(default_factory=dict)

    def add(self, score: float, escalated: bool, cfg: OnlineLearningConfig) -> None:
        b = bucket_of(score, cfg)
        self.total[b] = self.total.get(b, 0) + 1
        self.escalated[b] = self.escalated.get(b, 0) + int(escalated)

    def take(self) -> dict[str, dict[int, int]]:
        """The counts as a plain mapping (to send), and reset."""
        out = {"escalated": dict(self.escalated), "total": dict(self.total)}
        self.escalated.clear()
        self.total.clear()
        return out

    def __len__(self) -> int:
        return sum(self.total.values())


@dataclass
class CompetenceTable:
    """Decayed escalation counts per score bucket, merged from every replica's observations."""

    escalated: list[float]
    total: list[float]
    labels: int = 0

    @classmethod
    def empty(cls, cfg: OnlineLearningConfig) -> CompetenceTable:
        return cls([0.0] * cfg.buckets, [0.0] * cfg.buckets)

    def merge(self, obs: dict[str, dict[int, int]], cfg: OnlineLearningConfig) -> None:
        """Add observations; older counts decay by 2^(-n / half_life) for n new labels."""
        n = sum(obs.get("total", {}).values())
        if n <= 0:
            return
        keep = 0.5 ** (n / cfg.half_life_labels)
        self.escalated = [v * keep for v in self.escalated]
        self.total = [v * keep for v in self.total]
        for b, v in obs.get("total", {}).items():
            if 0 <= int(b) < cfg.buckets:
                self.total[int(b)] += v
        for b, v in obs.get("escalated", {}).items():
            if 0 <= int(b) < cfg.buckets:
                self.escalated[int(b)] += v
        self.labels += n

    def rates(self) -> list[float | None]:
        return [e / t if t > 0 else None for e, t in zip(self.escalated, self.total)]

    def skip_score(self, cfg: OnlineLearningConfig) -> float | None:
        """The lowest bucket floor from which every bucket with enough labels escalates at >= the target rate.

        None (ask the small model first everywhere) until `min_labels` labels were seen, or when no
        such bucket exists. Clamped to [min_skip, max_skip].
        """
        if self.labels < cfg.min_labels:
            return None
        start: int | None = None
        for b in range(cfg.buckets - 1, -1, -1):
            if self.total[b] < cfg.min_bucket_weight:
                continue  # too few labels here to judge: neither extends nor breaks the run
            if self.escalated[b] / self.total[b] >= cfg.escalate_rate:
                start = b
            else:
                break
        if start is None:
            return None
        return min(cfg.max_skip, max(cfg.min_skip, bucket_floor(start, cfg)))

    def to_dict(self) -> dict[str, object]:
        return {"escalated": self.escalated, "total": self.total, "labels": self.labels}


def merge_into(
    table: CompetenceTable | None, observations: dict[str, dict[int, int]], cfg: OnlineLearningConfig
) -> CompetenceTable:
    """`table` (a fresh one when None or shaped for other buckets) with `observations` merged in."""
    if table is None or len(table.total) != cfg.buckets:
        table = CompetenceTable.empty(cfg)
    table.merge(observations, cfg)
    return table
