"""The trained router artefact: ``<name>.npz`` (weights) + ``<name>.json`` (metadata), shipped in the package.

Metadata fields: ``format`` (``petit-router-difficulty``), ``version`` (format
version, an int), ``name``, ``encoder`` and ``max_seq_length`` (what the
weights expect), ``score_kind``, ``weights_sha256`` (of the .npz; a mismatch
means a corrupted file), ``training`` (``data_sha256``, ``split_seed``,
``test_fraction``, ``n_train``, ``source``), ``calibration.score_quantiles``
(101 quantiles of the routing score on a calibration sample, for
`calibration.threshold_for_share`) and ``default_strong_share``.

Loading reads files once (per replica); every failure raises ArtifactError
with the path and what is wrong, so the caller can fall back.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving.router.classifier import SCORE_KINDS, MLPClassifier

FORMAT = "petit-router-difficulty"
FORMAT_VERSION = 1
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
DEFAULT_NAME = "difficulty-v1"
_REQUIRED = ("w2", "b2", "mean", "std")


class ArtifactError(Exception):
    """The artefact is missing, corrupted or incompatible."""


@dataclass(frozen=True)
class RouterArtifact:
    classifier: MLPClassifier
    metadata: dict[str, Any]

    @property
    def score_quantiles(self) -> np.ndarray:
        return np.asarray(self.metadata["calibration"]["score_quantiles"], float)

    @property
    def max_seq_length(self) -> int:
        return int(self.metadata["max_seq_length"])


def default_paths(name: str = DEFAULT_NAME, folder: Path = ARTIFACTS_DIR) -> tuple[Path, Path]:
    return folder / f"{name}.npz", folder / f"{name}.json"


def save(clf: MLPClassifier, metadata: dict[str, Any], npz_path: Path, json_path: Path) -> dict[str, Any]:
    """Write weights (float32) and metadata (with format, version and weights_sha256 added). Returns the metadata."""
    buf = io.BytesIO()
    arrays: dict[str, Any] = {k: v.astype(np.float32) for k, v in clf.weights.items()}
    np.savez_compressed(buf, **arrays)
    raw = buf.getvalue()
    meta = dict(
        metadata,
        format=FORMAT,
        version=FORMAT_VERSION,
        score_kind=clf.score_kind,
        hidden=clf.hidden,
        weights_sha256=hashlib.sha256(raw).hexdigest(),
    )
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    npz_path.write_bytes(raw)
    json_path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return meta


def _check_meta(meta: object, where: Path) -> dict[str, Any]:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ArtifactError(f"{where}: not a {FORMAT} metadata file")
    if meta.get("version") != FORMAT_VERSION:
        raise ArtifactError(f"{where}: format version {meta.get('version')!r}, this Petit reads {FORMAT_VERSION}")
    if meta.get("score_kind") not in SCORE_KINDS:
        raise ArtifactError(f"{where}: unknown score_kind {meta.get('score_kind')!r}")
    q = meta.get("calibration", {}).get("score_quantiles")
    if not isinstance(q, list) or len(q) < 2 or any(b < a for a, b in zip(q, q[1:])):
        raise ArtifactError(f"{where}: calibration.score_quantiles must be a non-decreasing list")
    return meta


def load(npz_path: Path | None = None, json_path: Path | None = None) -> RouterArtifact:
    """Load and verify an artefact (the shipped one by default). Raises ArtifactError."""
    d_npz, d_json = default_paths()
    npz_path, json_path = Path(npz_path or d_npz), Path(json_path or d_json)
    try:
        meta = _check_meta(json.loads(json_path.read_text("utf-8")), json_path)
        raw = npz_path.read_bytes()
    except (OSError, ValueError) as err:
        raise ArtifactError(f"cannot read router artefact: {err}") from err
    if hashlib.sha256(raw).hexdigest() != meta.get("weights_sha256"):
        raise ArtifactError(f"{npz_path}: sha256 does not match {json_path.name} (corrupted or replaced)")
    try:
        with np.load(io.BytesIO(raw)) as z:
            weights = {k: z[k].astype(np.float32) for k in z.files}
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{npz_path}: unreadable weights: {err}") from err
    missing = [k for k in _REQUIRED if k not in weights]
    if missing:
        raise ArtifactError(f"{npz_path}: missing arrays {missing}")
    return RouterArtifact(MLPClassifier(weights, meta["score_kind"]), meta)
