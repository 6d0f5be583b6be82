"""The difficulty predictor: prompt -> embedding (MiniLM) -> classifier -> DifficultyPrediction.

Built once per replica (by `serving.router.build.build_router`): the artefact is read and
checked at construction; the encoder (seconds to load) loads on first use or
on `await warm_up()`. `predict` is synchronous and CPU-bound; `apredict` runs
it on one worker thread and batches the prompts that arrive while a batch is
running, so the event loop never blocks on the encoder.

Failures never fail a request: an unusable artefact or encoder marks the
learned policy degraded (cheapest-fit routing) and `apredict` returns None.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from serving.router import artifact as artifacts
from serving.router.classifier import prompt_features, routing_score
from serving.router.types import DifficultyPrediction

log = logging.getLogger("petit.router")
MAX_BATCH = 32


class Encoder(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray: ...


class EncoderFactory:
    """Builds the prompt encoder: `onnx-int8` (serving default: MiniLM on ONNX Runtime, int8 weights,
    one thread; falls back to `st` when ONNX Runtime cannot be used) or `st` (sentence-transformers).
    `tag` names the embeddings for caches."""

    def __init__(self, kind: str = "onnx-int8") -> None:
        if kind not in ("onnx-int8", "st"):
            raise ValueError(f"encoder kind must be onnx-int8 or st, got {kind!r}")
        self.tag = kind

    def __call__(self, max_seq_length: int) -> Encoder:
        from serving.router import encoder  # the adapter: only imported here

        if self.tag == "onnx-int8":
            try:
                return encoder.OnnxMiniLMEncoder(max_seq_length=max_seq_length)
            except encoder.EncoderUnavailable as err:
                log.warning("ONNX prompt encoder unavailable, using sentence-transformers: %s", err)
        return encoder.MiniLMEncoder(max_seq_length=max_seq_length)


default_encoder_factory = EncoderFactory("onnx-int8")


def prompt_text(kind: str, body: Mapping[str, Any]) -> str:
    """The text the router judges: the last user message of a chat, or a completion's prompt."""
    if kind == "chat":
        for msg in reversed(body.get("messages") or []):
            if isinstance(msg, Mapping) and msg.get("role") == "user":
                content = msg.get("content")
                if isinstance(content, list):
                    return "\n".join(p.get("text", "") for p in content if isinstance(p, Mapping))
                return content if isinstance(content, str) else ""
        return ""
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        prompt = prompt[0] if prompt and isinstance(prompt[0], str) else ""
    return prompt if isinstance(prompt, str) else ""


class DifficultyPredictor:
    """Predictions for prompts with one artefact and one (lazily built) encoder."""

    def __init__(
        self,
        artifact: artifacts.RouterArtifact,
        encoder_factory: Callable[[int], Encoder] = default_encoder_factory,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.artifact = artifact
        self._factory = encoder_factory
        self._encoder: Encoder | None = None
        self._failed: str | None = None
        self._on_failure = on_failure or (lambda reason: None)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="petit-router")
        self._pending: list[tuple[str, asyncio.Future[DifficultyPrediction | None]]] = []
        self._running = False

    def _encoder_or_none(self) -> Encoder | None:
        if self._encoder is None and self._failed is None:
            try:
                self._encoder = self._factory(self.artifact.max_seq_length)
            except Exception as err:  # noqa: BLE001 - any failure: route without predictions
                self._failed = f"prompt encoder unavailable: {err}"
                self._on_failure(self._failed)
        return self._encoder

    def predict(self, texts: list[str]) -> list[DifficultyPrediction] | None:
        """Synchronous (CPU-bound: call off the event loop). None when the encoder is unavailable."""
        enc = self._encoder_or_none()
        if enc is None:
            return None
        emb = enc.encode(list(texts))
        p = self.artifact.classifier.probabilities(prompt_features(emb, np.array([len(t) for t in texts])))
        s = routing_score(p, self.artifact.classifier.score_kind)
        return [
            DifficultyPrediction(float(s[i]), float(p[i, 1] + p[i, 3]), float(p[i, 2] + p[i, 3]))
            for i in range(len(texts))
        ]

    async def warm_up(self) -> bool:
        """Load the encoder on the worker thread. Returns whether it is usable."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._encoder_or_none) is not None

    async def apredict(self, text: str) -> DifficultyPrediction | None:
        """One prompt's prediction, batched with prompts arriving meanwhile. None on any failure."""
        fut: asyncio.Future[DifficultyPrediction | None] = asyncio.get_running_loop().create_future()
        self._pending.append((text, fut))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    preds = await loop.run_in_executor(self._executor, self.predict, [t for t, _ in batch])
                except Exception as err:  # noqa: BLE001 - a bad batch must not fail requests
                    log.warning("router prediction failed: %s", err)
                    preds = None
                for i, (_, fut) in enumerate(batch):
                    if not fut.done():
                        fut.set_result(None if preds is None else preds[i])
        finally:
            self._running = False

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
