"""Concurrency on the real engines: continuous batching, overload, client disconnect."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from ray import serve

from serving.app import APP_NAME, deployment_name
from tests.integration.conftest import LARGE, LARGE_MAX_ONGOING, SMALL

pytestmark = pytest.mark.stack


async def _stream_times(client, i: int) -> tuple[float, float, int]:
    start = time.perf_counter()
    first, n = None, 0
    stream = await client.chat.completions.create(
        model=SMALL,
        messages=[{"role": "user", "content": f"Count from {i} upwards."}],
        max_tokens=32,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and first is None:
            first = time.perf_counter()
        if chunk.usage:
            n = chunk.usage.completion_tokens
    assert first is not None
    return first - start, time.perf_counter() - start, n


def test_16_concurrent_streams_overlap(base_url):
    from openai import AsyncOpenAI

    async def run():
        async with AsyncOpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=300) as c:
            return await asyncio.gather(*(_stream_times(c, i) for i in range(16)))

    results = asyncio.run(run())
    assert all(n == 32 for _, _, n in results)
    latest_first_token = max(ttft for ttft, _, _ in results)
    earliest_end = min(end for _, end, _ in results)
    # Every stream had its first token before any stream finished: all 16 were in the
    # engine's batch at once (sequential serving would finish stream 1 first).
    assert latest_first_token < earliest_end, results


def test_overload_answers_429_with_retry_after(base_url):
    # Long answers: no request may finish (and free its slot) while the 14 are being admitted.
    body = {
        "model": LARGE,
        "messages": [{"role": "user", "content": "Write a long story."}],
        "max_tokens": 256,
        "ignore_eos": True,
    }

    async def run():
        async with httpx.AsyncClient(base_url=base_url, timeout=300) as h:
            return await asyncio.gather(*(h.post("/v1/chat/completions", json=body) for _ in range(14)))

    responses = asyncio.run(run())
    codes = sorted(r.status_code for r in responses)
    assert set(codes) <= {200, 429}, codes
    rejected = [r for r in responses if r.status_code == 429]
    print(f"[overload] {codes.count(200)} accepted, {len(rejected)} rejected")
    # Serve's admission is approximate (router.py says so); under the autoscaling-policy hook
    # it let 6-11 of the 14 in with 4 ongoing + 2 queued slots (measured), so the bound is loose:
    # what must hold is that the excess bounces with 429 + Retry-After, never with an error.
    assert len(rejected) >= 2, codes
    assert codes.count(200) >= LARGE_MAX_ONGOING
    assert rejected[0].headers["retry-after"].isdigit()
    assert rejected[0].json()["error"]["type"] == "rate_limit_error"
    waits = sorted(r.elapsed.total_seconds() * 1000 for r in rejected)
    print(f"[overload] 429 answered in {waits[len(waits) // 2]:.0f} ms p50, {waits[-1]:.0f} ms max")
    assert waits[-1] < 2000, waits  # refused at once, not after a queue (2-core CI: a loose bound)


def _inflight() -> int:
    handle = serve.get_deployment_handle(deployment_name(SMALL), app_name=APP_NAME)
    return handle.inflight.remote().result(timeout_s=30)


def test_client_disconnect_aborts_generation(base_url):
    body = {
        "model": SMALL,
        "messages": [{"role": "user", "content": "Tell me everything about oceans."}],
        "max_tokens": 1500,
        "stream": True,
        "ignore_eos": True,
    }
    with httpx.Client(base_url=base_url, timeout=60) as h:
        with h.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            lines = r.iter_lines()  # keep the iterator alive: dropping it closes the response
            for _ in range(10):
                next(lines)
            assert _inflight() == 1
        # leaving the block closes the connection mid-stream
    deadline = time.monotonic() + 20
    while _inflight() != 0:
        assert time.monotonic() < deadline, "the engine kept generating for a client that left"
        time.sleep(0.5)
