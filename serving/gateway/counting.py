"""Prompt token counts for `auto` routing, asked of the models only when the answer matters.

Routing needs each candidate's prompt count to know whether the prompt plus the
output budget fits its context window (and, less precisely, for the expected
cost). Asking every ready model costs a Ray round trip per model on every `auto`
request (issue 14), so the counter first tries to prove the fit without any call:

- token-id prompts are counted by their length;
- otherwise the request body's byte length bounds the prompt's tokens: every
  tokenizer Petit serves (byte-level BPE, SentencePiece with byte fallback,
  WordPiece) spends at least one byte of UTF-8 text per token, a JSON body is never
  shorter than the UTF-8 of the strings it carries, and the chat template adds at
  most `TEMPLATE_TOKENS` plus `TOKENS_PER_MESSAGE` per message. When that bound plus
  the output budget fits every candidate, no model is asked; the counts handed to
  routing are then an estimate (`BYTES_PER_TOKEN_ESTIMATE`, never above the bound),
  used for the expected cost only.
- otherwise (a long prompt, a non-text part such as an image, or
  `routing.count_prompt_tokens: always`) each candidate counts it, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from serving.gateway.errors import HTTPError
from serving.gateway.failover import Breaker
from serving.gateway.upstream import ModelClient, Overloaded
from serving.router.types import ModelSnapshot

COUNT_TIMEOUT_S = 10.0
TEMPLATE_TOKENS = 128  # a chat template's fixed part (default system prompt, generation prompt)
TOKENS_PER_MESSAGE = 32  # its role markers and separators, per message
BYTES_PER_TOKEN_ESTIMATE = 4  # English text, for the cost estimate of an uncounted prompt
log = logging.getLogger("petit.gateway")


def token_ids_count(kind: str, body: dict) -> int | None:
    """The length of a completion prompt given as token ids; None for any other prompt."""
    prompt = body.get("prompt") if kind == "completion" else None
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
        return len(prompt)
    return None


def prompt_token_bound(kind: str, body: dict, body_bytes: int) -> int | None:
    """An upper bound on the prompt's tokens under any served tokenizer; None when none is known
    (a message part that is not text, e.g. an image, whose tokens the bytes do not bound)."""
    if kind != "chat":
        return body_bytes + TEMPLATE_TOKENS
    messages = body.get("messages") or []
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list) and any(isinstance(p, dict) and p.get("type") != "text" for p in content):
            return None
    return body_bytes + TEMPLATE_TOKENS + TOKENS_PER_MESSAGE * len(messages)


class PromptCounter:
    """Counts for the candidates of one `auto` request (see the module docstring)."""

    def __init__(self, client: ModelClient, breaker: Breaker, always: bool = False) -> None:
        self.client, self.breaker, self.always = client, breaker, always
        self.skipped = 0  # requests routed on the bound, without asking any model

    async def counts(
        self, kind: str, body: dict, body_bytes: int, models: Sequence[ModelSnapshot], budget: int
    ) -> dict[str, int]:
        """Prompt tokens per model id (a model absent could not count it). Raises HTTPError (400)
        for a prompt every model refuses."""
        ids = token_ids_count(kind, body)
        if ids is not None:
            return {m.id: ids for m in models}
        bound = None if self.always else prompt_token_bound(kind, body, body_bytes)
        if bound is not None and models and all(bound + budget <= m.max_model_len for m in models):
            self.skipped += 1
            estimate = min(bound, body_bytes // BYTES_PER_TOKEN_ESTIMATE + TEMPLATE_TOKENS)
            return {m.id: estimate for m in models}
        return await self._ask([m.id for m in models], kind, body)

    async def _ask(self, model_ids: list[str], kind: str, body: dict) -> dict[str, int]:
        async def one(mid: str) -> dict:
            try:
                res = await asyncio.wait_for(self.client.count_prompt_tokens(mid, kind, body), COUNT_TIMEOUT_S)
            except (asyncio.TimeoutError, Overloaded):
                return {}
            except Exception as err:  # noqa: BLE001 - its replica is gone: route without its count, as down
                log.warning("counting prompt tokens on %s failed: %r", mid, err)
                self.breaker.failed(mid)
                return {}
            if res.get("type") == "error" and res.get("status", 500) >= 500:
                self.breaker.failed(mid)  # its engine failed
            return res

        results = await asyncio.gather(*(one(m) for m in model_ids))
        counts: dict[str, int] = {}
        for mid, res in zip(model_ids, results):
            if res.get("type") == "error" and 400 <= res["status"] < 500:
                raise HTTPError.from_item(res)  # the prompt itself is invalid: same answer from every model
            if "tokens" in res:
                counts[mid] = res["tokens"]
        return counts
