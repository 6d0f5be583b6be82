"""The byte bound `auto` routes on (serving/gateway/counting.py) holds for the served models' own
tokenizers and chat templates: no prompt needs more tokens than the bound says. Runs in the stack
tier, where the models' weights (and tokenizers) are prepared; it needs no running stack."""

from __future__ import annotations

import json

import pytest

from serving.fleet.schema import parse_fleet
from serving.fleet.weights import resolve_model_path
from serving.gateway.counting import prompt_token_bound
from tests.integration.conftest import stack_fleet_dict

pytestmark = pytest.mark.stack

TEXTS = ("hi", "é" * 50, "a b c " * 100, "日本語のテキスト" * 20, '\n\t"\\' * 30, "🙂" * 40, "x" * 3000, "  " * 500)


def _conversations():
    for text in TEXTS:
        yield [{"role": "user", "content": text}]
        yield [
            {"role": "system", "content": ""},
            {"role": "user", "content": text},
            {"role": "assistant", "content": ""},
        ]
        yield [{"role": "user", "content": "q"}] + [
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": text},
        ] * 5


def test_the_byte_bound_holds_for_every_served_tokenizer_and_chat_template() -> None:
    from transformers import AutoTokenizer

    fleet = parse_fleet(stack_fleet_dict(), "test fleet")
    for model in fleet.models:
        tok = AutoTokenizer.from_pretrained(str(resolve_model_path(model, str(fleet.resolved_cache_dir()))))
        for messages in _conversations():
            body = {"model": model.id, "messages": messages}
            rendered = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            ids = tok(rendered, add_special_tokens=False)["input_ids"]
            assert len(ids) > 5  # the template's own tokens (default system prompt, role markers) are counted
            bound = prompt_token_bound("chat", body, len(json.dumps(body).encode()))
            assert bound is not None and len(ids) <= bound, (model.id, messages[-1]["content"][:20], len(ids), bound)
        for text in TEXTS:  # completions: the raw prompt with the tokenizer's special tokens
            body = {"model": model.id, "prompt": text}
            assert len(tok(text)["input_ids"]) <= prompt_token_bound("completion", body, len(json.dumps(body).encode()))
