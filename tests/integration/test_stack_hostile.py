"""The hostile-input table (tests/hostile_cases.py) through the real stack, then two slow clients.

After all of it the stack is healthy and answers a normal request. The fake-engine twin is
tests/unit/test_gateway_hostile.py.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from serving.fleet.schema import parse_fleet
from tests.hostile_cases import Case, check_answer, hostile_cases
from tests.integration.conftest import SMALL, stack_fleet_dict

pytestmark = pytest.mark.stack
CASES = hostile_cases(SMALL, parse_fleet(stack_fleet_dict(), "test fleet").server.limits)
NORMAL = {"model": SMALL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_gets_a_json_answer_never_a_5xx(http, case: Case):
    r = http.request(case.method, case.path, content=case.body, headers=list(case.headers))
    check_answer(r, case, case.status)


def _connect(base_url: str) -> socket.socket:
    url = urlsplit(base_url)
    return socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=5)


@pytest.mark.parametrize("wait_s", [0.0, 3.0])
def test_a_stalled_upload_then_a_hang_up_leaves_the_server_healthy(http, base_url, wait_s):
    """Content-Length promises 100 kB, 40 bytes arrive, the client waits a little and closes."""
    with _connect(base_url) as s:
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: petit\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\n\r\n"
        )
        s.sendall(head.encode() + b'{"model": "' + SMALL.encode() + b'", "messages": [')
        s.settimeout(wait_s or 0.5)
        try:
            answer = s.recv(4096)  # the server may wait for the rest; it must not answer a 5xx
        except TimeoutError:
            answer = b""
        assert not answer.startswith(b"HTTP/1.1 5"), answer[:300]
    assert http.get("/health").status_code == 200
    assert http.post("/v1/chat/completions", json=NORMAL).status_code == 200


def test_a_slow_reader_that_disconnects_mid_stream_leaves_the_server_healthy(http, base_url):
    body = {**NORMAL, "max_tokens": 64, "stream": True}
    with httpx.Client(base_url=base_url, timeout=120) as slow:
        with slow.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            chunks = r.iter_raw(64)
            next(chunks)
            time.sleep(2)  # the server keeps generating into buffers nobody reads
            next(chunks)
    # ...then the client is gone mid-stream.
    assert http.get("/health").status_code == 200
    assert http.post("/v1/chat/completions", json=NORMAL).status_code == 200


def test_healthy_and_answering_after_all_the_hostile_input(http):
    assert http.get("/health").status_code == 200
    r = http.post("/v1/chat/completions", json=NORMAL)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"], r.text
