"""What the fleet looked like during the run: budget, ready replicas, the routing plan. Pure module.

During a run the poller (polling.py) reads, every `poll_s` seconds:

- the target's ``GET /v1/models``: Petit lists ``petit.ready_replicas`` per model
  (a plain OpenAI server lists no replicas: nothing is recorded);
- with ``scarcity.admin_url``, the autoscaler's ``GET /admin/budget`` (``{"gpus": N | null}``,
  null: unlimited) and ``GET /admin/plan`` (the last plan's summary: routing shares
  per model, strong-tier share, whether the budget constrains it, target replicas);
- with ``scarcity.metrics_url``, a Prometheus text page with the autoscaler's
  ``petit_autoscaler_gpu_supply``, ``petit_route_share{tier}`` and
  ``petit_autoscaler_target_replicas{model}``.

Each poll becomes one :class:`TimelinePoint`; a source that failed leaves its
fields empty and its error in ``errors`` (polling never stops a run). The
functions here parse answers and shape series for the charts; no I/O.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


@dataclass
class TimelinePoint:
    """One poll, `t_s` seconds after the run start; None / empty: not known at that poll."""

    t_s: float
    budget: float | None = None  # the admin's budget (GPUs, or CPU cores on a CPU fleet)
    budget_unlimited: bool = False  # the admin answered null: no budget set
    budget_unit: str | None = None
    ready: dict[str, int] = field(default_factory=dict)  # ready replicas per model (/v1/models)
    target_replicas: dict[str, int] = field(default_factory=dict)  # the plan's replicas per model
    shares: dict[str, float] = field(default_factory=dict)  # the plan's share of movable traffic per model
    tier_shares: dict[str, float] = field(default_factory=dict)  # the same per tier (/metrics)
    strong_share: float | None = None
    constrained: bool | None = None  # the budget forces traffic off where the router would send it
    plan_reason: str | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def has_data(self) -> bool:
        return (
            self.budget is not None
            or self.budget_unlimited
            or bool(self.ready or self.shares or self.tier_shares or self.target_replicas)
        )


def _json(body: str | bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as err:
        raise ValueError(f"{what}: not JSON ({err})") from None


def read_models(point: TimelinePoint, body: str | bytes) -> None:
    """Ready replicas per model from an OpenAI `/v1/models` list (Petit's `petit.ready_replicas`).

    Raises ValueError for an answer that is not a model list."""
    doc = _json(body, "/v1/models")
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ValueError("/v1/models: no `data` list")
    for m in doc["data"]:
        extra = m.get("petit") if isinstance(m, dict) else None
        if isinstance(extra, dict) and isinstance(extra.get("ready_replicas"), int):
            point.ready[str(m.get("id"))] = extra["ready_replicas"]


def read_budget(point: TimelinePoint, body: str | bytes) -> None:
    """The admin's `GET /admin/budget` answer. Raises ValueError for another shape."""
    doc = _json(body, "/admin/budget")
    if not isinstance(doc, dict) or "gpus" not in doc:
        raise ValueError('/admin/budget: expected {"gpus": N}')
    gpus = doc["gpus"]
    if gpus is None or (isinstance(gpus, float) and math.isinf(gpus)):
        point.budget_unlimited = True
    elif isinstance(gpus, (int, float)) and not isinstance(gpus, bool):
        point.budget = float(gpus)
    else:
        raise ValueError(f"/admin/budget: gpus is {gpus!r}")
    point.budget_unit = str(doc.get("unit") or "gpus")


def read_plan(point: TimelinePoint, body: str | bytes) -> None:
    """The admin's `GET /admin/plan` answer (`{"plan": summary | null}`). Raises ValueError for another shape."""
    doc = _json(body, "/admin/plan")
    if not isinstance(doc, dict) or "plan" not in doc:
        raise ValueError('/admin/plan: expected {"plan": ...}')
    plan = doc["plan"]
    if plan is None:
        return  # no decision yet
    routing = plan.get("routing") or {}
    point.shares = {str(k): float(v) for k, v in (routing.get("shares") or {}).items()}
    if routing.get("strong_share") is not None:
        point.strong_share = float(routing["strong_share"])
    if routing.get("constrained") is not None:
        point.constrained = bool(routing["constrained"])
    point.plan_reason = plan.get("reason")
    targets = plan.get("targets") or {}
    point.target_replicas = {str(m): int(t["replicas"]) for m, t in targets.items() if "replicas" in t}


def read_metrics(point: TimelinePoint, text: str) -> None:
    """The autoscaler's Prometheus gauges: supply (as the budget when the admin gave none),
    route share per tier, target replicas per model. Raises ValueError for text that is not Prometheus'."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "petit_autoscaler_gpu_supply" and point.budget is None and not point.budget_unlimited:
                point.budget = float(s.value)
            elif s.name == "petit_route_share" and "tier" in s.labels:
                point.tier_shares[s.labels["tier"]] = float(s.value)
            elif s.name == "petit_autoscaler_target_replicas" and "model" in s.labels:
                point.target_replicas.setdefault(s.labels["model"], int(s.value))


def polled(points: list[TimelinePoint]) -> bool:
    """Whether any poll learned anything (else the report shows the empty state)."""
    return any(p.has_data for p in points)


def step_series(points: list[TimelinePoint], key: str) -> dict[str, tuple[list[float], list[float]]]:
    """Per name, (times, values) of a per-model field (`ready`, `shares`, `tier_shares`,
    `target_replicas`); NaN where a poll did not report that name (a gap in the line)."""
    names = sorted({n for p in points for n in getattr(p, key)})
    return {n: ([p.t_s for p in points], [float(getattr(p, key).get(n, math.nan)) for p in points]) for n in names}


def budget_series(points: list[TimelinePoint]) -> tuple[list[float], list[float], list[float]]:
    """(times, budget, unlimited) where budget is NaN unless a number was read and `unlimited`
    is 1.0 where the admin said no budget is set (else NaN)."""
    ts = [p.t_s for p in points]
    budget = [p.budget if p.budget is not None else math.nan for p in points]
    unlimited = [1.0 if p.budget_unlimited else math.nan for p in points]
    return ts, budget, unlimited


def poll_errors(points: list[TimelinePoint]) -> dict[str, int]:
    """How often each source failed (the text before the first colon of each error)."""
    out: dict[str, int] = {}
    for p in points:
        for e in p.errors:
            key = e.split(":")[0]
            out[key] = out.get(key, 0) + 1
    return out
