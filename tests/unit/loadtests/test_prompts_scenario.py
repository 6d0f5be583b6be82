"""Prompts (synthetic and labelled files) and scenario files, including the shipped examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.config_files import LoadTestInputError, load_yaml
from loadtests.pricing import load_price_table
from loadtests.prompts import WORDS_PER_TOKEN, Prompt, SyntheticPrompts, is_correct, load_prompt_file
from loadtests.scenario import ConstantShape, load_scenario
from loadtests.sla import SLASpec

EXAMPLES = Path(__file__).resolve().parents[3] / "loadtests" / "examples"
TOKENIZER = Path("~/.cache/petit/models/smollm2-135m-instruct").expanduser()


def test_synthetic_prompt_word_rule_and_unique():
    gen = SyntheticPrompts()
    a, b = gen.make(200, 1).text, gen.make(200, 2).text
    assert a != b and abs(len(a.split()) - 200 * WORDS_PER_TOKEN) <= 2
    assert "words/token" in gen.method


def test_synthetic_prompt_exact_with_tokenizer():
    if not (TOKENIZER / "tokenizer.json").exists():
        pytest.skip(f"no local tokenizer at {TOKENIZER} (run `petit models prepare`)")
    gen = SyntheticPrompts(TOKENIZER)
    for n in (16, 300, 3000):
        ids = gen.tokenizer.encode(gen.make(n, 7).text, add_special_tokens=False)
        assert abs(len(ids) - n) <= 2, (n, len(ids))


def test_missing_tokenizer_falls_back_visibly(tmp_path):
    gen = SyntheticPrompts(tmp_path / "nope")
    assert gen.tokenizer is None and "not found" in gen.method


def test_prompt_file_and_grading(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text(
        '{"prompt": "2+3?", "expected": "5", "match": "numeric"}\n\n{"prompt": "Capital?", "expected": "Paris"}\n'
        '{"prompt": "free"}\n'
    )
    prompts = load_prompt_file(p)
    assert [x.match for x in prompts] == ["numeric", "exact", "exact"]
    assert is_correct("The answer is 5.", prompts[0]) and not is_correct("6", prompts[0])
    assert is_correct(" paris.\nIt is in France", prompts[1]) and not is_correct("Lyon", prompts[1])
    assert is_correct("anything", prompts[2]) is None
    assert is_correct("1,000", Prompt("x", "1000", "numeric"))


@pytest.mark.parametrize(
    "text, expect",
    [
        ("{bad", ":1: not valid JSON"),
        ('{"prompt": ""}', ":1: each line needs"),
        ('{"prompt": "a", "answer": 1}', "unknown key"),
        ('{"prompt": "a", "match": "fuzzy"}', "match must be"),
        ('{"prompt": "a", "expected": "x", "match": "numeric"}', "is not a number"),
        ("\n", "has no prompts"),
    ],
)
def test_bad_prompt_files(tmp_path, text, expect):
    p = tmp_path / "p.jsonl"
    p.write_text(text)
    with pytest.raises(LoadTestInputError, match=expect):
        load_prompt_file(p)


@pytest.mark.parametrize(
    "name", sorted(p.name for p in EXAMPLES.glob("*.yaml") if not p.name.startswith(("sla", "prices")))
)
def test_example_scenarios_validate(name):
    spec = load_scenario(EXAMPLES / name)
    assert spec.build_shape().tick(0) is not None
    if spec.pricing.fleet:
        assert Path(spec.pricing.fleet).exists()


def test_example_slas_and_prices_validate():
    for name in ("sla.yaml", "sla-strict.yaml"):
        load_yaml(EXAMPLES / name, SLASpec, "SLA")
    table = load_price_table(EXAMPLES / "prices.yaml")
    assert table.tier("qwen2.5-coder-0.5b") == "large" and table.cost_usd("other", 1_000_000, 0) == pytest.approx(0.1)
    assert load_prompt_file(EXAMPLES / "labelled_prompts.jsonl")


@pytest.mark.parametrize(
    "text, expect",
    [
        ("duration_s: 10\nshape: {kind: constant, users: 2}\nwarmup_s: 10\n", "warmup_s (10.0) must be < duration_s"),
        ("duration_s: 10\nshape: {kind: trace}\n", "shape kind 'trace' and a `trace:` section go together"),
        ("duration_s: 10\nshape:\n  kind: constant\n  user: 2\n", ":4: shape.constant.user: unknown key"),
        ("duration_s: 10\nshape: {kind: zigzag}\n", "shape: Input tag 'zigzag'"),
        (
            "duration_s: 10\nshape: {kind: constant, users: 1}\nscarcity:\n  admin_url: http://x\n  events:\n"
            "    - {at_s: 5, gpus: 1}\n    - {at_s: 2, gpus: 1}\n",
            "events must be in time order",
        ),
        ("duration_s: 10\nshape: {kind: constant, users: 1}\nprompts: {}\n", "set exactly one of synthetic, file"),
    ],
)
def test_bad_scenarios(tmp_path, text, expect):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(LoadTestInputError) as e:
        load_scenario(p)
    assert str(p) in str(e.value) and expect in str(e.value), str(e.value)


def test_scenario_paths_relative_to_file(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(
        "duration_s: 5\nshape: {kind: constant, users: 3}\nprompts: {file: p.jsonl}\npricing: {prices: x.yaml}\n"
    )
    spec = load_scenario(p)
    assert isinstance(spec.shape, ConstantShape)
    assert spec.prompts.file == str(tmp_path / "p.jsonl") and spec.pricing.prices == str(tmp_path / "x.yaml")
