"""Bad input through the real stack: clear OpenAI-shaped errors, never a 5xx or a hang."""

from __future__ import annotations

import pytest

from tests.integration.conftest import LARGE, SMALL

pytestmark = pytest.mark.stack
MSG = [{"role": "user", "content": "hi"}]


def _err(r, status, param=None):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if param is not None:
        assert err["param"] == param
    return err


@pytest.mark.parametrize(
    "body, status, param",
    [
        ({"model": SMALL}, 400, "messages"),
        ({"model": SMALL, "messages": "hi"}, 400, "messages"),
        ({"model": SMALL, "messages": MSG, "n": 1000}, 400, "n"),
        ({"model": SMALL, "messages": MSG, "max_tokens": -3}, 400, "max_tokens"),
        ({"model": SMALL, "messages": MSG, "max_tokens": 50_000_000}, 400, "max_tokens"),
        ({"model": SMALL, "messages": MSG, "max_tokens": 4096}, 400, "max_tokens"),
        ({"model": SMALL, "messages": MSG, "temperature": "hot"}, 400, "temperature"),
        ({"model": SMALL, "messages": MSG, "temperature": -1}, 400, None),
        ({"model": "gpt-9", "messages": MSG}, 404, "model"),
    ],
)
def test_schema_errors(http, body, status, param):
    _err(http.post("/v1/chat/completions", json=body), status, param)


def test_malformed_json(http):
    _err(http.post("/v1/chat/completions", content=b'{"model": ', headers={"content-type": "application/json"}), 400)


def test_unknown_model_lists_served_ids(http):
    msg = _err(http.post("/v1/completions", json={"model": "nope", "prompt": "x"}), 404, "model")["message"]
    assert SMALL in msg and LARGE in msg and "auto" in msg


def test_prompt_longer_than_the_named_models_context(http):
    long = [{"role": "user", "content": "hello " * 2500}]
    err = _err(http.post("/v1/chat/completions", json={"model": SMALL, "messages": long, "max_tokens": 4}), 400)
    assert err["param"] == "messages" and "context" in err["message"]


def test_prompt_longer_than_every_context_with_auto(http):
    huge = [{"role": "user", "content": "hello " * 5000}]
    err = _err(http.post("/v1/chat/completions", json={"model": "auto", "messages": huge, "max_tokens": 4}), 400)
    assert err["code"] == "context_length_exceeded"


def test_openai_client_raises_typed_errors(client):
    import openai

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=MSG)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=SMALL, messages=MSG, n=99)
