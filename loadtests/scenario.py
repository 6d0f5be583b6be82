"""The scenario file: what load to send, for how long, and what to change during the run.

::

    name: steady-auto
    model: auto                  # the `model` field sent; a list ([auto, a, b]) takes turns
    endpoint: chat               # chat (/v1/chat/completions) | completions (/v1/completions)
    stream: true                 # stream with stream_options.include_usage
    duration_s: 60
    warmup_s: 10                 # excluded from the verdict
    max_tokens: 64               # output tokens asked (trace replay: the trace's)
    extra_body: {temperature: 0, ignore_eos: true}
    shape: {kind: constant, users: 8}
    prompts: {synthetic: {input_tokens: 128}}
    pricing: {fleet: ../../deploy/fleet.local.yaml}
    scarcity:
      admin_url: http://127.0.0.1:9000
      events: [{at_s: 20, gpus: 2}, {at_s: 40, gpus: 8}]
    tenants:                     # optional: each user sends one tenant's key (see tenant_traffic.py)
      - {name: alpha, api_key_env: PETIT_KEY_ALPHA, share: 1}

Paths (prompt file, tokenizer, pricing) are relative to the scenario file;
trace files are relative to the trace directory (see traces.py). Pure module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loadtests.config_files import load_yaml
from loadtests.shapes import BurstLoad, ConstantLoad, RampLoad, StepLoad, TraceLoad
from loadtests.tenant_traffic import TenantTrafficSpec, check_tenant_traffic
from loadtests.traces import TraceSelection


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConstantShape(_Strict):
    kind: Literal["constant"]
    users: int = Field(ge=1, le=100_000)
    spawn_rate: float = Field(100, gt=0, description="Users started per second.")


class RampShape(_Strict):
    kind: Literal["ramp"]
    start_users: int = Field(1, ge=0)
    end_users: int = Field(ge=1)
    ramp_s: float = Field(gt=0)
    spawn_rate: float = Field(100, gt=0)


class StepShape(_Strict):
    kind: Literal["step"]
    start_users: int = Field(1, ge=0)
    step_users: int = Field(ge=1)
    step_s: float = Field(gt=0)
    max_users: int = Field(ge=1)
    spawn_rate: float = Field(100, gt=0)


class BurstShape(_Strict):
    kind: Literal["burst"]
    base_users: int = Field(ge=0)
    burst_users: int = Field(ge=1)
    every_s: float = Field(gt=0)
    burst_s: float = Field(gt=0)
    spawn_rate: float = Field(100, gt=0)

    @model_validator(mode="after")
    def _fits(self) -> BurstShape:
        if self.burst_s > self.every_s:
            raise ValueError(f"burst_s ({self.burst_s}) must be <= every_s ({self.every_s})")
        return self


class TraceShape(_Strict):
    kind: Literal["trace"]
    users: int = Field(64, ge=1, description="Pool of users (maximum concurrent requests) replaying arrivals.")


Shape = Annotated[ConstantShape | RampShape | StepShape | BurstShape | TraceShape, Field(discriminator="kind")]


class SyntheticPromptSpec(_Strict):
    input_tokens: int = Field(128, ge=1, description="Prompt length (trace replay: the trace's).")
    tokenizer: str | None = Field(None, description="Local HF model folder; without it ~0.75 words/token.")


class PromptSpec(_Strict):
    synthetic: SyntheticPromptSpec | None = None
    file: str | None = Field(None, description="JSONL {prompt, expected?, match?} or .txt, one prompt per line.")

    @model_validator(mode="after")
    def _one(self) -> PromptSpec:
        if (self.synthetic is None) == (self.file is None):
            raise ValueError("set exactly one of synthetic, file")
        return self


class TraceSpec(_Strict):
    format: Literal["azure", "mooncake"]
    file: str = Field(description="Relative to the trace directory ($PETIT_TRACE_DIR or ../shared/data/traces).")
    time_scale: float = Field(1.0, gt=0, description="Replay time = trace time x time_scale (0.1 = 10x faster).")
    start_s: float = Field(0, ge=0)
    window_s: float | None = Field(None, gt=0)
    max_requests: int | None = Field(None, ge=1)
    max_input_tokens: int | None = Field(None, ge=1)
    max_output_tokens: int | None = Field(None, ge=1)

    def selection(self) -> TraceSelection:
        return TraceSelection(
            self.time_scale,
            self.start_s,
            self.window_s,
            self.max_requests,
            self.max_input_tokens,
            self.max_output_tokens,
        )


class ScarcityEvent(_Strict):
    at_s: float = Field(ge=0, description="Seconds after the start of the run.")
    gpus: int = Field(ge=0, description='New GPU budget, sent as POST {admin_url}/admin/budget {"gpus": N}.')


class ScarcitySpec(_Strict):
    admin_url: str = Field(pattern=r"^https?://", description="The autoscaler's admin base URL.")
    events: list[ScarcityEvent] = Field(min_length=1)
    metrics_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="The autoscaler's Prometheus page (Kubernetes: its metrics port), polled with the admin.",
    )

    @model_validator(mode="after")
    def _sorted(self) -> ScarcitySpec:
        times = [e.at_s for e in self.events]
        if times != sorted(times):
            raise ValueError(f"events must be in time order, got at_s {times}")
        return self


class PricingSpec(_Strict):
    fleet: str | None = Field(None, description="A Petit fleet config: its cost formula and tiers.")
    prices: str | None = Field(None, description="A price table YAML (USD per 1M input/output tokens, tier).")


class ScenarioSpec(_Strict):
    name: str = "loadtest"
    model: str | list[str] = Field(
        "auto", description="The `model` sent; a list: request i asks models[i % n] (each sees every prompt)."
    )
    endpoint: Literal["chat", "completions"] = "chat"
    stream: bool = True
    duration_s: float = Field(gt=0, le=7 * 86400)
    warmup_s: float = Field(0, ge=0)
    max_tokens: int = Field(64, ge=1)
    think_time_s: float = Field(0, ge=0, description="Closed-loop shapes: pause between a user's requests.")
    request_timeout_s: float = Field(120, gt=0)
    stop_grace_s: float = Field(
        30, ge=0, description="At the end, wait this long for requests in flight; the rest are 'unfinished'."
    )
    fail_fast_s: float = Field(
        10, ge=0, description="Abort (exit 3) if every request finished in the first N s failed; 0: never."
    )
    extra_body: dict[str, Any] = Field(default_factory=dict, description="Merged into every request body.")
    shape: Shape
    prompts: PromptSpec = PromptSpec(synthetic=SyntheticPromptSpec())
    trace: TraceSpec | None = None
    scarcity: ScarcitySpec | None = None
    pricing: PricingSpec = PricingSpec()
    poll_s: float = Field(
        2.0, ge=0, description="Poll /v1/models (and the admin, with scarcity) every N s during the run; 0: never."
    )
    tenants: list[TenantTrafficSpec] = Field(
        default_factory=list,
        description="Traffic per tenant: each user sends one tenant's API key (from an env variable), by share.",
    )

    @property
    def requested_models(self) -> list[str]:
        return [self.model] if isinstance(self.model, str) else list(self.model)

    @model_validator(mode="after")
    def _consistent(self) -> ScenarioSpec:
        models = self.requested_models
        if not models or len(set(models)) != len(models) or not all(models):
            raise ValueError(f"model: give one name or a list of distinct names, got {self.model!r}")
        if self.warmup_s >= self.duration_s:
            raise ValueError(f"warmup_s ({self.warmup_s}) must be < duration_s ({self.duration_s})")
        if (self.shape.kind == "trace") != (self.trace is not None):
            raise ValueError("shape kind 'trace' and a `trace:` section go together")
        check_tenant_traffic(self.tenants)
        return self

    def build_shape(self):
        """The pure shape object for this scenario (see shapes.py)."""
        s, d = self.shape, self.duration_s
        if isinstance(s, ConstantShape):
            return ConstantLoad(s.users, d, s.spawn_rate)
        if isinstance(s, RampShape):
            return RampLoad(s.start_users, s.end_users, s.ramp_s, d, s.spawn_rate)
        if isinstance(s, StepShape):
            return StepLoad(s.start_users, s.step_users, s.step_s, s.max_users, d, s.spawn_rate)
        if isinstance(s, BurstShape):
            return BurstLoad(s.base_users, s.burst_users, s.every_s, s.burst_s, d, s.spawn_rate)
        return TraceLoad(s.users, d)


def resolve(base: Path, path: str | None) -> str | None:
    """A path from a scenario file, relative to that file's folder."""
    if path is None:
        return None
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else base / p)


def load_scenario(path: str | Path) -> ScenarioSpec:
    """Read and validate a scenario file; relative paths become relative to its folder."""
    spec = load_yaml(path, ScenarioSpec, "scenario")
    base = Path(path).resolve().parent
    prompts = spec.prompts
    if prompts.file is not None:
        prompts = prompts.model_copy(update={"file": resolve(base, prompts.file)})
    elif prompts.synthetic is not None and prompts.synthetic.tokenizer is not None:
        syn = prompts.synthetic.model_copy(update={"tokenizer": resolve(base, prompts.synthetic.tokenizer)})
        prompts = prompts.model_copy(update={"synthetic": syn})
    pricing = PricingSpec(fleet=resolve(base, spec.pricing.fleet), prices=resolve(base, spec.pricing.prices))
    return spec.model_copy(update={"prompts": prompts, "pricing": pricing})
