"""Sharing the cascade's online labels across ingress replicas through the control board.

Each ingress replica records its cascade outcomes (`observe`, called by the
gateway) and, on every board poll, sends them to the board, which merges them
into the fleet's one `CompetenceTable` and returns it; the replica then sets
its routing state's `cascade_skip_score` from the table. The board outlives
ingress replicas, so a restarted replica starts from what the fleet learned.

Kill switches: `routing.online_learning.enabled` (off by default) and, at run
time, the routing state's `online_learning_paused` (the threshold then stays
where it is). Metrics: `petit_cascade_labels_total{outcome}` and
`petit_cascade_skip_score` (NaN: the small model is always asked first).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from serving.fleet.schema import OnlineLearningConfig
from serving.router.online import CompetenceTable, Observations
from serving.router.state import RoutingStateHolder

log = logging.getLogger("petit.control.learning")


class CompetenceSync:
    def __init__(self, cfg: OnlineLearningConfig, holder: RoutingStateHolder, registry: CollectorRegistry) -> None:
        self.cfg, self.holder = cfg, holder
        self.pending = Observations()
        self.labels = Counter(
            "petit_cascade_labels", "Cascade outcomes seen by online learning", ["outcome"], registry=registry
        )
        self.skip_gauge = Gauge(
            "petit_cascade_skip_score", "Router score from which the cascade skips the small model", registry=registry
        )
        self.skip_gauge.set(math.nan)

    def observe(self, score: float | None, escalated: bool) -> None:
        """One cascade outcome on a prompt with router score `score` (None: no prediction, not a label)."""
        if not self.cfg.enabled or score is None:
            return
        self.pending.add(score, escalated, self.cfg)
        self.labels.labels("escalated" if escalated else "committed").inc()

    def apply(self, table: CompetenceTable) -> float | None:
        """Set the routing state's skip score from the fleet's table (unless paused). Returns the score."""
        skip = table.skip_score(self.cfg)
        state = self.holder.get()
        if not state.online_learning_paused and skip != state.cascade_skip_score:
            self.holder.update(cascade_skip_score=skip)
            log.info("cascade skip score -> %s (%d labels)", skip, table.labels)
        self.skip_gauge.set(math.nan if skip is None else skip)
        return skip

    async def sync_once(self, board: Any) -> float | None:
        """Send pending labels to the board and apply the merged table. A no-op when disabled."""
        if not self.cfg.enabled:
            return None
        merged = await board.merge_competence.remote(self.pending.take(), self.cfg.model_dump())
        return self.apply(CompetenceTable(**merged))
