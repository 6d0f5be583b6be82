"""The cascade learning when to skip the small model, from its own escalations."""

from __future__ import annotations

import asyncio
import math

import numpy as np
from prometheus_client import CollectorRegistry

from serving.control.learning import CompetenceSync
from serving.fleet.schema import OnlineLearningConfig
from serving.router.online import CompetenceTable, Observations, bucket_of, merge_into
from serving.router.state import RoutingStateHolder

CFG = OnlineLearningConfig(enabled=True, half_life_labels=300, min_labels=100)


def stream(rng, n, boundary):
    """Prompts with router scores in [-1, 1]; the small model escalates 90 % above `boundary`, 10 % below."""
    scores = rng.uniform(-1, 1, n)
    return [(float(s), bool(rng.random() < (0.9 if s >= boundary else 0.1))) for s in scores]


class FakeBoard:
    """The board's merge, in process (the real one is a Ray actor with the same method)."""

    def __init__(self):
        self.table = None

        class _Merge:
            @staticmethod
            async def remote(obs, cfg):
                self.table = merge_into(self.table, obs, OnlineLearningConfig.model_validate(cfg))
                return self.table.to_dict()

        self.merge_competence = _Merge()


def test_skip_score_converges_and_follows_a_shifted_prompt_mix():
    rng = np.random.default_rng(0)
    table = CompetenceTable.empty(CFG)
    seen = []
    for phase, boundary in ((0, 0.5), (1, -0.2)):
        for chunk in range(30):  # 30 pushes of 50 labels
            obs = Observations()
            for score, esc in stream(rng, 50, boundary):
                obs.add(score, esc, CFG)
            table.merge(obs.take(), CFG)
            seen.append((phase, chunk, table.skip_score(CFG)))
        assert abs(table.skip_score(CFG) - boundary) <= 0.2 + 1e-9, (boundary, table.rates())
    # After the shift it moved within 4 half-lives (1,200 labels = 24 pushes): old counts must fall below
    # an eighth of the bucket for a 10 % -> 90 % change to pass the 80 % escalation target.
    moved = next(c for p, c, s in seen if p == 1 and s is not None and s <= 0.0)
    assert moved <= 24


def test_no_threshold_before_enough_labels_and_bounds_hold():
    table = CompetenceTable.empty(CFG)
    obs = Observations()
    for _ in range(50):
        obs.add(0.95, True, CFG)
    table.merge(obs.take(), CFG)
    assert table.skip_score(CFG) is None  # 50 < min_labels
    bounded = CFG.model_copy(update={"min_skip": 0.0, "max_skip": 0.3})
    for _ in range(3):
        for s in np.linspace(-1, 1, 100):
            obs.add(float(s), True, CFG)  # the small model always escalates
        table.merge(obs.take(), CFG)
    assert table.skip_score(CFG) == -1.0 and table.skip_score(bounded) == 0.0
    assert bucket_of(-5, CFG) == 0 and bucket_of(5, CFG) == CFG.buckets - 1


def test_replicas_share_one_table_a_restart_keeps_it_and_pause_holds():
    rng = np.random.default_rng(1)
    board, registry = FakeBoard(), CollectorRegistry
    holders = [RoutingStateHolder(), RoutingStateHolder()]
    syncs = [CompetenceSync(CFG, h, registry()) for h in holders]

    async def go():
        for _ in range(20):
            for sync in syncs:
                for score, esc in stream(rng, 20, 0.4):
                    sync.observe(score, esc)
                await sync.sync_once(board)
        for sync in syncs:
            await sync.sync_once(board)

    asyncio.run(go())
    skips = [h.get().cascade_skip_score for h in holders]
    assert skips[0] == skips[1] and abs(skips[0] - 0.4) <= 0.2
    restarted = RoutingStateHolder()
    asyncio.run(CompetenceSync(CFG, restarted, registry()).sync_once(board))
    assert restarted.get().cascade_skip_score == skips[0]  # learned state outlives the replica
    holders[0].update(online_learning_paused=True, cascade_skip_score=None)
    asyncio.run(syncs[0].sync_once(board))
    assert holders[0].get().cascade_skip_score is None  # kill switch at run time
    assert math.isclose(syncs[1].skip_gauge._value.get(), skips[1])


def test_disabled_learning_records_nothing():
    holder = RoutingStateHolder()
    sync = CompetenceSync(OnlineLearningConfig(), holder, CollectorRegistry())
    sync.observe(0.9, True)
    assert len(sync.pending) == 0 and asyncio.run(sync.sync_once(FakeBoard())) is None
