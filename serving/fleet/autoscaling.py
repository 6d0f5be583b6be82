"""Autoscaler settings: the `autoscaler:` section of the one fleet config.

Pure module (pydantic only; it must not import serving.fleet.schema, which imports
it). Cross-checks that need the models (a model needing more GPUs than any node
has, quality keys naming unknown models) live in :func:`check_against_fleet`,
which `FleetConfig` calls at load time so contradictions fail at start.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuSourceConfig(_Strict):
    """Where the autoscaler learns how many GPUs exist right now."""

    kind: Literal["fixed", "kubernetes", "ray"] = Field(
        "fixed",
        description="fixed: `gpus` (changeable at run time via POST /admin/budget); "
        "kubernetes: node allocatable minus requests; ray: ray.cluster_resources().",
    )
    gpus: float | None = Field(None, ge=0, le=100_000, description="The fixed budget (kind=fixed).")
    node_labels: dict[str, str] = Field(
        default_factory=dict, description="kubernetes: count only nodes carrying all these labels."
    )
    gpus_per_node: list[int] = Field(
        default_factory=list,
        description="GPU counts of the node shapes that exist (optional). When given, a model whose "
        "replica needs more GPUs than the largest node is rejected at start.",
    )
    resource_name: str = Field("nvidia.com/gpu", description="kubernetes: the extended resource counted.")
    own_pod_selector: dict[str, str] = Field(
        default_factory=dict,
        description="kubernetes: labels of the fleet's own pods; GPUs they hold count as the fleet's budget.",
    )
    reserve_gpus: float = Field(0, ge=0, description="GPUs kept out of the budget (head room for others).")

    @model_validator(mode="after")
    def _fixed_needs_gpus(self) -> GpuSourceConfig:
        if self.kind == "fixed" and self.gpus is None:
            # The default fixed source without a number means: unlimited until set at run time.
            return self
        if self.kind != "fixed" and self.gpus is not None:
            raise ValueError(f"gpus is only for kind=fixed (got kind={self.kind})")
        return self


class ScalingConfig(_Strict):
    """Anti-oscillation: hysteresis, cooldowns, and slower scale-down than scale-up."""

    target_utilization: float = Field(
        0.75, gt=0.05, le=1.0, description="Plan replicas so demand fills this fraction of SLO capacity."
    )
    hysteresis: float = Field(
        0.1,
        ge=0,
        lt=0.9,
        description="Scale down only when demand would fit at target_utilization minus this.",
    )
    scale_up_cooldown_s: float = Field(15, ge=0, description="Min seconds between scale-ups of one model.")
    scale_down_cooldown_s: float = Field(120, ge=0, description="Min seconds between scale-downs of one model.")
    scale_down_stabilization_s: float = Field(
        180, ge=0, description="A lower target must be recommended this long before it is applied (HPA-style)."
    )
    max_scale_down_step: int = Field(1, ge=1, description="Replicas removed per model per decision, at most.")
    routing_deadband: float = Field(
        0.05, ge=0, lt=1, description="Routing shares moving less than this are left as they are."
    )
    routing_utilization: float = Field(
        0.9, gt=0.05, le=1.0, description="Routing fills ready replicas up to this fraction of SLO capacity."
    )
    backlog_drain_s: float = Field(30, gt=0, description="Queued work is planned to drain within this many seconds.")

    @model_validator(mode="after")
    def _down_not_faster(self) -> ScalingConfig:
        if self.scale_down_cooldown_s < self.scale_up_cooldown_s:
            raise ValueError(
                f"scale_down_cooldown_s ({self.scale_down_cooldown_s}) must be >= scale_up_cooldown_s "
                f"({self.scale_up_cooldown_s}): scale-down is slower than scale-up"
            )
        if self.hysteresis >= self.target_utilization:
            raise ValueError("hysteresis must be below target_utilization")
        return self


class AutoscalerConfig(_Strict):
    """Petit's GPU-scarcity autoscaler (the `autoscaler:` key of the fleet config)."""

    enabled: bool = Field(True, description="Off: the controller only observes and logs.")
    period_s: float = Field(5, gt=0, le=3600, description="Control period in seconds.")
    gpu_source: GpuSourceConfig = Field(default_factory=GpuSourceConfig, description="GPU supply signal.")
    budget_resource: Literal["gpus", "cpus"] = Field(
        "gpus",
        description="What the budget counts: GPUs (each replica counts `resources.gpus`), or CPUs for a "
        "CPU-only fleet like the embedded default (each replica counts `resources.cpus`; the fixed budget "
        "and POST /admin/budget then count CPUs, and gpu_source kind=ray reads Ray's CPU resource).",
    )
    price_per_gpu_hour: float = Field(2.5, ge=0, description="USD per GPU-hour, for cost reporting.")
    scaling: ScalingConfig = Field(default_factory=ScalingConfig, description="Hysteresis and cooldowns.")
    quality: dict[str, float] = Field(
        default_factory=dict,
        description="Expected quality (e.g. accuracy in points) by model id or tier name; "
        "defaults: small 60, medium 70, large 80 (replace with the router's evaluation).",
    )
    max_quality_drop: float = Field(
        3.0,
        ge=0,
        description="Normal times: the cheapest plan whose expected quality is within this many "
        "points of the best plan that fits the GPUs.",
    )
    router_quality_curve: list[tuple[float, float]] = Field(
        default_factory=lambda: [(0.0, 0.0), (0.25, 0.55), (0.5, 0.82), (0.75, 0.95), (1.0, 1.0)],
        description="Fraction of the quality gap recovered when a share s of `auto` traffic goes to the "
        "stronger tier (router picks the hard prompts first). Points (s, fraction), s and fraction from 0 "
        "to 1, increasing. The default is an assumption; replace it with the router's measured curve.",
    )
    max_signal_age_s: float = Field(30, gt=0, description="Older signals count as stale: no scaling.")
    startup_grace_s: float = Field(
        600, gt=0, description="A replica pending longer than this is treated as unschedulable."
    )

    @model_validator(mode="after")
    def _curve_ok(self) -> AutoscalerConfig:
        pts = self.router_quality_curve
        if len(pts) < 2 or pts[0] != (0.0, 0.0) or pts[-1] != (1.0, 1.0):
            raise ValueError("router_quality_curve must start at (0, 0) and end at (1, 1)")
        for (s0, f0), (s1, f1) in zip(pts, pts[1:]):
            if not (s1 > s0 and f1 >= f0):
                raise ValueError("router_quality_curve must increase in share and not decrease in fraction")
        return self


DEFAULT_TIER_QUALITY = {"small": 60.0, "medium": 70.0, "large": 80.0}


def check_against_fleet(cfg: AutoscalerConfig, models: list[tuple[str, str, float]]) -> None:
    """Reject contradictions between the autoscaler section and the models.

    `models` holds (id, tier, gpus per replica). Raises ValueError with a message.
    """
    ids = {m[0] for m in models}
    for key in cfg.quality:
        if key not in ids and key not in DEFAULT_TIER_QUALITY:
            raise ValueError(f"autoscaler.quality: '{key}' is neither a model id nor a tier")
    nodes = cfg.gpu_source.gpus_per_node
    if nodes:
        biggest = max(nodes)
        for mid, _tier, gpus in models:
            if gpus > biggest:
                raise ValueError(f"model '{mid}' needs {gpus:g} GPUs per replica but the largest node has {biggest}")
