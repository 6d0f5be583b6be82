"""The read-only endpoints about the fleet: `/v1/models` and `/health` (mounted from `routes`)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from serving.fleet.schema import AUTO_MODEL
from serving.gateway.errors import HTTPError, without_paths
from serving.gateway.gateway import Gateway


async def models(gateway: Gateway, request: Request) -> Response:
    """Every fleet model (tier, price, context window, ready replicas) and the `auto` alias."""
    try:
        gateway.authorize(request)
    except HTTPError as err:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)
    snap = gateway.snapshot()
    engines = {m.id: m.engine.kind for m in gateway.fleet.models}  # "fake": a benchmark engine, not a model
    data = [
        {
            "id": m.id,
            "object": "model",
            "created": gateway.created,
            "owned_by": "petit",
            "max_model_len": m.max_model_len,
            "petit": {
                "tier": m.tier,
                "price_per_replica_hour": m.price_per_replica_hour,
                "capacity_tokens_per_s": m.capacity_tokens_per_s,
                "ready_replicas": m.ready_replicas,
                "engine": engines.get(m.id, "vllm"),
            },
        }
        for m in snap.models
    ]
    data.append(
        {
            "id": AUTO_MODEL,
            "object": "model",
            "created": gateway.created,
            "owned_by": "petit",
            "petit": {"alias": True, "policy": gateway.policy.name, "tiers": sorted({m.tier for m in snap.models})},
        }
    )
    return JSONResponse({"object": "list", "data": data})


async def health(gateway: Gateway, request: Request) -> Response:
    """200 `ready` while every model that must keep a replica has one that answers; else 503.

    A model whose requests just failed counts as down for a few seconds (see
    `serving.gateway.failover.Breaker`), before Serve's own health check notices.
    """
    ready = gateway.ready_view()
    models = {m: {"ready_replicas": ready.get(m, 0)} for m in gateway.fleet.model_ids}
    for m in gateway.breaker.down():
        models[m]["failing"] = True
    # Ready: every model that must keep a replica has one (a model with replicas.min 0 may be
    # stopped by the autoscaler on purpose), and at least one model can answer.
    ok = all(models[m.id]["ready_replicas"] > 0 for m in gateway.fleet.models if m.replicas.min > 0) and any(
        v["ready_replicas"] > 0 for v in models.values()
    )
    policy = gateway.policy
    routing: dict[str, object] = {"policy": policy.name, "degraded": policy.degraded}
    if policy.degraded:
        routing["degraded_reason"] = without_paths(policy.degraded_reason or "")  # the log has them
    out = {
        "status": "ready" if ok else "not_ready",
        "models": models,
        "routing_policy": policy.name,
        "routing": routing,
    }
    if gateway.fleet.tenants:  # the store and whether it answers (its errors are in the log too)
        out["tenants"] = {k: without_paths(v) if isinstance(v, str) else v for k, v in gateway.tenancy.health().items()}
    return JSONResponse(out, status_code=200 if ok else 503)
