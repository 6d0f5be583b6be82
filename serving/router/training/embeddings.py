"""Embedding a labelled set once, with an on-disk cache (train/eval commands only; not used when serving)."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from serving.router.training.data import LabelledSet

DEFAULT_CACHE_DIR = Path(os.environ.get("PETIT_ROUTER_CACHE", Path(tempfile.gettempdir()) / "petit-router-cache"))


def cache_path(ds: LabelledSet, max_seq_length: int, cache_dir: Path, tag: str = "") -> Path:
    """Keyed by the prompts, the length limit and the encoder's tag (its runtime/precision)."""
    key = hashlib.sha256(("\x00".join(ds.prompts)).encode("utf-8")).hexdigest()[:16]
    suffix = f"-{tag}" if tag else ""
    return Path(cache_dir) / f"emb-{key}-{len(ds)}-{max_seq_length}{suffix}.npy"


def embed_labelled(
    ds: LabelledSet,
    max_seq_length: int,
    encoder_factory: Callable[[int], object],
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
    chunk: int = 256,
) -> np.ndarray:
    """Embeddings of every prompt of `ds`, shape (n, 384), from the cache when present.

    Prompts are encoded in length order (less padding) and the result cached
    under `cache_dir` (None: no cache), keyed by the prompts, the length limit and the
    factory's `tag` (when it has one).
    """
    path = cache_path(ds, max_seq_length, cache_dir, getattr(encoder_factory, "tag", "")) if cache_dir else None
    if path is not None and path.exists():
        emb = np.load(path)
        if emb.shape[0] == len(ds):
            return emb
    encoder = encoder_factory(max_seq_length)
    order = np.argsort([len(p) for p in ds.prompts], kind="stable")
    out = None
    for s in range(0, len(order), chunk):
        idx = order[s : s + chunk]
        part = encoder.encode([ds.prompts[i] for i in idx])
        if out is None:
            out = np.zeros((len(ds), part.shape[1]), np.float32)
        out[idx] = part
        print(f"embedded {min(s + chunk, len(order))}/{len(order)}", file=sys.stderr, flush=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, out)
    return out
