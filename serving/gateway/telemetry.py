"""Per-request observability: one OpenTelemetry span and Prometheus metrics per request.

Tracing is off unless `telemetry.otlp_endpoint` is set (or a span exporter is
injected, as tests do). Prompt text is recorded only when
`telemetry.record_prompts` is true, and every span attribute is cut to
`MAX_ATTRIBUTE_CHARS` (OpenTelemetry's span limits), so neither a long prompt
nor an error text ships unbounded to the collector. Each `RequestTelemetry` owns its tracer
provider and metrics registry: no process-wide globals are touched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from serving.control.load_report import LoadWindow
from serving.fleet.schema import AUTO_MODEL, TelemetryConfig

# Longest span attribute value (characters); longer strings are cut by the SDK.
MAX_ATTRIBUTE_CHARS = 2048
_SPAN_LIMITS = SpanLimits(max_attribute_length=MAX_ATTRIBUTE_CHARS, max_attributes=64, max_events=16, max_links=0)
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)


@dataclass
class RequestRecord:
    """What one request did; filled in as it runs, then recorded once."""

    kind: str
    requested_model: str
    start_ns: int
    stream: bool
    model: str | None = None
    route_reason: str | None = None
    status: int = 200
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None
    duration_s: float = 0.0
    cost_usd: float = 0.0
    extra_cost_usd: float = 0.0  # paid for calls that did not answer (a cascade's first model)
    error: str | None = None
    prompt_text: str | None = None
    tenant: str | None = None  # the tenant's name (never its key)
    priority: str | None = None  # the tenant's priority class (the autoscaler's scarcity order)
    admitted: list[str] = field(default_factory=list)  # models holding an ingress slot for it (admission.py)
    marks: dict[str, float] = field(default_factory=dict)  # perf_counter stamps along the request (hop_times)
    tenant_downgrade: str | None = None  # why its tier was capped (x-petit-tenant-downgrade)
    tenant_rejection: str | None = None  # the limit that refused it


_HOP_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def hop_times(rec: RequestRecord) -> dict[str, float]:
    """Seconds spent in each hop of one request, from the ingress's stamps (`rec.marks`):

    - ``route``: from the request reaching the ingress handler to the routing decision (parse,
      validate, tenant admission, routing);
    - ``replica_call``: decision to the model replica's first answer over Ray (Serve's replica
      choice, the call, the engine admitting the request);
    - ``stream_open``: that answer to the replica's HTTP stream answering (streams over HTTP);
    - ``first_token``: to the first content token reaching the ingress (the engine's prefill).
    The client's TTFT minus their sum is what lies outside the ingress (client, HAProxy or proxy).
    """
    m = dict(rec.marks)
    if "start" not in m or "routed" not in m:
        return {}
    out = {"route": m["routed"] - m["start"]}
    if "first_item" in m:
        out["replica_call"] = m["first_item"] - m["routed"]
        if "stream_open" in m:
            out["stream_open"] = m["stream_open"] - m["first_item"]
        if rec.ttft_s is not None:
            out["first_token"] = m["start"] + rec.ttft_s - m.get("stream_open", m["first_item"])
    return {k: max(0.0, v) for k, v in out.items()}


class RequestTelemetry:
    def __init__(self, config: TelemetryConfig, exporter: SpanExporter | None = None) -> None:
        self.config = config
        self._provider: TracerProvider | None = None
        if exporter is not None or config.otlp_endpoint:
            self._provider = TracerProvider(
                resource=Resource.create({"service.name": config.service_name}), span_limits=_SPAN_LIMITS
            )
            if exporter is None:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                endpoint = config.otlp_endpoint.rstrip("/")
                exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
                self._provider.add_span_processor(BatchSpanProcessor(exporter))
            else:
                self._provider.add_span_processor(SimpleSpanProcessor(exporter))
        self._tracer = self._provider.get_tracer("petit.serving") if self._provider else None
        self.load = LoadWindow()  # what this replica reports to the autoscaler
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "petit_requests",
            "Requests by model, route reason and status",
            ["model", "route_reason", "status"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "petit_tokens", "Tokens by model and kind (prompt/completion)", ["model", "kind"], registry=self.registry
        )
        self.cost = Counter("petit_cost_usd", "Estimated cost in USD by model", ["model"], registry=self.registry)
        self.duration = Histogram(
            "petit_request_duration_seconds",
            "End-to-end request time",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tenant_requests = Counter(
            "petit_tenant_requests", "Requests by tenant and status", ["tenant", "status"], registry=self.registry
        )
        self.tenant_tokens = Counter(
            "petit_tenant_tokens",
            "Tokens by tenant and kind (prompt/completion)",
            ["tenant", "kind"],
            registry=self.registry,
        )
        self.tenant_cost = Counter("petit_tenant_cost_usd", "Charged USD by tenant", ["tenant"], registry=self.registry)
        self.tenant_downgrades = Counter(
            "petit_tenant_downgrades",
            "Requests downgraded by tenant and reason",
            ["tenant", "reason"],
            registry=self.registry,
        )
        self.tenant_rejections = Counter(
            "petit_tenant_rejections",
            "Requests refused by tenant and limit",
            ["tenant", "reason"],
            registry=self.registry,
        )
        self.ttft = Histogram(
            "petit_ttft_seconds",
            "Time to first content token (streams)",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.hops = Histogram(
            "petit_hop_seconds",
            "Seconds per hop of a request inside the ingress (see hop_times)",
            ["hop"],
            buckets=_HOP_BUCKETS,
            registry=self.registry,
        )

    @property
    def tracing(self) -> bool:
        return self._tracer is not None

    def record(self, rec: RequestRecord) -> None:
        model = rec.model or "none"
        reason = (rec.route_reason or "none").split(";")[0]
        self.requests.labels(model, reason, str(rec.status)).inc()
        if rec.model:
            self.tokens.labels(model, "prompt").inc(rec.prompt_tokens)
            self.tokens.labels(model, "completion").inc(rec.completion_tokens)
            self.cost.labels(model).inc(rec.cost_usd)
            self.duration.labels(model).observe(rec.duration_s)
            if rec.ttft_s is not None:
                self.ttft.labels(model).observe(rec.ttft_s)
            for hop, seconds in hop_times(rec).items():
                self.hops.labels(hop).observe(seconds)
            if rec.status == 200:
                self.load.record(
                    model,
                    rec.requested_model == AUTO_MODEL,
                    rec.prompt_tokens,
                    rec.completion_tokens,
                    rec.ttft_s,
                    rec.duration_s,
                    time.monotonic(),
                    rec.priority,
                )
        if rec.tenant is not None:
            self._record_tenant(rec, rec.tenant)
        if self._tracer is not None:
            self._span(rec)

    def _record_tenant(self, rec: RequestRecord, tenant: str) -> None:
        self.tenant_requests.labels(tenant, str(rec.status)).inc()
        self.tenant_tokens.labels(tenant, "prompt").inc(rec.prompt_tokens)
        self.tenant_tokens.labels(tenant, "completion").inc(rec.completion_tokens)
        self.tenant_cost.labels(tenant).inc(rec.cost_usd)
        if rec.tenant_downgrade is not None:
            self.tenant_downgrades.labels(tenant, rec.tenant_downgrade.split(":")[0]).inc()
        if rec.tenant_rejection is not None:
            self.tenant_rejections.labels(tenant, rec.tenant_rejection).inc()

    def _span(self, rec: RequestRecord) -> None:
        attrs = {
            "petit.kind": rec.kind,
            "petit.requested_model": rec.requested_model,
            "petit.stream": rec.stream,
            "http.response.status_code": rec.status,
            "gen_ai.usage.input_tokens": rec.prompt_tokens,
            "gen_ai.usage.output_tokens": rec.completion_tokens,
            "petit.cost_usd": rec.cost_usd,
        }
        optional = {
            "petit.route.model": rec.model,
            "petit.route.reason": rec.route_reason,
            "gen_ai.response.model": rec.model,
            "petit.ttft_ms": None if rec.ttft_s is None else rec.ttft_s * 1e3,
            "error.type": rec.error,
            "petit.tenant": rec.tenant,
            "petit.tenant.downgrade": rec.tenant_downgrade,
        }
        attrs.update({k: v for k, v in optional.items() if v is not None})
        if self.config.record_prompts and rec.prompt_text is not None:
            attrs["petit.prompt"] = rec.prompt_text
        span = self._tracer.start_span(f"petit {rec.kind}", start_time=rec.start_ns, attributes=attrs)
        span.end(end_time=rec.start_ns + int(rec.duration_s * 1e9))

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()
