"""Hostile requests and the answers they must get, one table for the fake-engine ingress and the real stack.

`hostile_cases(model, limits)` builds the table for a fleet whose requests may name `model` and
whose `server.limits` are `limits`. Every answer is OpenAI-shaped JSON, never a 5xx. Cases marked
`engine_checks` carry a field the ingress forwards untouched for the engine to judge (vLLM answers
`status`); the fake engine does not check those, so over it the ingress must answer 200.
Used by tests/unit/test_gateway_hostile.py and tests/integration/test_stack_hostile.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx

from serving.fleet.schema import LimitsConfig

CHAT, COMPLETIONS = "/v1/chat/completions", "/v1/completions"
JSON_TYPE = (("content-type", "application/json"),)


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: bytes | None  # sent as is
    status: frozenset[int]  # the acceptable answers
    code: str | None = None  # the OpenAI error `code`, when one is promised
    param: str | None = None  # the OpenAI error `param`, when one is promised
    headers: tuple[tuple[str, str], ...] = JSON_TYPE  # pairs: a name may repeat
    engine_checks: bool = False  # the engine judges it: over the fake engine the answer is 200

    @property
    def ok_statuses(self) -> frozenset[int]:
        """What the ingress over the fake engine may answer."""
        return frozenset({200}) if self.engine_checks else self.status


def check_answer(r: httpx.Response, case: Case, statuses: frozenset[int]) -> None:
    """`r` is one of `statuses`, JSON, and for an error an OpenAI-shaped `error` with `case`'s code and param."""
    assert r.status_code in statuses, f"{case.name}: {r.status_code} not in {sorted(statuses)}: {r.text[:300]}"
    assert r.headers.get("content-type", "").startswith("application/json"), f"{case.name}: {r.text[:300]}"
    body = r.json()
    if r.status_code < 400:
        return
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"] and err["type"] == "invalid_request_error", err
    if case.code is not None:
        assert err["code"] == case.code, err
    if case.param is not None:
        assert err["param"] == case.param, err
    if r.status_code == 405:
        assert r.headers.get("allow"), "a 405 names the allowed methods"


def _j(data: object) -> bytes:
    return json.dumps(data).encode()


def _nest(depth: int) -> object:
    node: object = 1
    for _ in range(depth):
        node = [node]
    return node


@dataclass
class _Table:
    model: str
    cases: list[Case] = field(default_factory=list)

    def chat(self, name: str, status: int | set[int], param: str | None = None, **fields: object) -> None:
        """A chat request: a small valid one with `fields` replacing its own (None: the field is left out)."""
        body: dict[str, object] = {"model": self.model, "messages": [{"role": "user", "content": "hi"}]}
        body.update({"max_tokens": 4, **fields})
        body = {k: v for k, v in body.items() if v is not None}
        self.add(name, "POST", CHAT, _j(body), status, param=param)

    def add(self, name: str, method: str, path: str, body: bytes | None, status: int | set[int], **kw: object) -> None:
        statuses = frozenset({status} if isinstance(status, int) else status)
        self.cases.append(Case(name, method, path, body, statuses, **kw))  # type: ignore[arg-type]


def hostile_cases(model: str, limits: LimitsConfig) -> list[Case]:
    """The table for a fleet serving `model` with `limits` (see the module's docstring)."""
    t = _Table(model)
    hi = [{"role": "user", "content": "hi"}]
    small = {"model": model, "messages": hi, "max_tokens": 4}
    # Size and shape limits (server.limits).
    t.chat("deeply nested JSON", 400, x=_nest(limits.max_json_depth + 10))
    t.add("unclosed nesting 100k deep", "POST", CHAT, b"[" * 100_000, 400)
    t.add("body over max_body_bytes", "POST", CHAT, b" " * (limits.max_body_bytes + 1) + _j(small), 413)
    t.chat("too many messages", 400, "messages", messages=hi * (limits.max_messages + 1))
    parts = [{"type": "text", "text": "a"}] * (limits.max_content_parts + 1)
    t.chat("too many content parts", 400, "messages.0.content", messages=[{"role": "user", "content": parts}])
    prompts = ["a"] * (limits.max_messages + 1)
    t.add("too many prompts", "POST", COMPLETIONS, _j({"model": model, "prompt": prompts, "max_tokens": 2}), 400)
    # Numbers JSON does not have, or that no engine should take.
    raw_small = _j(small)[:-1]
    t.add("NaN temperature", "POST", CHAT, raw_small + b', "temperature": NaN}', 400)
    t.add("Infinity max_completion_tokens", "POST", CHAT, raw_small + b', "max_completion_tokens": Infinity}', 400)
    t.add("-Infinity top_p", "POST", CHAT, raw_small + b', "top_p": -Infinity}', 400)
    t.add("5000-digit integer", "POST", CHAT, raw_small + b', "seed": ' + b"9" * 5000 + b"}", 400)
    t.chat("huge n", 400, "n", n=10**9)
    t.chat("n zero", 400, "n", n=0)
    t.chat("max_tokens beyond any context", 400, "max_tokens", max_tokens=10**12)
    # Wrong types in the fields the ingress reads.
    t.chat("model as int", 400, "model", model=123)
    t.chat("model empty", 400, "model", model="")
    t.chat("messages as string", 400, "messages", messages="hi")
    t.chat("messages of strings", 400, "messages", messages=["hi"])
    t.chat("max_tokens as string", 400, "max_tokens", max_tokens="5")
    t.chat("max_tokens negative", 400, "max_tokens", max_tokens=-1)
    t.chat("max_tokens float", 400, "max_tokens", max_tokens=2.5)
    t.chat("max_tokens bool", 400, "max_tokens", max_tokens=True)
    t.chat("max_tokens 4.0 (an integer in JSON)", 200, max_tokens=4.0)
    t.chat("max_completion_tokens as string", 400, "max_completion_tokens", max_completion_tokens="5")
    t.chat("stream as string", 400, "stream", stream="yes")
    t.chat("stream_options as string", 400, "stream_options", stream=True, stream_options="yes")
    t.chat("stream_options.include_usage as string", 400, "stream_options", stream=True,
           stream_options={"include_usage": "yes"})  # fmt: skip
    t.chat("content as int", 400, "messages", messages=[{"role": "user", "content": 5}])
    t.chat("invalid role", 400, "messages", messages=[{"role": "wizard", "content": "hi"}])
    t.chat("role missing", 400, "messages", messages=[{"content": "hi"}])
    t.chat("empty messages", 400, "messages", messages=[])
    t.chat("messages missing", 400, "messages", messages=None)
    t.add("prompt as object", "POST", COMPLETIONS, _j({"model": model, "prompt": {"a": 1}}), 400, param="prompt")
    t.add("prompt empty", "POST", COMPLETIONS, _j({"model": model, "prompt": ""}), 400, param="prompt")
    t.add("prompt with an empty token list", "POST", COMPLETIONS, _j({"model": model, "prompt": [[1], []]}), 400,
          param="prompt")  # fmt: skip
    t.chat("unknown model", 404, "model", model="gpt-9-does-not-exist")
    # Fields the ingress forwards for the engine to judge.
    for name, extra in [
        ("temperature as string", {"temperature": "hot"}),
        ("huge top_logprobs", {"logprobs": True, "top_logprobs": 10**9}),
        ("tools garbage", {"tools": "garbage"}),
    ]:
        t.cases.append(Case(name, "POST", CHAT, _j({**small, **extra}), frozenset({400}), engine_checks=True))
    t.cases.append(Case("huge completion logprobs", "POST", COMPLETIONS,
                        _j({"model": model, "prompt": "hi", "max_tokens": 2, "logprobs": 10**9}),
                        frozenset({400}), engine_checks=True))  # fmt: skip
    # Accepted or refused, but answered: vLLM puts no bound on these.
    t.chat("huge stop list", {200, 400}, stop=[f"s{i}" for i in range(10_000)])
    t.chat("message without content", {200, 400}, messages=[{"role": "user"}])
    # Bytes that are not JSON text, or not Unicode.
    t.add("empty body", "POST", CHAT, b"", 400)
    t.add("truncated JSON", "POST", CHAT, b'{"model": ', 400)
    t.add("JSON array body", "POST", CHAT, b"[1, 2]", 400)
    t.add("non-UTF-8 bytes", "POST", CHAT, _j(small).replace(b'"hi"', b'"\xff\xfe\x80"'), 400)
    t.add("lone surrogate", "POST", CHAT, _j(small).replace(b'"hi"', b'"\\ud800"'), 400, param="messages")
    # HTTP-level hostility.
    t.add("wrong Content-Type", "POST", CHAT, _j(small), 415,
          headers=(("content-type", "text/plain"),))  # fmt: skip
    t.add("form Content-Type", "POST", CHAT, _j(small), 415,
          headers=(("content-type", "application/x-www-form-urlencoded"),))  # fmt: skip
    t.add("duplicate keys (last wins, as in the engine)", "POST", CHAT,
          b'{"model": 123, ' + _j(small)[1:], 200)  # fmt: skip
    t.add("duplicate x-request-id header", "POST", CHAT, _j(small), 200,
          headers=JSON_TYPE + (("x-request-id", "a"), ("x-request-id", "b")))  # fmt: skip
    t.add("unknown routing policy header", "POST", CHAT, _j({**small, "model": "auto"}), 400, param="x-petit-policy",
          headers=JSON_TYPE + (("x-petit-policy", "no-such-policy"),))  # fmt: skip
    t.add("large header (32 KiB)", "POST", CHAT, _j(small), 200, headers=JSON_TYPE + (("x-junk", "j" * 32_768),))
    t.add("GET on a POST route", "GET", CHAT, None, 405)
    t.add("PUT on a POST route", "PUT", COMPLETIONS, _j(small), 405)
    t.add("POST on a GET route", "POST", "/v1/models", b"{}", 405)
    t.add("unknown path", "GET", "/v1/nope", None, 404)
    t.add("path traversal", "GET", "/v1/../../etc/passwd", None, 404)
    return t.cases
