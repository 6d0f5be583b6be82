from __future__ import annotations

import asyncio
import json
import shutil

import numpy as np
import pytest

from serving.fleet.schema import RoutingConfig
from serving.router import artifact as artifacts
from serving.router.build import build_router
from serving.router.classifier import fit, outcome_labels, routing_score
from serving.router.predictor import DifficultyPredictor, prompt_text

from .helpers import FakeEncoder


@pytest.fixture()
def copy(tmp_path):
    npz, js = artifacts.default_paths()
    shutil.copy(npz, tmp_path / "a.npz")
    shutil.copy(js, tmp_path / "a.json")
    return tmp_path / "a.npz", tmp_path / "a.json"


def test_shipped_artifact_is_small_versioned_and_loads():
    npz, js = artifacts.default_paths()
    assert npz.stat().st_size < 400_000
    art = artifacts.load()
    meta = art.metadata
    assert meta["version"] == artifacts.FORMAT_VERSION and len(meta["training"]["data_sha256"]) == 64
    assert meta["training"]["split_seed"] and art.max_seq_length == 128
    assert art.classifier.probabilities(np.zeros((2, 385), np.float32)).sum(1) == pytest.approx([1, 1])


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda npz, js: npz.write_bytes(npz.read_bytes()[:-100]), "sha256"),
        (lambda npz, js: npz.unlink(), "cannot read"),
        (lambda npz, js: js.write_text("{not json"), "cannot read"),
        (lambda npz, js: js.write_text(json.dumps(dict(json.loads(js.read_text()), version=99))), "format version"),
        (lambda npz, js: js.write_text(json.dumps(dict(json.loads(js.read_text()), calibration={}))), "quantiles"),
    ],
)
def test_corrupted_artifacts_raise(copy, damage, match):
    damage(*copy)
    with pytest.raises(artifacts.ArtifactError, match=match):
        artifacts.load(*copy)


def test_corrupted_artifact_degrades_the_router(copy):
    copy[0].write_bytes(b"garbage")
    router = build_router(RoutingConfig(default_policy="learned"), load=lambda: artifacts.load(*copy))
    assert router.predictor is None and router.default.degraded and "sha256" in router.default.degraded_reason


def test_save_load_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 5)).astype(np.float32)
    y = outcome_labels(x[:, 0] > 0, x[:, 1] > 0)
    clf = fit(x, y, hidden=8, epochs=150, lr=0.03, dropout=0.0, l2=1e-4, seed=1)
    meta = artifacts.save(
        clf,
        {"calibration": {"score_quantiles": [0.0, 0.5, 1.0]}, "max_seq_length": 16},
        tmp_path / "m.npz",
        tmp_path / "m.json",
    )
    back = artifacts.load(tmp_path / "m.npz", tmp_path / "m.json")
    assert meta["hidden"] == 8 and back.classifier.hidden == 8
    assert np.allclose(back.classifier.scores(x), clf.scores(x))
    acc = (clf.probabilities(x).argmax(1) == y).mean()
    assert acc > 0.8  # learns a separable toy problem
    with pytest.raises(ValueError):
        routing_score(clf.probabilities(x), "nope")


def test_predictor_batches_concurrent_requests():
    enc = FakeEncoder()
    pred = DifficultyPredictor(artifacts.load(), lambda n: enc)

    async def go():
        return await asyncio.gather(*(pred.apredict(f"question {i}?") for i in range(10)))

    out = asyncio.run(go())
    pred.close()
    assert all(p is not None and 0 <= p.p_weak_ok <= 1 and 0 <= p.p_strong_ok <= 1 for p in out)
    assert sum(enc.calls) == 10 and len(enc.calls) < 10  # arrivals while a batch runs share the next one


def test_encoder_failure_degrades_once_and_returns_none():
    def boom(n):
        raise RuntimeError("no weights")

    router = build_router(RoutingConfig(default_policy="learned"), encoder_factory=boom)

    async def go():
        return await router.predictor.apredict("hi"), await router.predictor.warm_up()

    assert asyncio.run(go()) == (None, False)
    router.predictor.close()
    assert router.default.degraded and "no weights" in router.default.degraded_reason


@pytest.mark.parametrize(
    "kind, body, text",
    [
        (
            "chat",
            {
                "messages": [
                    {"role": "system", "content": "s"},
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"},
                ]
            },
            "c",
        ),
        (
            "chat",
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}]}]},
            "x\ny",
        ),
        ("chat", {"messages": []}, ""),
        ("completion", {"prompt": "p"}, "p"),
        ("completion", {"prompt": ["p", "q"]}, "p"),
        ("completion", {"prompt": [1, 2]}, ""),
    ],
)
def test_prompt_text(kind, body, text):
    assert prompt_text(kind, body) == text
