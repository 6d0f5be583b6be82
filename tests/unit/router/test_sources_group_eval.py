"""Grouped routing sources and the leave-one-group-out evaluation, on tiny files in the real formats."""

from __future__ import annotations

import csv
import json
import zipfile

import numpy as np
import pytest

from serving.router.training.data import DataError, default_data_dir
from serving.router.training.group_eval import evaluate_by_group, markdown_table
from serving.router.training.sources import (
    LLMROUTER_STRONG,
    LLMROUTER_WEAK,
    MMLU_PRO_STRONG,
    MMLU_PRO_WEAK,
    load_grouped,
    mmlu_pro_prompt,
    stem_key,
)

MC = "What is the capital of France?\nA. Paris\nB. Rome\nAnswer:"


def _write_sources(root, n=40):
    rng = np.random.default_rng(0)
    mmlu = root / "routellm_mmlu" / "mmlu_responses"
    mmlu.mkdir(parents=True)
    for subject in ("anatomy", "philosophy"):
        with (mmlu / f"mmlu_{subject}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["prompt", "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"])
            w.writerow([MC, True, True])  # also in MMLU-Pro below: kept here only
            for i in range(n):
                w.writerow([f"{subject} question {i} " + "x" * i + "\nA. a\nB. b\nAnswer:", rng.random() < 0.4, True])
    (mmlu / "contaminated_prompts.jsonl").write_text("")
    q = root / "llmrouter_ulab" / "data" / "example_data" / "query_data"
    d = root / "llmrouter_ulab" / "data" / "dcrouter_preprocessed"
    q.mkdir(parents=True)
    d.mkdir(parents=True)
    rows, queries = [], []
    for i in range(n):
        text = f"write code number {i}\u2028with a line separator"
        queries.append({"task_name": "mbpp", "query": text})
        rows.append({"question": text, "scores": {LLMROUTER_WEAK: float(i % 3 == 0), LLMROUTER_STRONG: 1.0}})
    (q / "default_query_train.jsonl").write_text("\n".join(json.dumps(x) for x in queries) + "\n")
    (q / "default_query_test.jsonl").write_text("")
    (d / "train.json").write_text(json.dumps(rows))
    (d / "test.json").write_text("[]")
    pro = root / "mmlu_pro"
    pro.mkdir()
    for name, correct in ((MMLU_PRO_WEAK, False), (MMLU_PRO_STRONG, True)):
        items = [
            {"question_id": 0, "question": "What is the capital of France?", "options": "['Paris', 'Rome']",
             "answer": "A", "category": "other", "pred": "A" if correct else "B"},
            {"question_id": 1, "question": "Solve x + 1 = 2.", "options": ["0", "1"], "answer": "B",
             "category": "math", "pred": "B" if correct else None},
        ]  # fmt: skip
        with zipfile.ZipFile(pro / name, "w") as z:
            z.writestr(name.replace(".zip", ".json"), json.dumps(items))


def test_load_grouped_groups_and_deduplicates_across_sources(tmp_path):
    _write_sources(tmp_path)
    gs = load_grouped(tmp_path)
    assert set(gs.group_names) == {"mmlu:stem", "mmlu:humanities", "llmrouter:mbpp", "mmlu_pro:stem"}
    assert gs.data.prompts.count(MC) == 1  # MMLU's copy kept; MMLU-Pro's duplicate of its stem dropped
    assert int((gs.groups == "mmlu_pro:stem").sum()) == 1  # the null prediction counts as wrong
    i = gs.data.prompts.index(mmlu_pro_prompt({"question": "Solve x + 1 = 2.", "options": ["0", "1"]}))
    assert not gs.data.weak_correct[i] and gs.data.strong_correct[i]
    assert len(gs.data) == len(gs.groups) == 2 * 41 - 1 + 40 + 1


def test_stem_key_matches_the_same_question_in_both_layouts():
    assert stem_key(MC) == stem_key(mmlu_pro_prompt({"question": "What is the capital of France?", "options": ["x"]}))


def test_missing_source_names_the_folder(tmp_path):
    with pytest.raises(DataError, match="routellm_mmlu"):
        load_grouped(tmp_path, ["routellm_mmlu"])
    with pytest.raises(DataError, match="unknown routing source"):
        load_grouped(tmp_path, ["nope"])


def test_leave_one_group_out_reports_every_router_and_skips_groups_without_a_gap(tmp_path):
    _write_sources(tmp_path)
    gs = load_grouped(tmp_path)
    # Embeddings that carry the label for two groups: a recipe trained on the others can transfer it.
    emb = np.random.default_rng(1).standard_normal((len(gs.data), 8)).astype(np.float32)
    emb[:, 0] = gs.data.strong_correct.astype(float) - gs.data.weak_correct
    res = evaluate_by_group(gs, emb, n_boot=30)
    assert "rows <" in res["groups"]["mmlu_pro:stem"]["skipped"]  # one row: too few to score
    for name in ("mmlu:stem", "mmlu:humanities", "llmrouter:mbpp"):
        r = res["groups"][name]["routers"]
        assert set(r) == {"learned", "length", "random", "oracle"}
        assert r["learned"]["apgr"]["value"] > r["random"]["apgr"]["value"]  # the informative feature transfers
    assert res["worst"]["learned"]["group"] in res["groups"]
    assert "worst group" in markdown_table(res)


@pytest.mark.skipif(not (default_data_dir() / "mmlu_pro").exists(), reason="shared router data not present")
def test_the_real_sources_load():
    gs = load_grouped()
    assert len(gs.data) > 20_000 and len(gs.group_names) >= 15
