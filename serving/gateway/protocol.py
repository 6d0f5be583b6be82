"""Wire models for the ingress: lenient about extra OpenAI fields, strict about
the ones Petit needs to route (model, messages/prompt, max_tokens, n, stream).

Everything else passes through untouched to the engine, whose own OpenAI
protocol classes (vLLM's) validate it. Unknown fields are kept, and listed in
`ignored_fields` only when the engine too would drop them (that is the engine's
call; the ingress only forwards).

Pure module: pydantic only.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

MAX_N = 16
MAX_TOKENS_CEILING = 1_000_000


class WireError(ValueError):
    """A request body the ingress rejects (HTTP 400), with the offending parameter."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param = message, param


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class StreamOptions(_Lenient):
    include_usage: StrictBool = False


class Message(_Lenient):
    role: Literal["system", "user", "assistant", "tool", "developer", "function"]
    content: str | list[Any] | None = None


class _Common(_Lenient):
    model: str = Field(min_length=1)
    max_tokens: StrictInt | None = Field(None, ge=1, le=MAX_TOKENS_CEILING)
    n: StrictInt = Field(1, ge=1, le=MAX_N)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None

    @property
    def output_budget(self) -> int | None:
        return self.max_tokens

    @property
    def wants_usage_chunk(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatRequest(_Common):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: StrictInt | None = Field(None, ge=1, le=MAX_TOKENS_CEILING)

    @property
    def output_budget(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Common):
    prompt: str | list[str] | list[int] | list[list[int]]


def parse_body(raw: bytes) -> dict[str, Any]:
    """Decode a request body into a JSON object. Raises WireError."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise WireError(f"request body is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise WireError(f"request body must be a JSON object, got {type(data).__name__}")
    return data


def validate(kind: str, body: dict[str, Any]) -> ChatRequest | CompletionRequest:
    """Validate the fields the ingress needs. Raises WireError naming the first bad parameter."""
    cls = ChatRequest if kind == "chat" else CompletionRequest
    try:
        req = cls.model_validate(body)
    except ValidationError as err:
        first = err.errors()[0]
        loc = [str(p) for p in first["loc"]]
        param = loc[0] if loc else None
        where = ".".join(loc) or "body"
        raise WireError(f"{where}: {first['msg']}", param=param) from None
    if isinstance(req, CompletionRequest) and req.prompt in ("", [], [[]]):
        raise WireError("prompt: must not be empty", param="prompt")
    return req
