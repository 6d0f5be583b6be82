"""The measuring half of `petit profile`: one replica's TTFT and time per output token over a grid
of concurrency x prompt length (the fit lives in autoscaler/simulator/measured.py).

After one uncounted warm-up request, per cell, `rounds` batches of `c` streamed requests of one prompt length are sent at once, each
batch after the previous one has finished (so a batch's requests prefill, then decode, together,
and nothing else runs on the replica). Timing is :class:`loadtests.metrics.StreamTimer`'s (vLLM's
benchmark client): TTFT at the first content chunk, TPOT from the server's completion tokens.
Prompts are :class:`loadtests.prompts.SyntheticPrompts`, each starting with a unique request
number so the prefix cache cannot answer them. `ignore_eos` keeps every answer `max_tokens` long.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from loadtests.metrics import RequestSample, StreamTimer
from loadtests.prompts import SyntheticPrompts


@dataclass(frozen=True)
class SweepSpec:
    """What to measure: the grid, the answer length and how often each cell is repeated."""

    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    prompt_tokens: tuple[int, ...] = (64, 256, 1024)
    output_tokens: int = 32
    rounds: int = 2
    endpoint: str = "chat"  # chat | completions
    request_timeout_s: float = 300.0
    extra_body: dict[str, Any] = field(default_factory=lambda: {"temperature": 0, "ignore_eos": True})


@dataclass
class CellSamples:
    """The requests of one grid cell (every batch of it)."""

    concurrency: int
    prompt_tokens: int  # asked for
    samples: list[RequestSample] = field(default_factory=list)


class ProfilerError(RuntimeError):
    """The target cannot be profiled (unreachable, unknown model, every request failed)."""


def usable_prompt_lengths(lengths: tuple[int, ...], max_model_len: int | None, output_tokens: int) -> tuple[int, ...]:
    """The prompt lengths that leave room for the answer and a chat template (64 tokens) in the
    model's context window; all of them when the window is unknown."""
    if max_model_len is None:
        return lengths
    return tuple(n for n in lengths if n + output_tokens + 64 <= max_model_len)


async def model_info(session: aiohttp.ClientSession, base: str, model: str) -> dict[str, Any]:
    """The model's entry of GET /v1/models. Raises ProfilerError when missing or unreachable."""
    try:
        async with session.get(f"{base}/v1/models") as resp:
            if resp.status != 200:
                raise ProfilerError(f"{base}/v1/models answered HTTP {resp.status}")
            body = await resp.json()
    except aiohttp.ClientError as err:
        raise ProfilerError(f"{base}: cannot reach the target: {err}") from None
    for m in body.get("data") or []:
        if isinstance(m, dict) and m.get("id") == model:
            return m
    ids = ", ".join(str(m.get("id")) for m in body.get("data") or [] if isinstance(m, dict))
    raise ProfilerError(f"{base}: no model {model!r} (it serves: {ids or 'none'})")


async def _one(
    session: aiohttp.ClientSession, base: str, model: str, spec: SweepSpec, text: str, headers: dict[str, str]
) -> RequestSample:
    body: dict[str, Any] = {"model": model, "max_tokens": spec.output_tokens, "stream": True}
    body["stream_options"] = {"include_usage": True}
    if spec.endpoint == "chat":
        body["messages"] = [{"role": "user", "content": text}]
        path = "/v1/chat/completions"
    else:
        body["prompt"] = text
        path = "/v1/completions"
    body.update(spec.extra_body)
    sample = RequestSample(start_s=time.perf_counter(), requested_model=model)
    timer = StreamTimer(sample, time.perf_counter())
    try:
        async with session.post(f"{base}{path}", data=json.dumps(body), headers=headers) as resp:
            sample.status = resp.status
            if resp.status != 200:
                sample.error_type, sample.error = f"http_{resp.status}", (await resp.text())[:200]
                return timer.finish(time.perf_counter())
            async for raw in resp.content:
                timer.line(raw.decode("utf-8", "replace"), time.perf_counter())
    except (aiohttp.ClientError, asyncio.TimeoutError) as err:
        sample.error_type, sample.error = "connection", str(err)[:200] or type(err).__name__
    return timer.finish(time.perf_counter())


async def sweep(
    target: str,
    model: str,
    spec: SweepSpec,
    prompts: SyntheticPrompts,
    progress: Callable[[str], None] = lambda _: None,
    api_key: str | None = None,
) -> tuple[dict[str, Any], list[CellSamples]]:
    """Measure every cell of the grid; returns the model's /v1/models entry and the cells.
    Raises ProfilerError when the target or model is unusable or every request failed."""
    base = target.rstrip("/").removesuffix("/v1")
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    timeout = aiohttp.ClientTimeout(total=spec.request_timeout_s)
    connector = aiohttp.TCPConnector(limit=max(spec.concurrency) + 1)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        info = await model_info(session, base, model)
        max_len = info.get("max_model_len")
        lengths = usable_prompt_lengths(
            spec.prompt_tokens, max_len if isinstance(max_len, int) else None, spec.output_tokens
        )
        if not lengths:
            raise ProfilerError(f"{model}: no prompt length of {spec.prompt_tokens} fits max_model_len {max_len}")
        cells = [CellSamples(c, n) for c in spec.concurrency for n in lengths]
        salt = int(time.time())  # unique prompts across runs too (prefix cache)
        # One request first, not counted: the connection and the server's first-request costs.
        await _one(session, base, model, spec, prompts.make(min(lengths), salt).text, headers)
        for i, cell in enumerate(cells, start=1):
            t0 = time.perf_counter()
            for _ in range(spec.rounds):
                texts = []
                for _ in range(cell.concurrency):
                    salt += 1
                    texts.append(prompts.make(cell.prompt_tokens, salt).text)
                batch = [_one(session, base, model, spec, t, headers) for t in texts]
                cell.samples.extend(await asyncio.gather(*batch))
            ok = [s for s in cell.samples if s.ok]
            ttft = sum(s.ttft_s or 0.0 for s in ok) / len(ok) * 1000 if ok else float("nan")
            tp = [s.tpot_s for s in ok if s.tpot_s is not None]
            tpot = sum(tp) / len(tp) * 1000 if tp else float("nan")
            progress(
                f"[{i}/{len(cells)}] c={cell.concurrency:<3} prompt={cell.prompt_tokens:<5} "
                f"ok {len(ok)}/{len(cell.samples)}  TTFT {ttft:7.1f} ms  TPOT {tpot:6.1f} ms  "
                f"({time.perf_counter() - t0:.1f} s)"
            )
            if i == 1 and not ok:
                err = cell.samples[0].error_type if cell.samples else "none"
                raise ProfilerError(f"{model}: every request of the first cell failed ({err}: {cell.samples[0].error})")
    return info, cells
