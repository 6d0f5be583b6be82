"""The strict scenario YAML of `petit simulate` (see autoscaler/README.md).

Unknown keys and bad values raise :class:`ScenarioError` naming the file, the
line and the key path. Relative paths: `fleet` is relative to the scenario file;
`trace.path` is relative to the data directory (`data_dir`, itself relative to the scenario
file, else ``$PETIT_DATA_DIR``, else ``../shared/data`` beside the repository root); profile
files (`profiles: {model: FILE}`) are relative to the scenario file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autoscaler.simulator.measured import PROFILE_SUFFIXES, ProfileFileError, read_profile_file
from autoscaler.simulator.profiles import BUILTIN_PROFILES, ReplicaProfile
from serving.fleet.tenants import Priority

REPO_ROOT = Path(__file__).resolve().parents[2]
PolicyName = Literal[
    "large_only", "static_mix", "queue_based", "priority_trade", "static_optimum", "upper_bound", "petit"
]
POLICIES: tuple[PolicyName, ...] = (
    "large_only",
    "static_mix",
    "queue_based",
    "priority_trade",
    "static_optimum",
    "upper_bound",
    "petit",
)


class ScenarioError(ValueError):
    """A scenario file could not be read or did not validate."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Burst(_Strict):
    at_min: float = Field(ge=0, description="Simulated minute the burst starts.")
    minutes: float = Field(gt=0, description="How long it lasts.")
    factor: float = Field(gt=0, le=100, description="Arrival-rate multiplier during the burst.")


class Diurnal(_Strict):
    period_min: float = Field(gt=0, description="Simulated minutes from trough to trough.")
    low: float = Field(ge=0, le=100, description="Rate multiplier at the trough (t = 0).")
    high: float = Field(gt=0, le=100, description="Rate multiplier at the peak (half a period).")


class SimTraceSpec(_Strict):
    path: str = Field(description="Trace file, relative to the data directory unless absolute.")
    format: Literal["csv", "jsonl"] | None = Field(None, description="Default: from the suffix.")
    timestamp_unit: Literal["ms", "s"] = Field("ms", description="jsonl only.")
    time_scale: float = Field(1.0, gt=0, le=1000, description="2.0 replays the trace twice as fast.")
    start_s: float = Field(0, ge=0, description="Skip this much of the trace (original clock).")
    duration_s: float | None = Field(None, gt=0, description="Take this much of the trace (original clock).")
    bursts: list[Burst] = Field(default_factory=list, description="Generated bursts on top of the trace.")
    diurnal: Diurnal | None = Field(None, description="A generated diurnal ramp of the arrival rate.")


class GpuSpec(_Strict):
    total: int = Field(ge=1, le=100_000, description="GPUs at the start.")
    per_node: int = Field(8, ge=1, le=64, description="GPUs per node; GPU events remove/restore whole nodes.")

    @model_validator(mode="after")
    def _whole_nodes(self) -> GpuSpec:
        if self.total % self.per_node:
            raise ValueError(f"total ({self.total}) must be a multiple of per_node ({self.per_node})")
        return self


class GpuEvent(_Strict):
    at_min: float = Field(ge=0, description="Simulated minute (after time_scale) of the event.")
    gpus_fraction: float = Field(ge=0, le=1, description="Fraction of gpus.total available from then on.")


class TenantShare(_Strict):
    name: str = Field(min_length=1, max_length=64, description="The tenant (shown in no figure; for the reader).")
    priority: Priority = Field("normal", description="Its priority class (serving.fleet.tenants).")
    share: float = Field(gt=0, le=1e6, description="Its share of the requests (normalized over the tenants).")


class Baselines(_Strict):
    static_mix_large_fraction: float = Field(0.5, ge=0, le=1, description="static_mix: GPUs given to the top tier.")
    fixed_strong_share: float = Field(0.5, ge=0, le=1, description="queue_based: auto share sent to the top tier.")
    queue_target_ongoing: float = Field(32, gt=0, description="queue_based: target ongoing requests per replica.")
    queue_upscale_delay_s: float = Field(30, ge=0)
    queue_downscale_delay_s: float = Field(600, ge=0)


class Scenario(_Strict):
    name: str = "scenario"
    fleet: str = Field(description="Fleet YAML, relative to the scenario file.")
    data_dir: str | None = Field(None, description="Default: $PETIT_DATA_DIR or ../shared/data.")
    trace: SimTraceSpec
    gpus: GpuSpec
    events: list[GpuEvent] = Field(default_factory=list)
    profiles: dict[str, str | ReplicaProfile] = Field(
        description="Per model id: a built-in profile name, an inline profile, or a profile file "
        "(`petit profile`; .yaml/.yml/.json, relative to the scenario file)."
    )
    policies: list[PolicyName] = Field(default_factory=lambda: list(POLICIES))
    baselines: Baselines = Field(default_factory=Baselines)
    tick_s: float = Field(0.25, gt=0, le=5, description="Simulation step.")
    queue_timeout_s: float = Field(60, gt=0, description="Queued longer than this: the client gives up.")
    auto_fraction: float = Field(1.0, ge=0, le=1, description="Share of requests sent as model=auto.")
    tenants: list[TenantShare] = Field(
        default_factory=list,
        description="Who sends the requests (each drawn by share): the gateway routes each tenant's auto "
        "requests with its priority class's downgrade share; the results show what each class got.",
    )
    bucket_s: float = Field(60, gt=0, description="Time-series resolution of the report.")
    window_s: float = Field(60, gt=0, description="upper_bound: the hindsight planner's window.")
    start: Literal["steady", "cold"] = Field(
        "steady",
        description="steady: each policy starts from its own steady state for the first minute's load; "
        "cold: every policy starts from the models' initial replicas.",
    )
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        for mid, prof in self.profiles.items():
            if isinstance(prof, str) and prof not in BUILTIN_PROFILES and not prof.endswith(PROFILE_SUFFIXES):
                raise ValueError(
                    f"profiles.{mid}: unknown profile '{prof}' (built in: {', '.join(BUILTIN_PROFILES)}; "
                    f"or a profile file ending in {', '.join(PROFILE_SUFFIXES)})"
                )
        names = [t.name for t in self.tenants]
        if len(set(names)) != len(names):
            raise ValueError(f"tenants: a name appears twice ({names})")
        times = [e.at_min for e in self.events]
        if times != sorted(times):
            raise ValueError("events must be sorted by at_min")
        return self

    def profile(self, model_id: str) -> ReplicaProfile:
        """The model's profile; a profile file is read here when load_sim_scenario has not already."""
        p = self.profiles[model_id]
        if isinstance(p, ReplicaProfile):
            return p
        return BUILTIN_PROFILES[p] if p in BUILTIN_PROFILES else read_profile_file(p).profile

    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir or os.environ.get("PETIT_DATA_DIR") or REPO_ROOT.parent / "shared" / "data")


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            nxt = node.value[key]
        else:
            nxt = None
        if nxt is None:
            break
        node, line = nxt, nxt.start_mark.line + 1
    return line


def load_sim_scenario(path: str | Path) -> tuple[Scenario, Path]:
    """Read and validate a scenario; returns it and the resolved fleet path."""
    p = Path(path)
    try:
        text = p.read_text()
        data, root = yaml.safe_load(text), yaml.compose(text)
    except OSError as err:
        raise ScenarioError(f"{p}: cannot read scenario: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ScenarioError(f"{p}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{p}:1: a scenario must be a mapping")
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as err:
        lines = [f"{p}: invalid scenario ({err.error_count()} problem(s))"]
        for e in err.errors():
            loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x in ("str", "ReplicaProfile")))
            where = ".".join(str(x) for x in loc) or "(top level)"
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            lines.append(f"  {p}:{_line_of(root, loc) or 1}: {where}: {msg}")
        raise ScenarioError("\n".join(lines)) from None
    return _with_profile_files(sc, p), (p.parent / sc.fleet).resolve()


def _with_profile_files(sc: Scenario, p: Path) -> Scenario:
    """Profile files read (relative to the scenario file) and put inline; a relative `data_dir`
    made relative to the scenario file too."""
    profiles: dict[str, str | ReplicaProfile] = {}
    for mid, prof in sc.profiles.items():
        if isinstance(prof, str) and prof not in BUILTIN_PROFILES:
            try:
                prof = read_profile_file(p.parent / prof).profile
            except ProfileFileError as err:
                raise ScenarioError(f"{p}: profiles.{mid}: {err}") from None
        profiles[mid] = prof
    update: dict[str, object] = {"profiles": profiles}
    if sc.data_dir is not None and not Path(sc.data_dir).expanduser().is_absolute():
        update["data_dir"] = str((p.parent / sc.data_dir).resolve())
    return sc.model_copy(update=update)
