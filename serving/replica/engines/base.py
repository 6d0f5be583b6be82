"""The engine interface every model deployment talks to.

An engine takes OpenAI-shaped request bodies (plain dicts) and returns either a
complete response body or an async iterator of SSE lines (``"data: ...\\n\\n"``,
ending with ``"data: [DONE]\\n\\n"``). Errors are raised as :class:`EngineError`
with the HTTP status and OpenAI error fields, never returned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

Kind = Literal["chat", "completion"]
EngineResult = dict | AsyncIterator[str]


class EngineError(Exception):
    """A request the engine refused, with its OpenAI error fields."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code


@dataclass(frozen=True)
class EngineLoad:
    """What an engine reports about its own queue (for routing and autoscaling)."""

    running: int
    waiting: int


class Engine(Protocol):
    async def start(self) -> None:
        """Load the model; returns when the engine can serve."""

    async def generate(self, kind: Kind, body: dict) -> EngineResult:
        """Serve one request. Raises EngineError for requests the engine rejects."""

    async def count_prompt_tokens(self, kind: Kind, body: dict) -> int:
        """Tokens the prompt takes after the chat template. Raises EngineError."""

    async def check_health(self) -> None:
        """Raise if the engine is dead."""

    def load(self) -> EngineLoad:
        """Requests in the engine now (unfinished), for load signals and tests."""

    def shutdown(self) -> None:
        """Stop the engine and its processes."""
