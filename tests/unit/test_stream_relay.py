"""The HTTP byte path of streamed answers (issue 14): the replica's StreamRelay and the ingress's reader."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from serving.app import _RayUpstream
from serving.gateway.upstream import Unassigned, first_item
from serving.replica.engines.fake import FakeEngine
from serving.replica.relay import StreamRelay
from serving.replica.server import ModelServer


class Lines:
    """An engine stream: `n` SSE lines then [DONE]; records whether it was closed (= generation aborted)."""

    def __init__(self, n: int, delay_s: float = 0.0) -> None:
        self.n, self.delay_s, self.closed, self.sent = n, delay_s, False, 0

    async def gen(self):
        try:
            for i in range(self.n):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                self.sent += 1
                yield f'data: {{"i":{i},"text":"é{i}"}}\n\n'
            yield "data: [DONE]\n\n"
        finally:
            self.closed = True


async def _relay() -> StreamRelay:
    relay = StreamRelay("127.0.0.1", claim_timeout_s=0.5)
    await relay.start()
    return relay


async def test_a_stream_is_served_once_then_wait_returns() -> None:
    relay = await _relay()
    try:
        lines = Lines(5)
        ticket, url = relay.offer(lines.gen())
        waiter = asyncio.create_task(relay.wait(ticket))
        async with aiohttp.ClientSession() as s:
            async with s.get(url) as resp:
                assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
                text = (await resp.read()).decode()
            await asyncio.wait_for(waiter, 2)
            assert text.count("\n\n") == 6 and text.endswith("data: [DONE]\n\n") and "é4" in text
            async with s.get(url) as again:  # a ticket is served once
                assert again.status == 404
        assert lines.closed
    finally:
        await relay.stop()


async def test_an_unclaimed_stream_is_closed_after_the_claim_timeout() -> None:
    relay = await _relay()
    try:
        lines = Lines(5)
        gen = lines.gen()
        await gen.__anext__()  # the engine started generating; nobody comes for the stream
        ticket, _ = relay.offer(gen)
        with pytest.raises(asyncio.TimeoutError):
            await relay.wait(ticket)
        assert ticket not in relay._offers and lines.closed
    finally:
        await relay.stop()


async def test_cancelling_the_call_stops_the_stream_mid_way() -> None:
    relay = await _relay()
    try:
        lines = Lines(1000, delay_s=0.005)
        ticket, url = relay.offer(lines.gen())
        waiter = asyncio.create_task(relay.wait(ticket))
        async with aiohttp.ClientSession() as s:
            async with s.get(url) as resp:
                await resp.content.readany()
                waiter.cancel()  # the ingress cancelled the Ray call (its client went away)
                with pytest.raises(aiohttp.ClientPayloadError):
                    await resp.read()
        await asyncio.sleep(0.05)
        assert lines.closed and lines.sent < 1000
    finally:
        await relay.stop()


class _Content:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    async def readany(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


class _Resp:
    def __init__(self, chunks: list[bytes]) -> None:
        self.content, self.released = _Content(chunks), False

    def release(self) -> None:
        self.released = True


def _reading(chunks: list[bytes]) -> _RayUpstream:
    up = _RayUpstream(gen=None, http=None)
    up._resp = _Resp(chunks)  # type: ignore[assignment]
    return up


async def _all(up: _RayUpstream) -> list[str]:
    return [blob async for blob in up]


async def test_the_reader_hands_on_whole_events_even_when_bytes_split_mid_event_and_mid_character() -> None:
    raw = 'data: {"t":"é"}\n\ndata: {"t":"ü"}\n\ndata: [DONE]\n\n'.encode()
    cut = raw.index("é".encode()) + 1  # inside the two bytes of é
    blobs = await _all(_reading([raw[:cut], raw[cut:40], raw[40:]]))
    assert "".join(blobs) == raw.decode()
    assert all(b.endswith("\n\n") for b in blobs)  # never half an event


async def test_a_stream_cut_mid_event_is_an_upstream_failure() -> None:
    with pytest.raises(ConnectionError):
        await _all(_reading([b'data: {"t":"a"}\n\ndata: {"t"']))


class _FakeRayGen:
    """What a Ray streaming call gives the ingress: the replica's `serve` items; cancel() cancels it."""

    def __init__(self, agen) -> None:
        self.agen, self.cancelled = agen, False

    async def __anext__(self):
        return await self.agen.__anext__()

    def cancel(self) -> None:
        self.cancelled = True
        asyncio.get_running_loop().create_task(self.agen.aclose())


async def test_a_replica_with_a_relay_streams_its_engine_over_http_to_the_reader() -> None:
    engine = FakeEngine("m", 4096, token_delay_s=0.001, ttft_s=0.001, max_concurrent=4)
    server = ModelServer("m", engine, StreamRelay("127.0.0.1"))
    await server.start()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "stream": True}
    async with aiohttp.ClientSession() as http:
        up = _RayUpstream(_FakeRayGen(server.serve("chat", body)), http)
        assert await first_item(up) == {"type": "stream"}  # after the replica's "started"
        text = "".join([blob async for blob in up])
    assert text.endswith("data: [DONE]\n\n") and text.count('"content"') >= 8
    await server.relay.stop()  # type: ignore[union-attr]


def test_hop_times_split_the_ingress_time_to_first_token():
    from serving.gateway.telemetry import RequestRecord, hop_times

    rec = RequestRecord(kind="chat", requested_model="m", start_ns=0, stream=True, ttft_s=0.050)
    assert hop_times(rec) == {}  # refused before routing: no hops
    rec.marks.update(start=10.0, routed=10.002, first_item=10.010, stream_open=10.012)
    hops = hop_times(rec)
    assert hops == pytest.approx({"route": 0.002, "replica_call": 0.008, "stream_open": 0.002, "first_token": 0.038})
    assert sum(hops.values()) == pytest.approx(rec.ttft_s)


async def test_the_reader_stamps_the_replicas_answer_and_the_stream_opening() -> None:
    engine = FakeEngine("m", 4096, token_delay_s=0.001, ttft_s=0.001, max_concurrent=4)
    server = ModelServer("m", engine, StreamRelay("127.0.0.1"))
    await server.start()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "stream": True}
    async with aiohttp.ClientSession() as http:
        up = _RayUpstream(_FakeRayGen(server.serve("chat", body)), http)
        await first_item(up)
        assert 0 < up.marks["first_item"] <= up.marks["stream_open"]
        async for _ in up:
            pass
    await server.relay.stop()  # type: ignore[union-attr]


async def test_a_request_no_replica_takes_fails_before_the_first_byte_instead_of_hanging() -> None:
    class Never:
        cancelled = False

        async def __anext__(self):
            await asyncio.sleep(3600)

        def cancel(self) -> None:
            self.cancelled = True

    gen = Never()
    up = _RayUpstream(gen, None, assign_timeout_s=0.05)
    with pytest.raises(Unassigned):
        await first_item(up)
    assert gen.cancelled
