"""A fake engine with the `Engine` interface, for unit tests of the serving plane.

It answers deterministically ("word0 word1 ..."), counts a prompt token per
whitespace-separated word (plus a fixed chat overhead; no tokenizer), honours
`max_tokens`, streams vLLM-shaped SSE chunks, and tracks in-flight requests so
cancellation can be observed.

Timing (the fleet's `engine.kind: fake` sets it for benchmarks): a stream waits
for one of `max_concurrent` slots (None: no limit; `load().waiting` counts the
waiting ones); once admitted at time `a`, token i (from 0) is sent at
`a + ttft_s + i * token_delay_s`. Without `ttft_s` every token waits
`token_delay_s`, the first one too. Deadlines are absolute, so a busy event
loop delays a token but does not stretch the pace of the ones after it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from serving.replica.engines.base import EngineError, EngineLoad, Kind

CHAT_OVERHEAD_TOKENS = 5


class FakeEngine:
    def __init__(
        self,
        model_id: str,
        max_model_len: int = 2048,
        token_delay_s: float = 0.0,
        default_tokens: int = 8,
        token_logprob: float = -0.1,
        ttft_s: float | None = None,
        max_concurrent: int | None = None,
    ) -> None:
        self.model_id = model_id
        self.ttft_s = ttft_s
        self._slots = asyncio.Semaphore(max_concurrent) if max_concurrent else None
        self.token_logprob = token_logprob  # every sampled token's logprob, when logprobs are asked for
        self.max_model_len = max_model_len
        self.token_delay_s = token_delay_s
        self.default_tokens = default_tokens
        self.running = 0
        self.waiting = 0
        self.started = False
        self.aborted = 0

    async def start(self) -> None:
        self.started = True

    def _prompt_tokens(self, kind: Kind, body: dict) -> int:
        if kind == "chat":
            text = " ".join(str(m.get("content") or "") for m in body.get("messages") or [])
            return len(text.split()) + CHAT_OVERHEAD_TOKENS
        prompt = body.get("prompt")
        return len(prompt.split()) if isinstance(prompt, str) else len(prompt or [])

    async def count_prompt_tokens(self, kind: Kind, body: dict) -> int:
        return self._prompt_tokens(kind, body)

    async def generate(self, kind: Kind, body: dict) -> dict | AsyncIterator[str]:
        prompt = self._prompt_tokens(kind, body)
        n = body.get("max_tokens") or body.get("max_completion_tokens") or self.default_tokens
        if prompt + n > self.max_model_len:
            raise EngineError(
                400,
                f"This model's maximum context length is {self.max_model_len} tokens",
                param="messages" if kind == "chat" else "prompt",
            )
        words = [f"word{i}" for i in range(n)]
        usage = {"prompt_tokens": prompt, "completion_tokens": n, "total_tokens": prompt + n}
        want_lp = bool(body.get("logprobs")) if kind == "chat" else body.get("logprobs") is not None
        if not body.get("stream"):
            choice = (
                {"index": 0, "message": {"role": "assistant", "content": " ".join(words)}, "finish_reason": "length"}
                if kind == "chat"
                else {"index": 0, "text": " ".join(words), "finish_reason": "length"}
            )
            if want_lp:
                choice["logprobs"] = self._logprobs(kind, words)
            return {
                "id": "fake-1",
                "object": "chat.completion" if kind == "chat" else "text_completion",
                "created": int(time.time()),
                "model": self.model_id,
                "choices": [choice],
                "usage": usage,
            }
        return self._stream(kind, words, usage, bool((body.get("stream_options") or {}).get("include_usage")), want_lp)

    def _logprobs(self, kind: Kind, words: list[str]) -> dict:
        if kind == "chat":
            return {"content": [{"token": w, "logprob": self.token_logprob} for w in words]}
        return {"tokens": words, "token_logprobs": [self.token_logprob] * len(words)}

    async def _stream(
        self, kind: Kind, words: list[str], usage: dict, include_usage: bool, want_lp: bool = False
    ) -> AsyncIterator[str]:
        obj = "chat.completion.chunk" if kind == "chat" else "text_completion"

        def chunk(choices: list, **extra: object) -> str:
            return (
                "data: "
                + json.dumps(
                    {"id": "fake-1", "object": obj, "model": self.model_id, "choices": choices, **extra},
                    separators=(",", ":"),
                )
                + "\n\n"
            )

        admitted = False
        self.waiting += 1
        try:
            if self._slots is not None:
                await self._slots.acquire()
            admitted = True
            self.waiting -= 1
            self.running += 1
            start = time.perf_counter()
            if kind == "chat":
                yield chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}])
            for i, w in enumerate(words):
                await asyncio.sleep(max(0.0, start + self.token_due_s(i) - time.perf_counter()))
                text = w if i == 0 else " " + w
                c = {"index": 0, "delta": {"content": text}} if kind == "chat" else {"index": 0, "text": text}
                if want_lp:
                    c["logprobs"] = self._logprobs(kind, [w])
                yield chunk([c])
            if include_usage:
                yield chunk([], usage=usage)
            yield "data: [DONE]\n\n"
        except (asyncio.CancelledError, GeneratorExit):
            self.aborted += 1
            raise
        finally:
            if not admitted:
                self.waiting -= 1
            else:
                self.running -= 1
                if self._slots is not None:
                    self._slots.release()

    def token_due_s(self, i: int) -> float:
        """When token i (from 0) is due, in seconds after the stream was admitted."""
        if self.ttft_s is None:
            return (i + 1) * self.token_delay_s
        return self.ttft_s + i * self.token_delay_s

    async def check_health(self) -> None:
        return None

    def load(self) -> EngineLoad:
        return EngineLoad(self.running, self.waiting)

    def shutdown(self) -> None:
        self.started = False
