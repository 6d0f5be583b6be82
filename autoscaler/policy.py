"""Petit's GPU-scarcity policy: ``decide(snapshot, fleet, state, now) -> (plan, state)``.

Pure: no clock reads, no I/O; time comes in as `now`. One call decides, for the
whole fleet at once, replicas per model within the GPUs that exist, and the
routing of movable (`auto` and downgrade-allowed) traffic.

Order of reasoning (each step leaves a reason on the plan):
1. Stale or disabled -> hold everything (no scaling on stale data).
2. Demand = the window's token rates + queued work drained in `backlog_drain_s`.
3. Allocation: the cheapest plan within `max_quality_drop` points of the best
   quality that fits the budget (GPUs short -> that best drops, traffic shifts
   to cheaper tiers); if nothing carries all demand, the most quality-weighted
   goodput per GPU; below the minimum fleet -> the minimum fleet.
4. Bridge: replicas not ready yet carry nothing, so cheaper tiers get extra
   replicas (budget permitting) to carry traffic meanwhile.
5. Anti-oscillation per model: scale-up cooldown; scale-down needs hysteresis,
   HPA-style stabilization, a cooldown and at most `max_scale_down_step`.
6. Fit the budget: drop unready replicas first, then trim scale-ups, then the rest.
7. Routing from *ready* capacity (traffic moves this period, replicas take minutes);
   the downgrade it implies is split by the tenants' priority (low first, high last).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace

from autoscaler.allocation import (
    Allocation,
    Demand,
    ModelView,
    best_allocation,
    build_views,
    expected_quality,
    gpus_of,
    measure_demand,
    overload_allocation,
    split_traffic,
)
from autoscaler.helpers import cooled_down, deadband, prune, replicas_for, stabilized, step_limited
from autoscaler.priority import priority_mix, split_downgrade
from autoscaler.snapshot import ModelState, ModelTarget, Plan, PolicyState, RoutingPlan, ScalingSnapshot
from serving.fleet.autoscaling import AutoscalerConfig
from serving.fleet.schema import FleetConfig


def initial_state(fleet: FleetConfig) -> PolicyState:
    """State before the first decision: every model at its configured start count."""
    return PolicyState(models={m.id: ModelState(target=m.replicas.start) for m in fleet.models})


def decide(snapshot: ScalingSnapshot, fleet: FleetConfig, state: PolicyState, now: float) -> tuple[Plan, PolicyState]:
    """One control decision. Never plans more GPUs than `snapshot.supply.total`,
    except that a budget below the fleet's minimum keeps the minimum fleet (and says
    so). Never changes replicas on stale data. Never raises on odd signals."""
    cfg = fleet.autoscaler
    views = build_views(fleet)
    state = _with_all_models(state, views)
    budget = max(0.0, snapshot.supply.total - cfg.gpu_source.reserve_gpus)
    age = now - snapshot.taken_at
    if snapshot.stale or age > cfg.max_signal_age_s or not cfg.enabled:
        why = (
            "stale_signals: " + (snapshot.stale_reason or f"signals {age:.0f}s old")
            if cfg.enabled
            else "disabled: observing only"
        )
        return _hold(views, state, cfg, budget, now, why), replace(state, last_at=now)
    scales = _learn_capacity(views, snapshot, state, fleet.slo.ttft_p95_ms)
    demand = measure_demand(views, snapshot.models, cfg.scaling.backlog_drain_s)
    # Replicas starting now (within the current target) are capacity on its way: kept unless the budget forces them out.
    starting = {v.id: min(state.models[v.id].target, snapshot.models.get(v.id, _NOSIG).pending_replicas) for v in views}
    raw, why = _allocate(views, demand, budget, cfg, scales, starting)
    raw_targets, bridge_why = _bridge(views, demand, raw.replicas, snapshot, budget, cfg, scales)
    low, _ = best_allocation(
        views, demand, budget, cfg, scales, cfg.scaling.target_utilization - cfg.scaling.hysteresis
    )
    new_models, reasons = _anti_oscillation(views, state, raw_targets, low, now, cfg)
    final = {m: s.target for m, s in new_models.items()}
    _fit_budget(views, final, raw.replicas, snapshot, budget, reasons)
    for m, s in new_models.items():
        if final[m] != s.target:
            new_models[m] = _moved(s, final[m], now)
    short = not why.startswith("normal")
    free = raw  # the plan with unlimited GPUs: the raw plan itself when the budget does not bind
    if short:
        free = best_allocation(views, demand, math.inf, cfg, scales, cfg.scaling.target_utilization)[0] or raw
    routing = _routing(views, demand, snapshot, final, state, cfg, scales, (raw, free), short)
    targets = {
        v.id: ModelTarget(
            v.id,
            v.tier,
            final[v.id],
            state.models[v.id].target,
            v.gpus * final[v.id],
            reasons.get(v.id) or _default_reason(v, final[v.id], state),
        )
        for v in views
    }
    reason = why + (f"; {bridge_why}" if bridge_why else "")
    plan = Plan(now, targets, routing, gpus_of(views, final), budget, reason)
    new_models = {m: replace(s, capacity_scale=scales[m]) for m, s in new_models.items()}
    return plan, PolicyState(new_models, dict(routing.shares), now)


def _with_all_models(state: PolicyState, views: list[ModelView]) -> PolicyState:
    models = dict(state.models)
    for v in views:
        models.setdefault(v.id, ModelState(target=max(v.min, 1)))
    return replace(state, models=models)


def _hold(
    views: list[ModelView], state: PolicyState, cfg: AutoscalerConfig, budget: float, now: float, why: str
) -> Plan:
    reps = {v.id: state.models[v.id].target for v in views}
    targets = {
        v.id: ModelTarget(v.id, v.tier, reps[v.id], reps[v.id], v.gpus * reps[v.id], "hold: " + why) for v in views
    }
    shares = dict(state.shares)
    routing = RoutingPlan(
        shares,
        _tiers(views, shares),
        _strong(views, shares),
        0.0,
        expected_quality(views, shares, cfg.router_quality_curve) if shares else 0.0,
        "hold: " + why,
    )
    return Plan(now, targets, routing, gpus_of(views, reps), budget, why, applied=False)


def _learn_capacity(
    views: list[ModelView], snapshot: ScalingSnapshot, state: PolicyState, slo_ms: float
) -> dict[str, float]:
    """Shrink a model's capacity estimate while its TTFT p95 breaks the SLO; recover slowly."""
    out: dict[str, float] = {}
    for v in views:
        scale = state.models[v.id].capacity_scale
        sig = snapshot.models.get(v.id)
        if sig and sig.ttft_p95_ms is not None and sig.ready_replicas > 0:
            if sig.ttft_p95_ms > slo_ms:
                scale = max(0.5, scale * 0.9)
            elif sig.ttft_p95_ms < 0.5 * slo_ms:
                scale = min(1.0, scale * 1.02)
        out[v.id] = scale
    return out


def _allocate(
    views: list[ModelView],
    demand: Demand,
    budget: float,
    cfg: AutoscalerConfig,
    scales: Mapping[str, float],
    starting: Mapping[str, int],
) -> tuple[Allocation, str]:
    minimum = sum(v.gpus * v.min for v in views)
    if minimum > budget + 1e-9:
        reps = {v.id: v.min for v in views}
        c = Allocation(reps, {views[-1].id: 1.0}, minimum, 0.0, 0.0, False)
        return (
            c,
            f"budget_below_minimum: {budget:g} {_unit(cfg)} < {minimum:g} for the minimum fleet; keeping the minimum",
        )
    chosen, ideal = best_allocation(views, demand, budget, cfg, scales, cfg.scaling.target_utilization)
    if chosen is None:
        c = overload_allocation(views, demand, budget, scales, cfg.router_quality_curve, starting)
        return c, f"overload: {budget:g} {_unit(cfg)} cannot carry the demand; most quality-weighted goodput per unit"
    if ideal is not None and ideal.quality > chosen.quality + cfg.max_quality_drop + 1e-9:
        return chosen, (
            f"gpu_scarcity: best quality that fits {budget:g} {_unit(cfg)} is {chosen.quality:.1f} "
            f"(unconstrained {ideal.quality:.1f} needs {ideal.gpus:g})"
        )
    return chosen, f"normal: cheapest plan within {cfg.max_quality_drop:g} points of best quality"


def _unit(cfg: AutoscalerConfig) -> str:
    return "CPUs" if cfg.budget_resource == "cpus" else "GPUs"


def _bridge(
    views: list[ModelView],
    demand: Demand,
    reps: Mapping[str, int],
    snapshot: ScalingSnapshot,
    budget: float,
    cfg: AutoscalerConfig,
    scales: Mapping[str, float],
) -> tuple[dict[str, int], str]:
    """Add replicas of cheaper models (budget permitting) while others are still starting."""
    out = dict(reps)
    starting = [v for v in views if out[v.id] > snapshot.models.get(v.id, _NOSIG).ready_replicas]
    if not starting:
        return out, ""
    ready_cap = {v.id: snapshot.models.get(v.id, _NOSIG).ready_replicas for v in starting}
    missing = sum(max(0, out[v.id] - ready_cap[v.id]) * v.capacity * scales[v.id] for v in starting)
    used = gpus_of(views, out)
    added: list[str] = []
    for v in sorted(views, key=lambda v: v.gpus / max(v.capacity, 1e-9)):
        if v in starting or missing <= 0:
            continue
        extra = min(
            replicas_for(missing, v.capacity * scales[v.id], cfg.scaling.target_utilization),
            v.max - out[v.id],
            int((budget - used) // v.gpus) if v.gpus > 0 else v.max,
        )
        if extra > 0:
            out[v.id] += extra
            used += extra * v.gpus
            missing -= extra * v.capacity * scales[v.id] * cfg.scaling.target_utilization
            added.append(f"+{extra} {v.id}")
    names = ",".join(v.id for v in starting)
    return out, (f"bridge: {' '.join(added)} while {names} start" if added else "")


class _NoSignals:
    ready_replicas = 0
    pending_replicas = 0


_NOSIG = _NoSignals()


def _anti_oscillation(
    views: list[ModelView],
    state: PolicyState,
    raw: Mapping[str, int],
    low: Allocation | None,
    now: float,
    cfg: AutoscalerConfig,
) -> tuple[dict[str, ModelState], dict[str, str]]:
    """Apply cooldowns, hysteresis, stabilization and step limits per model."""
    sc = cfg.scaling
    models: dict[str, ModelState] = {}
    reasons: dict[str, str] = {}
    for v in views:
        s = state.models[v.id]
        want = raw[v.id]
        history = prune(s.recommendations + ((now, want),), now, sc.scale_down_stabilization_s)
        s = replace(s, recommendations=history)
        if want > s.target:
            if cooled_down(now, s.last_up, sc.scale_up_cooldown_s):
                models[v.id] = _moved(s, want, now)
                reasons[v.id] = f"scale_up: {s.target}->{want}"
            else:
                models[v.id], reasons[v.id] = s, f"hold: scale-up cooldown ({sc.scale_up_cooldown_s:g}s)"
            continue
        floor = low.replicas[v.id] if low is not None else want
        wanted = stabilized(history, now, sc.scale_down_stabilization_s, s.target)
        wanted = min(s.target, max(wanted, min(floor, s.target)))
        if wanted < s.target and cooled_down(now, s.last_down, sc.scale_down_cooldown_s):
            n = step_limited(s.target, wanted, sc.max_scale_down_step)
            models[v.id], reasons[v.id] = _moved(s, n, now), f"scale_down: {s.target}->{n} (stabilized)"
        else:
            models[v.id] = s
            if want < s.target:
                reasons[v.id] = "hold: scale-down stabilization/hysteresis/cooldown"
    return models, reasons


def _moved(s: ModelState, n: int, now: float) -> ModelState:
    if n > s.target:
        return replace(s, target=n, last_up=now)
    if n < s.target:
        return replace(s, target=n, last_down=now)
    return s


def _fit_budget(
    views: list[ModelView],
    final: dict[str, int],
    raw: dict[str, int],
    snapshot: ScalingSnapshot,
    budget: float,
    reasons: dict[str, str],
) -> None:
    """Make `final` fit `budget`, in place. Replicas that are ready or starting are kept
    unless the budget forces them out (then starting ones above the raw plan go first, then
    starting ones, then ready ones above the raw plan, then any above the minimum); new
    replicas are then added back, those of the raw plan first, while they fit, so a big
    replica that does not fit leaves its units to smaller ones."""
    sig = {v.id: snapshot.models.get(v.id, _NOSIG) for v in views}
    ready = {v.id: min(final[v.id], sig[v.id].ready_replicas) for v in views}
    keep = {
        v.id: min(final[v.id], max(min(v.min, final[v.id]), ready[v.id] + sig[v.id].pending_replicas)) for v in views
    }
    wanted = dict(final)

    def value(v: ModelView) -> float:
        return v.quality * v.capacity / max(v.gpus, 1e-3)

    phases: list[Callable[[ModelView], bool]] = [
        lambda v: keep[v.id] > max(ready[v.id], raw[v.id], v.min),
        lambda v: keep[v.id] > max(ready[v.id], v.min),
        lambda v: keep[v.id] > max(raw[v.id], v.min),
        lambda v: keep[v.id] > v.min,
    ]
    for pick in phases:
        while gpus_of(views, keep) > budget + 1e-9:
            victims = [v for v in views if pick(v)]
            if not victims:
                break
            keep[min(victims, key=lambda v: (value(v), -v.gpus)).id] -= 1
    used = gpus_of(views, keep)
    for cap in (raw, wanted):
        for v in sorted(views, key=lambda v: -value(v)):
            while keep[v.id] < min(cap[v.id], wanted[v.id]) and used + v.gpus <= budget + 1e-9:
                keep[v.id] += 1
                used += v.gpus
    for v in views:
        if keep[v.id] < final[v.id]:
            reasons[v.id] = f"gpu_limit: trimmed to {keep[v.id]} to fit a budget of {budget:g}"
        final[v.id] = keep[v.id]


def _routing(
    views: list[ModelView],
    demand: Demand,
    snapshot: ScalingSnapshot,
    final: Mapping[str, int],
    state: PolicyState,
    cfg: AutoscalerConfig,
    scales: Mapping[str, float],
    plans: tuple[Allocation, Allocation],
    short: bool,
) -> RoutingPlan:
    """Routing over replicas that are ready now and still planned. `plans`: the raw plan (within the
    budget) and the plan with unlimited GPUs, the reference of the downgrade share."""
    ready = {v.id: min(snapshot.models.get(v.id, _NOSIG).ready_replicas, final[v.id]) for v in views}
    shares, why = split_traffic(views, demand, ready, cfg.scaling.routing_utilization, scales, cfg.router_quality_curve)
    if (
        shares
        and deadband(state.shares, shares, cfg.scaling.routing_deadband)
        and all(ready.get(k, 0) > 0 for k, s in state.shares.items() if s > 0)
        and why == "fits_ready_capacity"
    ):
        shares, why = dict(state.shares), "hold: within routing deadband"
    strong = _strong(views, shares)
    planned, free = (_strong(views, p.shares) if p.shares else strong for p in plans)
    cut = max(0.0, planned - strong) / planned if planned > 0 else 0.0  # ready replicas short of the plan
    down = max(0.0, free - strong) / free if free > 0 else 0.0  # below what unlimited GPUs would give
    q = expected_quality(views, shares, cfg.router_quality_curve) if shares else 0.0
    # Constrained: traffic must move off where the router would send it on its own: the budget is
    # short, the strong tier gets less than the raw plan, or a ready model is being removed.
    closing = any(final[v.id] == 0 and snapshot.models.get(v.id, _NOSIG).ready_replicas > 0 for v in views)
    by_priority = split_downgrade(down, priority_mix(snapshot.models))
    constrained = short or cut > 1e-9 or closing
    return RoutingPlan(shares, _tiers(views, shares), strong, down, q, why, constrained, by_priority)


def _tiers(views: list[ModelView], shares: Mapping[str, float]) -> tuple[str, ...]:
    return tuple(sorted({v.tier for v in views if shares.get(v.id, 0.0) > 0}))


def _strong(views: list[ModelView], shares: Mapping[str, float]) -> float:
    top = max(v.quality for v in views)
    return sum(shares.get(v.id, 0.0) for v in views if v.quality >= top)


def _default_reason(v: ModelView, n: int, state: PolicyState) -> str:
    return f"hold: {n} replicas meet the plan"
