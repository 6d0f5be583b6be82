"""Performance profiles of one replica under continuous batching.

An engine iteration with `b` decoding sequences and `p` prefill tokens (chunked
prefill) takes ``t0_ms + t1_ms * b + prefill_ms_per_token * p``. Built-in
profiles are calibrated on published H100 numbers (`../shared/data/profiles`,
PROFILES.md; the arithmetic is in autoscaler/README.md):

- 8B on 1xH100: ITL 4.6 ms at c=1, 7.6 ms at c~100 (NIM / silybench 1b, 1c);
  prefill ~0.025 ms/token (silybench: 2048-token TTFT 50 ms, 8192 -> 205 ms).
- 70B on 4xH100 (TP4): decode 29.4 ms/iter at batch 1, 36.9 ms at batch 32;
  prefill 1024 tokens in 105.6 ms (SplitwiseSim perf_model, 1c).
Start-up times are assumptions (weights load + graph capture).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReplicaProfile(BaseModel):
    """Timing model of one replica (see module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    t0_ms: float = Field(gt=0, description="Iteration time with an empty batch (weights read).")
    t1_ms: float = Field(ge=0, description="Extra iteration time per decoding sequence.")
    prefill_ms_per_token: float = Field(gt=0, description="Iteration time per prefill token.")
    max_num_seqs: int = Field(256, ge=1, description="Sequences batched at most.")
    max_batched_tokens: int = Field(8192, ge=16, description="Tokens per iteration (chunked prefill budget).")
    kv_tokens: int = Field(400_000, ge=1, description="KV-cache capacity in tokens (prompt + output).")
    startup_s: float = Field(60, ge=0, description="Seconds from placement to ready.")


BUILTIN_PROFILES: dict[str, ReplicaProfile] = {
    "h100-8b": ReplicaProfile(
        t0_ms=4.6,
        t1_ms=0.03,
        prefill_ms_per_token=0.025,
        max_num_seqs=256,
        max_batched_tokens=8192,
        kv_tokens=380_000,
        startup_s=90,
    ),
    "h100x4-70b": ReplicaProfile(
        t0_ms=29.2,
        t1_ms=0.24,
        prefill_ms_per_token=0.1,
        max_num_seqs=128,
        max_batched_tokens=8192,
        kv_tokens=400_000,
        startup_s=300,
    ),
}
