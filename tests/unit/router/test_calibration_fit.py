"""Fitting thresholds to recorded answers; the checkable question set; calibrated state at start."""

from __future__ import annotations

import shutil

import pytest

from serving.fleet.schema import RoutingConfig
from serving.router.build import build_router
from serving.router.cascade import Confidence
from serving.router.pipeline import resolve_threshold
from serving.router.state import RoutingState
from serving.router.training.data import DataError, default_data_dir
from serving.router.training.fitting import Recorded, cascade_outcome, fit_thresholds, learned_outcome, target_accuracy
from serving.router.training.live_scorer import Question, first_letter, score
from serving.router.training.questions import (
    FILES,
    arithmetic_questions,
    choice_questions,
    question_set,
    split_questions,
)


def rows():
    # 10 questions: the small model is right and sure on 5, wrong and unsure on 4, wrong but sure on 1;
    # the large one is right on all but one. Scores rank the unsure ones highest.
    out = [Recorded(True, True, Confidence(-0.05, -0.1, 2), score=0.1) for _ in range(5)]
    out += [Recorded(False, True, Confidence(-2.0 - i / 10, -3.0, 2), score=0.9 - i / 10) for i in range(4)]
    out += [Recorded(False, False, Confidence(-0.1, -0.2, 2), score=0.5)]
    return out


def test_outcomes_count_escalations_as_large_calls():
    o = cascade_outcome(rows(), -0.8, -5.0)
    assert o.accuracy == pytest.approx(0.9) and o.large_share == pytest.approx(0.4)
    assert o.calls_per_question == pytest.approx(1.4)  # an escalated question is paid twice
    assert learned_outcome(rows(), 0.6).large_share == pytest.approx(0.4)


def test_fit_takes_the_fewest_large_calls_that_reach_the_target():
    assert target_accuracy(rows(), 0.6) == pytest.approx(0.5 + 0.6 * 0.4)
    c = fit_thresholds(rows(), "cascade", frac=0.6)
    assert c.accuracy >= 0.74 and c.large_share == pytest.approx(0.3)  # 3 of the 4 unsure ones suffice
    lr = fit_thresholds(rows(), "learned", frac=0.6)
    assert lr.accuracy >= 0.74 and lr.large_share == pytest.approx(0.3)
    with pytest.raises(ValueError):
        fit_thresholds(rows(), "cheapest_fit")
    with pytest.raises(ValueError):
        fit_thresholds([], "cascade")


def test_fit_falls_back_to_the_best_within_the_share_cap():
    hard = [Recorded(False, True, Confidence(-0.1, -0.1, 1), score=0.5) for _ in range(10)]
    o = fit_thresholds(
        hard, "cascade", frac=0.9, max_large_share=0.4
    )  # confidence tells nothing: no setting reaches 0.9
    assert o.large_share <= 0.4


@pytest.mark.parametrize(
    "reply, ok", [("B", True), ("B.", True), ("(B) Rome", True), ("Answer: B", True), ("I think B", True),
                  ("A", False), ("", False), ("b", False)],
)  # fmt: skip
def test_choice_answers(reply, ok):
    q = Question("Capital of Italy?\nA. Paris\nB. Rome\nAnswer with the letter only.", "B", "choice")
    assert score(reply, q) is ok


def test_choice_only_reads_listed_letters():
    assert first_letter("I guess D", "ABCD") == "D" and first_letter("I guess", "ABCD") is None
    with pytest.raises(ValueError):
        Question("q", "K", "choice")


def test_split_is_fixed_and_disjoint():
    cal, rep = split_questions(100)
    assert len(rep) == 40 and not set(cal) & set(rep)
    assert (split_questions(100)[1] == rep).all()


def test_initial_state_comes_from_the_fleet_file_and_the_plan_share_caps_a_threshold():
    r = build_router(RoutingConfig(initial_state={"threshold": 0.2, "cascade_min_mean_logprob": -0.3}))
    s = r.state.get()
    assert s.threshold == 0.2 and s.cascade_min_mean_logprob == -0.3
    quantiles = [i / 100 for i in range(101)]  # scores uniform in [0, 1]
    assert resolve_threshold(RoutingState(threshold=0.2), quantiles, 0.5) == 0.2
    capped = resolve_threshold(RoutingState(threshold=0.2, strong_share=0.1), quantiles, 0.5)
    assert capped == pytest.approx(0.9, abs=0.02)  # under scarcity the plan's 10 % wins
    assert resolve_threshold(RoutingState(threshold=0.95, strong_share=0.5), quantiles, 0.5) == 0.95


needs_data = pytest.mark.skipif(not (default_data_dir() / "mmlu_pro").exists(), reason="shared router data missing")


@needs_data
def test_default_questions_are_checked_by_checksum(tmp_path):
    qs = choice_questions()
    assert len(qs) >= 500 and {t for t, _ in qs} >= {"arc_challenge", "mmlu", "mmlu_pro"}
    assert all(q.kind == "choice" for _, q in qs)
    for rel in FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(default_data_dir() / rel, tmp_path / rel)
    with (tmp_path / list(FILES)[0]).open("ab") as fh:
        fh.write(b"\n")
    with pytest.raises(DataError, match="sha256"):
        choice_questions(tmp_path)


def test_arithmetic_questions_are_checkable_and_fixed():
    qs = arithmetic_questions(per_kind=3)
    assert len(qs) == 24 and qs == arithmetic_questions(per_kind=3)
    for _, q in qs:
        a = q.question.split("What is ")[-1].split("?")[0] if "What is" in q.question else None
        if a is not None:
            assert score(str(eval(a)), q)  # noqa: S307 - our own generated arithmetic
    with pytest.raises(ValueError, match="unknown question set"):
        question_set("trivia")
