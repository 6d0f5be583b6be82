"""Measured replica profiles: fit the simulator's timing model to one running replica, and the
profile file that `petit profile` writes and scenarios name (`profiles: {model: FILE}`).

Measurement design (loadtests/profiler.py): batches of `c` identical-size requests sent at
once, each batch after the previous one has finished, over a grid of concurrency x prompt
length. The fit (pure, numpy) reads the timing model of profiles.py from those samples:

- decode: every request of a batch decodes alongside the others, so its time per output
  token is one iteration with `c` decoding sequences,
  ``TPOT = t0 + t1 * c + kv * c * (prompt + output / 2)`` (non-negative least squares with
  the intercept kept);
- prefill: a lone request (c = 1) runs its prompt in ``ceil(prompt / max_batched_tokens)``
  iterations, ``TTFT = overhead + t0 * iterations + prefill * prompt`` (least squares over the
  c = 1 cells, given t0 from the decode fit). Prompt tokens are the server's count (chat
  template included); the template's tokens (server count minus the tokens asked for) go into
  `ttft_overhead_ms`, since traces and the simulator count the user's prompt only.

Both fits read each cell's medians (robust to a request slowed by a busy machine).
Each measured cell is then replayed on the fitted profile in the simulator (the same batch at
t = 0), and the file keeps measured and simulated TTFT/TPOT side by side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autoscaler.simulator.capacity import replay_warm
from autoscaler.simulator.engine import OK, Requests
from autoscaler.simulator.profiles import ReplicaProfile

PROFILE_SUFFIXES = (".yaml", ".yml", ".json")
_MIN_PREFILL_MS = 1e-6  # ReplicaProfile needs > 0; a server with no measurable prefill cost gets this


class ProfileFitError(ValueError):
    """The samples cannot determine a profile (too few, or no decode signal)."""


class ProfileFileError(ValueError):
    """A profile file could not be read or did not validate; the message names the file."""


@dataclass(frozen=True)
class ProfileSample:
    """One request of a profiling batch (times in seconds, token counts from the server)."""

    concurrency: int  # requests in its batch, sent together
    requested_prompt_tokens: int  # the prompt length asked for (the cell's)
    prompt_tokens: int  # the server's count (usage.prompt_tokens)
    output_tokens: int
    ttft_s: float
    tpot_s: float | None


@dataclass(frozen=True)
class ProfileLimits:
    """What the samples cannot tell: the engine's batch limits, KV capacity and start-up time."""

    max_num_seqs: int = 256
    max_batched_tokens: int = 2048  # vLLM's default for its OpenAI server on CPU
    kv_tokens: int = 400_000
    startup_s: float = 60.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProfilePoint(_Strict):
    """One cell of the grid: measured medians next to the fitted profile's simulated means."""

    concurrency: int = Field(ge=1)
    prompt_tokens: int = Field(ge=1, description="Asked for; the server's mean count is below.")
    server_prompt_tokens: float = Field(ge=0)
    output_tokens: float = Field(ge=0)
    requests: int = Field(ge=1)
    ttft_ms: float
    tpot_ms: float | None
    simulated_ttft_ms: float | None
    simulated_tpot_ms: float | None


class ProfileProvenance(_Strict):
    target: str
    model: str
    measured_at: str = Field(description="ISO date-time of the measurement.")
    tool: str = "petit profile"
    max_model_len: int | None = None
    template_tokens: float = Field(
        description="Median server prompt tokens minus the tokens asked for (0 when measured without a tokenizer)."
    )
    requests: int = Field(ge=0, description="Requests that answered and entered the fit.")
    failed: int = Field(0, ge=0, description="Requests that failed (left out of the fit).")
    decode_rmse_ms: float | None = None
    prefill_rmse_ms: float | None = None


class ProfileFile(_Strict):
    """The file `petit profile` writes; `profile` is what the simulator reads."""

    kind: Literal["petit-replica-profile"] = "petit-replica-profile"
    version: Literal[1] = 1
    profile: ReplicaProfile
    provenance: ProfileProvenance
    points: list[ProfilePoint] = Field(default_factory=list)


@dataclass(frozen=True)
class ProfileFit:
    profile: ReplicaProfile
    template_tokens: float
    decode_rmse_ms: float
    prefill_rmse_ms: float


def nonnegative_lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with every coefficient but the first (the intercept) >= 0: the best of the
    fits over column subsets that keep the intercept and come out non-negative."""
    n = x.shape[1]
    best, best_err = np.zeros(n), math.inf
    for mask in range(1 << (n - 1)):
        cols = [0] + [j + 1 for j in range(n - 1) if mask >> j & 1]
        coef, *_ = np.linalg.lstsq(x[:, cols], y, rcond=None)
        if any(c < 0 for c in coef[1:]):
            continue
        full = np.zeros(n)
        full[cols] = coef
        err = float(np.sum((x @ full - y) ** 2))
        if err < best_err:
            best, best_err = full, err
    return best


def _rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2))) if len(y) else 0.0


def cell_medians(samples: Sequence[ProfileSample]) -> list[ProfileSample]:
    """One sample per cell (concurrency, prompt length asked) holding the medians of its
    requests: a request slowed by a busy machine does not pull the fit."""
    cells: dict[tuple[int, int], list[ProfileSample]] = {}
    for s in samples:
        cells.setdefault((s.concurrency, s.requested_prompt_tokens), []).append(s)
    out = []
    for (conc, asked), group in sorted(cells.items()):
        tpots = [s.tpot_s for s in group if s.tpot_s is not None]
        out.append(
            ProfileSample(
                conc,
                asked,
                round(float(np.median([s.prompt_tokens for s in group]))),
                round(float(np.median([s.output_tokens for s in group]))),
                float(np.median([s.ttft_s for s in group])),
                float(np.median(tpots)) if tpots else None,
            )
        )
    return out


def fit_profile(samples: Sequence[ProfileSample], limits: ProfileLimits, exact_prompts: bool = False) -> ProfileFit:
    """The timing model of the samples (see the module docstring), fitted on each cell's
    medians. `exact_prompts`: the prompts were cut to the asked length with the model's
    tokenizer, so the server's extra tokens are its chat template (without a tokenizer the asked
    length is a rough guess: no template is counted). Raises ProfileFitError when no sample has
    a TPOT, or the lone requests (c = 1) cover fewer than two prompt lengths."""
    cells = cell_medians(samples)
    dec = [s for s in cells if s.tpot_s is not None and s.output_tokens > 1]
    if not dec:
        raise ProfileFitError("no sample with a time per output token (ask for at least 2 output tokens)")
    c = np.array([s.concurrency for s in dec], dtype=float)
    ctx = np.array([s.prompt_tokens + s.output_tokens / 2 for s in dec], dtype=float)
    y_dec = np.array([s.tpot_s for s in dec], dtype=float) * 1000.0
    x_dec = np.column_stack([np.ones_like(c), c, c * ctx])
    t0, t1, kv = nonnegative_lstsq(x_dec, y_dec)
    if t0 <= 0:
        raise ProfileFitError(f"the decode fit gives a non-positive iteration time ({t0:.3g} ms)")
    lone = [s for s in cells if s.concurrency == 1]
    if len({s.prompt_tokens for s in lone}) < 2:
        raise ProfileFitError("the prefill fit needs lone requests (concurrency 1) of at least two prompt lengths")
    n_in = np.array([s.prompt_tokens for s in lone], dtype=float)
    iters = np.ceil(n_in / limits.max_batched_tokens)
    y_pre = np.array([s.ttft_s for s in lone]) * 1000.0 - t0 * iters
    x_pre = np.column_stack([np.ones_like(n_in), n_in])
    overhead, prefill = nonnegative_lstsq(x_pre, y_pre)
    prefill = max(float(prefill), _MIN_PREFILL_MS)
    template = (
        float(np.median([s.prompt_tokens - s.requested_prompt_tokens for s in samples])) if exact_prompts else 0.0
    )
    profile = ReplicaProfile(
        t0_ms=float(t0),
        t1_ms=float(t1),
        prefill_ms_per_token=prefill,
        kv_ms_per_token=float(kv),
        ttft_overhead_ms=max(float(overhead) + prefill * template, 0.0),
        max_num_seqs=limits.max_num_seqs,
        max_batched_tokens=limits.max_batched_tokens,
        kv_tokens=limits.kv_tokens,
        startup_s=limits.startup_s,
    )
    return ProfileFit(
        profile,
        template,
        _rmse(x_dec @ np.array([t0, t1, kv]), y_dec),
        _rmse(x_pre @ np.array([overhead, prefill]), y_pre),
    )


def iteration_ms(profile: ReplicaProfile, decoding: int, context_tokens: float) -> float:
    """One decode iteration of `decoding` sequences holding `context_tokens` in all (no prefill)."""
    return profile.t0_ms + profile.t1_ms * decoding + profile.kv_ms_per_token * context_tokens


def simulate_batch(
    profile: ReplicaProfile, concurrency: int, prompt_tokens: float, output_tokens: float
) -> tuple[float | None, float | None]:
    """Mean TTFT and TPOT (s) the simulator gives `concurrency` requests of one size sent together
    to one warm replica of `profile` (ticks of a fifth of an iteration or less); None where no
    request got that far."""
    n = max(concurrency, 1)
    req = Requests(np.zeros(n), np.full(n, float(prompt_tokens)), np.full(n, float(output_tokens)))
    rough = (profile.ttft_overhead_ms + profile.t0_ms * (output_tokens + 2)) / 1000.0
    rough += (profile.prefill_ms_per_token * prompt_tokens + profile.t1_ms * output_tokens) * n / 1000.0
    rough += profile.kv_ms_per_token * n * (prompt_tokens + output_tokens) * output_tokens / 1000.0
    tick_s = min(profile.t0_ms / 5000.0, rough / 500.0)
    replay_warm(profile, 0.0, 1, req, tick_s, 2 * rough + 0.5)
    ok = (req.status == OK) & ~np.isnan(req.ttft)
    if not ok.any():
        return None, None
    ttft = float(req.ttft[ok].mean())
    if output_tokens <= 1:
        return ttft, None
    first = req.ttft[ok] - profile.ttft_overhead_ms / 1000.0  # engine time of the first token
    return ttft, float(((req.done[ok] - first) / (output_tokens - 1)).mean())


def build_points(samples: Sequence[ProfileSample], profile: ReplicaProfile) -> list[ProfilePoint]:
    """Per cell (concurrency, prompt length asked): measured medians and the simulated means."""
    counts: dict[tuple[int, int], int] = {}
    for s in samples:
        key = (s.concurrency, s.requested_prompt_tokens)
        counts[key] = counts.get(key, 0) + 1
    points = []
    for m in cell_medians(samples):
        sim_ttft, sim_tpot = simulate_batch(profile, m.concurrency, float(m.requested_prompt_tokens), m.output_tokens)
        points.append(
            ProfilePoint(
                concurrency=m.concurrency,
                prompt_tokens=m.requested_prompt_tokens,
                server_prompt_tokens=m.prompt_tokens,
                output_tokens=m.output_tokens,
                requests=counts[(m.concurrency, m.requested_prompt_tokens)],
                ttft_ms=m.ttft_s * 1000.0,
                tpot_ms=None if m.tpot_s is None else m.tpot_s * 1000.0,
                simulated_ttft_ms=None if sim_ttft is None else sim_ttft * 1000.0,
                simulated_tpot_ms=None if sim_tpot is None else sim_tpot * 1000.0,
            )
        )
    return points


def write_profile_file(path: str | Path, doc: ProfileFile) -> Path:
    """Write `doc` as YAML (JSON when the name ends in .json); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = doc.model_dump(mode="json")
    if p.suffix == ".json":
        import json

        p.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    else:
        head = (
            "# Measured by `petit profile` (autoscaler/simulator/measured.py); `profile` is what the simulator reads.\n"
        )
        p.write_text(head + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return p


def read_profile_file(path: str | Path) -> ProfileFile:
    """Read and validate a profile file. Raises ProfileFileError naming the file."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))  # JSON is YAML
    except OSError as err:
        raise ProfileFileError(f"{p}: cannot read profile: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ProfileFileError(f"{p}: not valid YAML/JSON: {err}") from None
    try:
        return ProfileFile.model_validate(data)
    except ValidationError as err:
        where = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or '(top level)'}: {e['msg']}" for e in err.errors())
        raise ProfileFileError(f"{p}: not a profile file ({where})") from None
