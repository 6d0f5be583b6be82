"""Fitting thresholds to recorded answers; the checkable question set; calibrated state at start."""

from __future__ import annotations

import shutil

import pytest

from serving.fleet.schema import RoutingConfig
from serving.router.build import build_router
from serving.router.cascade import Confidence, prompt_kind
from serving.router.pipeline import resolve_threshold
from serving.router.state import RoutingState, cascade_thresholds
from serving.router.training.data import DataError, default_data_dir
from serving.router.training.fitting import (
    NEVER,
    Recorded,
    cascade_outcome,
    choose_margin,
    fit_thresholds,
    kind_thresholds,
    learned_outcome,
    margin_cv,
    target_accuracy,
)
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


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Q?\nA. one\nB. two\nAnswer with the letter only.", "choice"),
        ("Q?\n(A) one\n(B) two", "choice"),
        ("Q?\n  A) one\n  B) two", "choice"),
        ("What is 7 + 5? Answer with only the number.", "open"),
        ("A. Smith wrote this. Who wrote it?", "open"),  # one lettered line is not a list of options
        ("", "open"),
    ],
)
def test_prompt_kind(text, kind):
    assert prompt_kind(text) == kind


def test_state_holds_a_threshold_per_kind_and_rejects_bad_ones():
    s = RoutingState(cascade_min_mean_logprob=-0.5, cascade_min_mean_logprob_by_kind={"choice": NEVER})
    assert cascade_thresholds(s, "Q\nA. x\nB. y").min_mean_logprob == NEVER
    assert cascade_thresholds(s, "what is 2+2").min_mean_logprob == -0.5
    assert cascade_thresholds(s).min_mean_logprob == -0.5
    with pytest.raises(ValueError, match="unknown kind"):
        RoutingState(cascade_min_mean_logprob_by_kind={"code": -1.0})
    with pytest.raises(ValueError, match="<= 0"):
        RoutingState(cascade_min_mean_logprob_by_kind={"open": 0.5})


def test_fleet_config_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="cascade_min_mean_logprob_by_kind"):
        RoutingConfig(initial_state={"cascade_min_mean_logprob_by_kind": {"essay": -1.0}})
    r = build_router(RoutingConfig(initial_state={"cascade_min_mean_logprob_by_kind": {"choice": -1.0}}))
    assert r.state.get().cascade_min_mean_logprob_by_kind == {"choice": -1.0}


def kinds_rows():
    # Multiple choice: escalating never helps (the large model is right exactly where the small one is).
    # Open answers: the unsure small answers are wrong and the large model fixes them.
    out = [Recorded(i % 2 == 0, i % 2 == 0, Confidence(-0.5 - i / 10, -1.0, 1), kind="choice") for i in range(10)]
    out += [Recorded(True, True, Confidence(-0.1, -0.2, 3), kind="open") for _ in range(5)]
    out += [Recorded(False, True, Confidence(-1.0 - i / 10, -2.0, 3), kind="open") for i in range(5)]
    return out


def test_fit_per_kind_escalates_only_where_the_large_model_helps():
    o = fit_thresholds(kinds_rows(), "cascade", frac=1.0, max_large_share=0.5)
    by_kind = kind_thresholds(o.params)
    assert by_kind["choice"] == NEVER and -1.0 < by_kind["open"] <= -0.1
    # every unsure open answer escalated, nothing else: 15 right of 20 with a quarter of the calls large
    assert o.accuracy == pytest.approx(0.75) and o.large_share == pytest.approx(0.25)
    # one threshold for both kinds cannot do as well within the same share
    single = [cascade_outcome(kinds_rows(), t, NEVER) for t in (-0.3, -0.6, -0.9, -1.2)]
    assert all(s.accuracy < o.accuracy or s.large_share > o.large_share for s in single)


def test_margin_demands_more_than_the_goal():
    rows = kinds_rows()
    plain = fit_thresholds(rows, "cascade", frac=0.3, max_large_share=1.0)
    safe = fit_thresholds(rows, "cascade", frac=0.3, max_large_share=1.0, margin_se=2.0)
    assert safe.accuracy > plain.accuracy and safe.large_share > plain.large_share


def test_margin_is_chosen_by_cross_validation_inside_calibration():
    cv = margin_cv(kinds_rows() * 6, frac=0.6, max_large_share=0.5, folds=3)
    assert set(cv) == {"0.0", "1.0", "2.0", "3.0"}
    assert all(0.0 <= v["folds_reaching_goal"] <= 1.0 for v in cv.values())
    assert choose_margin({"0.0": {"folds_reaching_goal": 0.6}, "1.0": {"folds_reaching_goal": 1.0},
                          "2.0": {"folds_reaching_goal": 1.0}}) == 1.0  # fmt: skip
    assert choose_margin({"0.0": {"folds_reaching_goal": 0.2}, "1.0": {"folds_reaching_goal": 0.8}}) == 1.0
