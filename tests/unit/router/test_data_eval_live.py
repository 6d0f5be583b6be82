from __future__ import annotations

import json

import pytest

from serving.router import artifact as artifacts
from serving.router.training import eval as router_eval
from serving.router.training import train as router_train
from serving.router.training.data import DataError, default_mmlu_dir, load_labelled, split_indices
from serving.router.training.live_scorer import Question, last_number, live_accuracy, load_questions, score

from .helpers import FakeEncoder

ROWS = [
    ("What is 2+2?", 1, 1),
    ("Prove the Riemann hypothesis in detail please", 0, 1),
    ("Capital of France?", 1, 1),
    ("Integrate x^x dx over a long and complicated domain", 0, 1),
    ("Say hi", 1, 0),
    ("Colour of sky?", 1, 1),
    ("Explain quantum chromodynamics thoroughly", 0, 1),
    ("1+1?", 0, 0),
] * 3


@pytest.fixture()
def csv_file(tmp_path):
    p = tmp_path / "labels.csv"
    lines = ["prompt,weak_correct,strong_correct,extra"] + [
        f'"{q}",{w},{"true" if s else "false"},x' for q, w, s in ROWS
    ]
    p.write_text("\n".join(lines) + "\n")
    return p


def test_load_generic_csv_and_split(csv_file):
    ds = load_labelled(csv_file)
    assert len(ds) == 24 and ds.weak_correct.sum() == 12 and ds.strong_correct.sum() == 18 and len(ds.sha256) == 64
    tr, te = split_indices(100)
    assert len(te) == 20 and not set(tr) & set(te) and (split_indices(100)[1] == te).all()


def test_load_routellm_file_drops_contaminated(tmp_path):
    f = tmp_path / "mmlu_x.csv"
    f.write_text('prompt,mistralai/Mixtral-8x7B-Instruct-v0.1,gpt-4-1106-preview\n"q1",True,False\n"q2",False,True\n')
    (tmp_path / "contaminated_prompts.jsonl").write_text(json.dumps({"eval_prompt": "q2"}) + "\n")
    ds = load_labelled(f)
    assert ds.prompts == ("q1",) and ds.weak_correct.tolist() == [True]
    assert len(load_labelled(tmp_path)) == 1


@pytest.mark.parametrize(
    "content, match",
    [
        ("prompt,weak\nq,1\n", "missing column"),
        ("prompt,weak_correct,strong_correct\nq,maybe,1\n", "boolean"),
        ("prompt,weak_correct,strong_correct\n", "no rows"),
    ],
)
def test_bad_csv(tmp_path, content, match):
    (tmp_path / "b.csv").write_text(content)
    with pytest.raises(DataError, match=match):
        load_labelled(tmp_path / "b.csv")
    with pytest.raises(DataError, match="no such"):
        load_labelled(tmp_path / "missing.csv")


def test_eval_command_on_fixture(csv_file, tmp_path, capsys):
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    rc = router_eval.main(
        [
            "--data",
            str(csv_file),
            "--out-json",
            str(out_json),
            "--out-png",
            str(out_png),
            "--n-boot",
            "50",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        encoder_factory=FakeEncoder,
    )
    assert rc == 0 and out_png.stat().st_size > 1000
    rep = json.loads(out_json.read_text())
    assert rep["split"] == "all" and rep["n"] == 24 and set(rep["routers"]) == set(router_eval.ROUTERS)
    oracle = rep["routers"]["oracle"]
    assert oracle["apgr"]["value"] > 1 and oracle["cpt80"]["value"] <= rep["routers"]["random"]["cpt80"]["ci"][1]
    assert "learned" in capsys.readouterr().out
    assert router_eval.main(["--data", str(csv_file), "--policy", "magic"]) == 2
    assert router_eval.main(["--data", str(tmp_path / "nope.csv"), "--policy", "random"]) == 1


def test_train_command_on_fixture(csv_file, tmp_path):
    rc = router_train.main(
        ["--data", str(csv_file), "--out-dir", str(tmp_path), "--name", "t", "--cache-dir", str(tmp_path / "c")],
        encoder_factory=FakeEncoder,
    )
    assert rc == 0
    art = artifacts.load(tmp_path / "t.npz", tmp_path / "t.json")
    assert art.metadata["training"]["n_rows"] == 24 and len(art.score_quantiles) == 101


@pytest.mark.skipif(
    not default_mmlu_dir().exists(),
    reason=f"RouteLLM MMLU data not found at {default_mmlu_dir()} (set PETIT_ROUTER_DATA)",
)
def test_real_data_matches_the_artifact():
    from serving.router.training.sources import load_grouped

    ds = load_labelled(default_mmlu_dir())
    assert len(ds) == 14042 - 5
    training = artifacts.load().metadata["training"]
    assert training["data_sha256"] == load_grouped().data.sha256  # `petit router train --data all`
    assert "calibration questions left out" in training["source"]


def test_live_questions_file():
    qs = load_questions()
    assert len(qs) >= 100 and {q.kind for q in qs} == {"exact", "numeric", "contains"}
    assert len({q.question for q in qs}) == len(qs)


@pytest.mark.parametrize(
    "reply, q, ok",
    [
        ("12", Question("7+5?", "12", "numeric"), True),
        ("7 + 5 = 12.", Question("7+5?", "12", "numeric"), True),
        ("The answer is 1,024", Question("2^10?", "1024", "numeric"), True),
        ("0.75", Question("?", "0.75", "numeric"), True),
        ("-3", Question("?", "-3", "numeric"), True),
        ("12 or 13? I think 13", Question("?", "12", "numeric"), False),
        ("no idea", Question("?", "12", "numeric"), False),
        ("Paris.", Question("Capital?", "Paris", "contains"), True),
        ("The capital is Lyon", Question("Capital?", "Paris", "contains"), False),
        ("Leonardo da Vinci painted it", Question("?", "Leonardo|da Vinci", "contains"), True),
        ("Blue.", Question("?", "blue", "exact"), True),
        ('"blue"', Question("?", "blue", "exact"), True),
        ("Answer: blue", Question("?", "blue", "exact"), True),
        ("blue\nBecause you asked.", Question("?", "blue", "exact"), True),
        ("light blue", Question("?", "blue", "exact"), False),
        ("", Question("?", "blue", "exact"), False),
    ],
)
def test_scorer(reply, q, ok):
    assert score(reply, q) is ok


def test_scorer_helpers_and_errors():
    assert last_number("a 3 b 4.5") == 4.5 and last_number("none") is None
    assert live_accuracy(["12", "x"], [Question("a", "12", "numeric"), Question("b", "y", "exact")]) == 0.5
    with pytest.raises(ValueError):
        live_accuracy([], [])
    with pytest.raises(ValueError):
        Question("q", "a", "fuzzy")
    with pytest.raises(ValueError):
        Question("q", "twelve", "numeric")


def test_load_questions_reports_line(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text('{"question": "a", "answer": "1", "kind": "numeric"}\n{"question": "b"}\n')
    with pytest.raises(ValueError, match=":2:"):
        load_questions(p)
