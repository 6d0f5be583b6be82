"""The trace a scenario replays: the local copy of a shared trace (checksum verified), its
window and time scale, then generated shapes on top (bursts, a diurnal ramp).

Shapes keep the trace's request sizes: a rate multiplier m(t) replicates each request
floor(m) times and once more with probability frac(m), with seeded jitter, so a 5x burst
has five times the arrivals of the same minutes; m < 1 thins. Deterministic per seed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from autoscaler.simulator.scenario import Scenario
from autoscaler.simulator.traces import Trace, TraceError, load_sim_trace

KNOWN_TRACES: dict[str, str] = {
    # Byte-for-byte copies of the upstream files (../shared/data/traces/*/PROVENANCE.md).
    "traces/azure_llm_2023/AzureLLMInferenceTrace_conv.csv": (
        "2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8"
    ),
    "traces/azure_llm_2023/AzureLLMInferenceTrace_code.csv": (
        "54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6"
    ),
    "traces/mooncake_synthetic/synthetic_trace.jsonl": (
        "bd070915a98fc0ed264d7cfef2ce746002eb3076a695ec31ba2674c0111ec131"
    ),
}


def verify_trace(path: Path, relative: str) -> None:
    """Raise TraceError when `relative` is a known shared trace and `path`'s sha256 differs."""
    want = KNOWN_TRACES.get(relative)
    if want is None:
        return
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != want:
        raise TraceError(
            f"{path}: sha256 {digest.hexdigest()[:16]}... does not match the upstream file ({want[:16]}...); "
            "see its PROVENANCE.md"
        )


def scenario_trace(sc: Scenario) -> Trace:
    """The requests `sc` replays. Raises TraceError (missing, checksum, empty window)."""
    spec = sc.trace
    rel = Path(spec.path)
    path = rel if rel.is_absolute() else sc.resolved_data_dir() / rel
    if not path.is_file():
        raise TraceError(f"{path}: trace file not found (set PETIT_DATA_DIR or --data-dir)")
    verify_trace(path, spec.path)
    trace = load_sim_trace(path, spec.format, spec.timestamp_unit).window(
        spec.start_s, spec.duration_s, spec.time_scale
    )
    if spec.bursts or spec.diurnal is not None:
        trace = modulate(trace, rate_multiplier(sc), sc.seed)
    if not len(trace):
        raise TraceError(f"{path}: no requests in the selected window")
    return trace


def rate_multiplier(sc: Scenario) -> Callable[[np.ndarray], np.ndarray]:
    """m(t) of the scenario's shapes (t in simulated seconds): the diurnal ramp times the bursts."""
    bursts = [(b.at_min * 60.0, (b.at_min + b.minutes) * 60.0, b.factor) for b in sc.trace.bursts]
    d = sc.trace.diurnal

    def m(t: np.ndarray) -> np.ndarray:
        out = np.ones_like(t)
        if d is not None:
            out *= d.low + (d.high - d.low) * (1 - np.cos(2 * math.pi * t / (d.period_min * 60.0))) / 2
        for a, b, f in bursts:
            out = np.where((t >= a) & (t < b), out * f, out)
        return out

    return m


def modulate(trace: Trace, m: Callable[[np.ndarray], np.ndarray], seed: int) -> Trace:
    """Arrivals scaled by the rate multiplier `m` (see the module docstring)."""
    rng = np.random.default_rng(seed + 7919)
    t = trace.arrival_s
    mult = m(t)
    copies = np.floor(mult).astype(int) + (rng.random(len(t)) < mult - np.floor(mult))
    idx = np.repeat(np.arange(len(t)), copies)
    gap = float(np.mean(np.diff(t))) if len(t) > 1 else 1.0
    first = np.r_[True, idx[1:] != idx[:-1]]
    jitter = np.where(first, 0.0, rng.uniform(0.0, gap, len(idx)))
    arrival = t[idx] + jitter
    order = np.argsort(arrival, kind="stable")
    return Trace(arrival[order], trace.input_tokens[idx][order], trace.output_tokens[idx][order], trace.source)
