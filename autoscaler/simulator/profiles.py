"""Performance profiles of one replica under continuous batching.

An engine iteration with `b` decoding sequences holding `c` context tokens in all and
`p` prefill tokens (chunked prefill, at most `max_batched_tokens` per iteration, so a
prompt's prefill time grows with its length) takes
``t0_ms + t1_ms * b + kv_ms_per_token * c + prefill_ms_per_token * p``. Built-in
profiles are calibrated on published H100 numbers (`../shared/data/profiles`,
PROFILES.md; the arithmetic is in autoscaler/README.md):

- 8B on 1xH100: ITL 4.6 ms at c=1, 7.6 ms at c~100 (NIM / silybench 1b, 1c);
  prefill ~0.025 ms/token (silybench: 2048-token TTFT 50 ms, 8192 -> 205 ms);
  context 5.3e-5 ms/token (silybench long 8192/512: ITL 5.1 ms at c=1, 9.5 ms at c=10,
  i.e. (9.5 - 4.6 - 0.3) / 87k tokens; it predicts balanced 2048/2048 c=64 at 16.7 ms vs 14.8).
- 70B on 4xH100 (TP4): decode 29.4 ms/iter at batch 1, 36.9 ms at batch 32;
  prefill 1024 tokens in 105.6 ms (SplitwiseSim perf_model, 1c); context 3.3e-5 ms/token
  (the 8B figure x KV bytes per token 70B/8B (2.5) / 4 GPUs: derived, not measured).
- 1B on 1xH100: no published serving profile (PROFILES 1f); scaled from the 8B by weight
  bytes (prefill, t1) and KV bytes per token (context), with a 2 ms floor per iteration
  (scheduling and kernel launches). Derived, not measured.
Start-up times are assumptions (weights load + graph capture).
Measured profiles (`petit profile`, measured.py) fit the same fields on a running replica,
plus `ttft_overhead_ms`, the part of its TTFT outside the engine iterations.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReplicaProfile(BaseModel):
    """Timing model of one replica (see module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    t0_ms: float = Field(gt=0, description="Iteration time with an empty batch (weights read).")
    t1_ms: float = Field(ge=0, description="Extra iteration time per decoding sequence.")
    prefill_ms_per_token: float = Field(gt=0, description="Iteration time per prefill token.")
    kv_ms_per_token: float = Field(
        0, ge=0, description="Iteration time per context token of the decoding sequences (attention reads)."
    )
    max_num_seqs: int = Field(256, ge=1, description="Sequences batched at most.")
    max_batched_tokens: int = Field(8192, ge=16, description="Tokens per iteration (chunked prefill budget).")
    kv_tokens: int = Field(400_000, ge=1, description="KV-cache capacity in tokens (prompt + output).")
    startup_s: float = Field(60, ge=0, description="Seconds from placement to ready.")
    ttft_overhead_ms: float = Field(
        0,
        ge=0,
        description="Fixed time a request spends outside the engine's iterations before its first token "
        "(HTTP, gateway, tokenization, chat template); measured profiles set it, built-in ones leave it 0.",
    )


BUILTIN_PROFILES: dict[str, ReplicaProfile] = {
    "h100-1b": ReplicaProfile(
        t0_ms=2.0,
        t1_ms=0.01,
        prefill_ms_per_token=0.004,
        kv_ms_per_token=1.3e-5,
        max_num_seqs=256,
        max_batched_tokens=8192,
        kv_tokens=1_500_000,
        startup_s=45,
    ),
    "h100-8b": ReplicaProfile(
        t0_ms=4.6,
        t1_ms=0.03,
        prefill_ms_per_token=0.025,
        kv_ms_per_token=5.3e-5,
        max_num_seqs=256,
        max_batched_tokens=8192,
        kv_tokens=380_000,
        startup_s=90,
    ),
    "h100x4-70b": ReplicaProfile(
        t0_ms=29.2,
        t1_ms=0.24,
        prefill_ms_per_token=0.1,
        kv_ms_per_token=3.3e-5,
        max_num_seqs=128,
        max_batched_tokens=8192,
        kv_tokens=400_000,
        startup_s=300,
    ),
}
