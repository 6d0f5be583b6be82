"""The replica's end of the byte path for streamed answers (issue 14: one cheap hop per token).

A streamed answer used to cross Ray once per SSE line (the replica's streaming
method yielded each line as a Ray object). Now the Ray call starts the request and
stays open for Serve's accounting (ongoing requests, back-pressure, replica choice,
cancellation), while the lines themselves go over plain HTTP: the replica offers the
engine's line iterator under an unguessable ticket, answers the Ray call with the
ticket's URL, and the ingress fetches `GET /s/<ticket>` from this server once.

- A ticket is served at most once; one not claimed within `claim_timeout_s` is closed
  (the engine's generator is closed, which aborts the generation).
- `wait(ticket)` returns when the stream ended (sent, failed or the reader left);
  cancelling it (the ingress cancelled the Ray call) stops the stream.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

log = logging.getLogger("petit.replica.relay")
PATH = "/s/"


@dataclass
class _Offer:
    lines: AsyncIterator[str]
    done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None  # the HTTP handler streaming it, once claimed
    claimed: asyncio.Event = field(default_factory=asyncio.Event)


class StreamRelay:
    """An aiohttp server on this replica that hands each offered stream to one reader."""

    def __init__(self, host: str, claim_timeout_s: float = 30.0) -> None:
        self.host, self.claim_timeout_s = host, claim_timeout_s
        self.port: int | None = None
        self._offers: dict[str, _Offer] = {}
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(PATH + "{ticket}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("stream relay listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def offer(self, lines: AsyncIterator[str]) -> tuple[str, str]:
        """(ticket, URL) under which `lines` is served once."""
        ticket = secrets.token_urlsafe(18)
        self._offers[ticket] = _Offer(lines)
        return ticket, f"http://{self.host}:{self.port}{PATH}{ticket}"

    async def wait(self, ticket: str) -> None:
        """Until the stream of `ticket` ended; cancelling this stops it."""
        offer = self._offers[ticket]
        try:
            await asyncio.wait_for(offer.claimed.wait(), self.claim_timeout_s)
            await offer.done.wait()
        except BaseException:  # cancelled by the caller, or never claimed
            await self._close(ticket)
            raise
        finally:
            self._offers.pop(ticket, None)

    async def _close(self, ticket: str) -> None:
        offer = self._offers.get(ticket)
        if offer is None:
            return
        if offer.task is not None and not offer.done.is_set():
            offer.task.cancel()  # the handler closes the lines (aborting the generation)
        elif not offer.claimed.is_set():
            offer.claimed.set()
            await _aclose(offer.lines)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        offer = self._offers.get(request.match_info["ticket"])
        if offer is None or offer.claimed.is_set():
            raise web.HTTPNotFound(text="unknown or already claimed stream")
        offer.claimed.set()
        offer.task = asyncio.current_task()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        try:
            await resp.prepare(request)
            async for line in offer.lines:
                await resp.write(line.encode())
            await resp.write_eof()
        finally:
            await _aclose(offer.lines)
            offer.done.set()
        return resp


async def _aclose(lines: AsyncIterator[str]) -> None:
    close = getattr(lines, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # noqa: BLE001 - closing a failed engine stream: nothing left to stop
            log.debug("closing a stream failed", exc_info=True)
