"""Per-request timing like vLLM's benchmark client, and exact percentiles.

Timing contract (vllm/benchmarks/lib/endpoint_request_func.py):

- every timestamp is `time.perf_counter()`, taken when an SSE line is read;
- TTFT is the time from sending the request to the first chunk that carries
  content (a role-only first chunk is not a token);
- one ITL sample per later content chunk (time since the previous one);
- e2e ends at the last content chunk (the trailing usage chunk is no token);
- TPOT = (e2e - TTFT) / (output tokens - 1) with the *server-reported*
  `usage.completion_tokens`, never a count of chunks (a chunk may hold several
  tokens).

Pure module: no Locust, no I/O. The Locust user feeds lines and timestamps in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RequestSample:
    """One request's measurements; the raw material of every verdict and chart."""

    start_s: float  # since the run started
    requested_model: str
    ok: bool = False
    status: int | None = None
    error_type: str | None = None  # e.g. "http_429", "connection", "timeout", "stream_error"
    error: str | None = None
    ttft_s: float | None = None
    e2e_s: float | None = None
    tpot_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None  # the model that answered (x-petit-model, usage chunk or body)
    route_reason: str | None = None
    cost_usd: float | None = None
    cost_basis: str | None = None  # "usage" (Petit, exact) | "estimate" (header) | "price_table"
    correct: bool | None = None  # labelled prompts only
    warmup: bool = False
    tenant: str | None = None  # the scenario's tenant whose key was sent (never the key)
    downgrade: str | None = None  # Petit's x-petit-tenant-downgrade: why the tenant's tier was capped

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Exact percentile (linear interpolation between order statistics, numpy's default).

    `q` in [0, 100]. None for an empty sequence.
    """
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


class StreamTimer:
    """Turns the lines of one SSE response into a :class:`RequestSample`.

    Call :meth:`line` for every line read, with the perf_counter time it was
    read, then :meth:`finish`. `sent_at` is the perf_counter time just before
    the request was sent.
    """

    def __init__(self, sample: RequestSample, sent_at: float):
        self.sample = sample
        self.sent_at = sent_at
        self._last_token_at: float | None = None
        self.text_parts: list[str] = []

    def line(self, raw: str, now: float) -> None:
        """Feed one SSE line. Comments, blank lines and `[DONE]` are ignored."""
        raw = raw.strip()
        if not raw.startswith("data:"):
            return
        payload = raw[5:].strip()
        if payload == "[DONE]" or not payload:
            return
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError:
            self._fail("stream_error", f"malformed SSE data: {payload[:80]}")
            return
        self.chunk(chunk, now)

    def chunk(self, chunk: dict[str, Any], now: float) -> None:
        """Feed one decoded chunk (an OpenAI `chat.completion.chunk` or `text_completion`)."""
        if "error" in chunk:  # mid-stream error (Petit sends 429 overload this way)
            err = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            code = err.get("code") or err.get("type") or "error"
            self._fail(f"stream_{code}", str(err.get("message", ""))[:200])
            return
        choices = chunk.get("choices") or []
        text = _content(choices[0]) if choices else None
        if text:
            if self._last_token_at is None:
                self.sample.ttft_s = now - self.sent_at
            else:
                self.sample.itl_s.append(now - self._last_token_at)
            self._last_token_at = now
            self.text_parts.append(text)
        if chunk.get("model") and not self.sample.model:
            self.sample.model = chunk["model"]
        usage = chunk.get("usage")
        if usage:
            self.usage(usage, chunk.get("petit"))

    def usage(self, usage: dict[str, Any], petit: dict[str, Any] | None) -> None:
        """Record server-reported token counts, and Petit's answering model and exact cost."""
        if usage.get("completion_tokens") is not None:
            self.sample.output_tokens = int(usage["completion_tokens"])
        if usage.get("prompt_tokens") is not None:
            self.sample.prompt_tokens = int(usage["prompt_tokens"])
        if isinstance(petit, dict):
            if petit.get("model"):
                self.sample.model = petit["model"]
            if petit.get("cost_usd") is not None:
                self.sample.cost_usd, self.sample.cost_basis = float(petit["cost_usd"]), "usage"

    def _fail(self, error_type: str, message: str) -> None:
        if self.sample.error_type is None:
            self.sample.error_type, self.sample.error = error_type, message

    def finish(self, now: float) -> RequestSample:
        """Close the sample: e2e, TPOT and success. A stream without content fails."""
        s = self.sample
        if s.error_type is None and self._last_token_at is None:
            self._fail("no_content", "the stream ended without any content chunk")
        s.e2e_s = (self._last_token_at if self._last_token_at is not None else now) - self.sent_at
        if s.ttft_s is not None and s.output_tokens is not None and s.output_tokens > 1:
            s.tpot_s = (s.e2e_s - s.ttft_s) / (s.output_tokens - 1)
        s.ok = s.error_type is None
        return s

    @property
    def text(self) -> str:
        return "".join(self.text_parts)


def _content(choice: dict[str, Any]) -> str | None:
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return delta.get("content") or delta.get("reasoning_content") or None
    return choice.get("text") or None  # /v1/completions streams `text`


def fill_from_body(sample: RequestSample, body: dict[str, Any], sent_at: float, now: float) -> str:
    """Non-streamed response: e2e = TTFT = the whole request; returns the answer text."""
    sample.e2e_s = sample.ttft_s = now - sent_at
    sample.model = sample.model or body.get("model")
    usage = body.get("usage") or {}
    if usage.get("completion_tokens") is not None:
        sample.output_tokens = int(usage["completion_tokens"])
    if usage.get("prompt_tokens") is not None:
        sample.prompt_tokens = int(usage["prompt_tokens"])
    choices = body.get("choices") or [{}]
    msg = choices[0].get("message") or {}
    text = msg.get("content") if isinstance(msg, dict) else None
    sample.ok = True
    return text or choices[0].get("text") or ""


UNFINISHED = "unfinished"  # error_type of a request still in flight when the run (and its grace) ended


def measured(samples: Iterable[RequestSample], include_warmup: bool = False) -> list[RequestSample]:
    """The samples that count for verdicts: finished requests; warm-up excluded unless asked.

    Unfinished requests (no answer by the end of the stop grace) are neither
    successes nor errors; the report's request accounting counts them.
    """
    return [s for s in samples if (include_warmup or not s.warmup) and s.error_type != UNFINISHED]
