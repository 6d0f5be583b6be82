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
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, ValidationError
from pydantic.json_schema import models_json_schema

MAX_N = 16
MAX_TOKENS_CEILING = 1_000_000
# A \uD800-\uDFFF escape in raw JSON: the decoded text may hold a lone surrogate, which is not Unicode.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


class WireError(ValueError):
    """A request body the ingress rejects (HTTP 400, or `status`), with the offending parameter."""

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.param, self.status = message, param, status


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _depth(data: object, limit: int) -> int:
    """Nesting depth of decoded JSON (iterative), stopping early past `limit`."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            stack.extend((v, d + 1) for v in (node.values() if isinstance(node, dict) else node))
    return deepest


def _lone_surrogate(data: object) -> str | None:
    """The dotted path of the first key or string in decoded JSON holding a lone surrogate, else None."""
    stack: list[tuple[object, str]] = [(data, "")]
    while stack:
        node, path = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            where = f"{path}.{k}" if path else str(k)
            for text in (k, v):
                if isinstance(text, str):
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        return where
            stack.append((v, where))
    return None


def _is_json_type(content_type: str | None) -> bool:
    """True for no Content-Type (curl-like clients) and for application/json or any application/*+json."""
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _integral(value: object) -> object:
    """2.0 is the integer 2 in JSON (and in JSON Schema, hence the published one); 2.5 and "2" are not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


_JsonInt = Annotated[StrictInt, BeforeValidator(_integral)]
# The member of a union that pydantic names in an error's location ("prompt.constrained-str"): not a field.
_UNION_TAG = re.compile(r"(constrained-)?(str|int|bool|list\[.*\]|function-before\[.*\])$")
_INT_FIELDS = ("max_tokens", "n", "max_completion_tokens")
_NonEmpty = Field(min_length=1)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class StreamOptions(_Lenient):
    include_usage: StrictBool = False


class Message(_Lenient):
    role: Literal["system", "user", "assistant", "tool", "developer", "function"]
    content: str | list[Any] | None = None


class _Common(_Lenient):
    model: str = Field(min_length=1)
    max_tokens: _JsonInt | None = Field(None, ge=1, le=MAX_TOKENS_CEILING)
    n: _JsonInt = Field(1, ge=1, le=MAX_N)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None

    @property
    def output_budget(self) -> int | None:
        return self.max_tokens

    @property
    def wants_usage_chunk(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatRequest(_Common):
    """An OpenAI chat completion request: the fields Petit checks; any other OpenAI or vLLM field is forwarded."""

    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: _JsonInt | None = Field(None, ge=1, le=MAX_TOKENS_CEILING)

    @property
    def output_budget(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Common):
    """An OpenAI (legacy) completion request: the fields Petit checks; any other field is forwarded."""

    prompt: (
        Annotated[str, _NonEmpty]
        | Annotated[list[str], _NonEmpty]
        | Annotated[list[int], _NonEmpty]
        | Annotated[list[Annotated[list[int], _NonEmpty]], _NonEmpty]
    )


class ErrorDetail(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, authentication_error, rate_limit_error, ...")
    param: str | None = Field(description="The request field at fault, when there is one.")
    code: str | None = Field(description="e.g. model_not_found, context_length_exceeded, overloaded.")


class ErrorResponse(BaseModel):
    """Every error answer: OpenAI's shape."""

    error: ErrorDetail


def openapi_components(ref_prefix: str = "#/components/schemas/") -> dict[str, dict[str, Any]]:
    """JSON Schemas of the request bodies and the error body, by model name, for an OpenAPI
    document's `components.schemas` (references point there)."""
    models = [(m, "validation") for m in (ChatRequest, CompletionRequest, ErrorResponse)]
    _, defs = models_json_schema(models, ref_template=ref_prefix + "{model}")  # type: ignore[arg-type]
    return dict(defs["$defs"])


def parse_body(raw: bytes, max_depth: int = 64, content_type: str | None = None) -> dict[str, Any]:
    """Decode a request body into a JSON object. Raises WireError: 415 for a `content_type` that is not
    JSON (none is fine); 400 for bytes that are not UTF-8 JSON, NaN/Infinity, nesting past `max_depth`
    and lone surrogates (text no engine can encode)."""
    if not _is_json_type(content_type):
        raise WireError(f"Content-Type {content_type!r} is not supported; send application/json", status=415)
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise WireError(f"request body nests deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise WireError(f"request body is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise WireError(f"request body must be a JSON object, got {type(data).__name__}")
    if _depth(data, max_depth) > max_depth:
        raise WireError(f"request body nests deeper than {max_depth} levels")
    if _SURROGATE_ESCAPE.search(raw) and (where := _lone_surrogate(data)) is not None:
        raise WireError(f"{where}: lone UTF-16 surrogate in a string (not valid Unicode)", where.split(".")[0])
    return data


def check_sizes(req: ChatRequest | CompletionRequest, max_messages: int, max_content_parts: int) -> None:
    """Raises WireError when a request has more messages, content parts or prompts than allowed."""
    if isinstance(req, ChatRequest):
        if len(req.messages) > max_messages:
            raise WireError(f"messages: {len(req.messages)} messages, more than the {max_messages} allowed", "messages")
        for i, m in enumerate(req.messages):
            if isinstance(m.content, list) and len(m.content) > max_content_parts:
                raise WireError(
                    f"messages.{i}.content: more than {max_content_parts} content parts", f"messages.{i}.content"
                )
    elif isinstance(req.prompt, list) and req.prompt and isinstance(req.prompt[0], list | str):
        if len(req.prompt) > max_messages:
            raise WireError(f"prompt: {len(req.prompt)} prompts, more than the {max_messages} allowed", "prompt")


def validate(kind: str, body: dict[str, Any]) -> ChatRequest | CompletionRequest:
    """Validate the fields the ingress needs. Raises WireError naming the first bad parameter.
    Integral floats in the integer fields are accepted and written back into `body` as ints."""
    cls = ChatRequest if kind == "chat" else CompletionRequest
    try:
        req = cls.model_validate(body)
    except ValidationError as err:
        first = err.errors()[0]
        loc = [str(p) for p in first["loc"] if not (isinstance(p, str) and _UNION_TAG.match(p))]
        param = loc[0] if loc else None
        where = ".".join(loc) or "body"
        raise WireError(f"{where}: {first['msg']}", param=param) from None
    for name in _INT_FIELDS:  # the engine gets the integers that were checked (2, not 2.0)
        if isinstance(body.get(name), float):
            body[name] = getattr(req, name)
    return req
