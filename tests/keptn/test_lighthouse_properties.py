"""Properties of lighthouse scoring that must hold for every SLO, checked with hypothesis.

Deterministic (``derandomize``) and small, so that the suite stays fast and repeatable.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from keptn.lighthouse import IndicatorValue, apply_sli_outcome, evaluate, go_float, percentile
from keptn.lighthouse_numbers import parse_go_float
from keptn.slo import SLO, CriteriaSet, InvalidCriterionError, Objective, TotalScore, parse_criterion

FAST = settings(max_examples=40, deadline=None, derandomize=True, database=None)

OPERATORS = ("<", "<=", "=", ">=", ">")
criterion_texts = st.builds(
    lambda operator, sign, number, percent: f"{operator}{sign}{number}{percent}",
    st.sampled_from(OPERATORS),
    st.sampled_from(("", "", "+", "-")),
    st.integers(min_value=0, max_value=100),
    st.sampled_from(("", "", "%")),
)
criteria_sets = st.lists(
    st.builds(CriteriaSet, criteria=st.lists(criterion_texts, min_size=1, max_size=3)), min_size=1, max_size=2
)


@st.composite
def scenarios(
    draw: st.DrawFn, *, key_slis: bool = True
) -> tuple[SLO, list[IndicatorValue], list[dict[str, Any]]]:
    """An SLO with positive weights, SLI values for some objectives and a few previous evaluations."""
    count = draw(st.integers(min_value=1, max_value=5))
    objectives = []
    values = []
    for index in range(count):
        sli = f"sli{index}"
        informational = draw(st.booleans()) and draw(st.booleans())
        objectives.append(
            Objective(
                sli=sli,
                pass_=[] if informational else draw(criteria_sets),
                warning=draw(st.one_of(st.just([]), criteria_sets)),
                weight=draw(st.integers(min_value=1, max_value=5)),
                key_sli=key_slis and draw(st.booleans()),
            )
        )
        presence = draw(st.sampled_from(("ok", "ok", "ok", "failed", "missing")))
        if presence != "missing":
            number = draw(st.floats(min_value=0, max_value=150, allow_nan=False))
            values.append(IndicatorValue(metric=sli, value=number, success=presence == "ok"))
    history = [
        {
            "result": "pass",
            "evaluation": {
                "indicatorResults": [
                    {"value": {"metric": f"sli{index}", "value": value, "success": True}}
                    for index, value in enumerate(draw(st.lists(st.integers(0, 150), max_size=count)))
                ]
            },
        }
        for _ in range(draw(st.integers(min_value=0, max_value=2)))
    ]
    pass_threshold = draw(st.integers(min_value=0, max_value=100))
    warning_threshold = draw(st.one_of(st.just(""), st.integers(0, pass_threshold).map(lambda n: f"{n}%")))
    slo = SLO(
        objectives=objectives, total_score=TotalScore(pass_=f"{pass_threshold}%", warning=warning_threshold)
    )
    return slo, values, history


@FAST
@given(scenarios())
def test_score_is_between_0_and_100(scenario):
    data = evaluate(*scenario)
    assert data["status"] == "succeeded"
    assert 0 <= data["evaluation"]["score"] <= 100


@FAST
@given(scenarios())
def test_every_objective_gets_one_result_in_order(scenario):
    slo, values, history = scenario
    results = evaluate(slo, values, history)["evaluation"]["indicatorResults"]
    assert [result["value"]["metric"] for result in results] == [
        objective.sli for objective in slo.objectives
    ]
    for objective, result in zip(slo.objectives, results, strict=True):
        assert (result["status"] == "info") == (not objective.pass_)
        assert result["status"] in {"pass", "warning", "fail", "info"}
        expected = {"pass": objective.weight, "warning": 0.5 * objective.weight}.get(result["status"], 0)
        assert result["score"] == expected
        if not result["value"]["success"]:
            assert result["status"] in {"fail", "info"}


@FAST
@given(scenarios())
def test_score_is_the_weighted_share_of_scored_objectives(scenario):
    slo, values, history = scenario
    data = evaluate(slo, values, history)
    maximum = sum(objective.weight for objective in slo.objectives if objective.pass_)
    if maximum == 0:
        assert data["evaluation"]["score"] == 100
        return
    achieved = sum(
        result["score"] for result in data["evaluation"]["indicatorResults"] if result["passTargets"]
    )
    assert data["evaluation"]["score"] == 100.0 * (achieved / maximum)


@FAST
@given(scenarios(), st.integers(min_value=1, max_value=5))
def test_adding_a_passing_objective_never_lowers_the_score(scenario, weight):
    slo, values, history = scenario
    extra = Objective(sli="extra", pass_=[CriteriaSet(criteria=["<=10"])], weight=weight)
    more = slo.model_copy(update={"objectives": [*slo.objectives, extra]})
    before = evaluate(slo, values, history)["evaluation"]["score"]
    after = evaluate(more, [*values, IndicatorValue(metric="extra", value=0, success=True)], history)
    assert after["evaluation"]["score"] >= before


@FAST
@given(scenarios(key_slis=False))
def test_result_follows_the_thresholds_when_no_key_sli_failed(scenario):
    slo, values, history = scenario
    data = evaluate(slo, values, history)
    score = data["evaluation"]["score"]
    assert slo.total_score is not None
    pass_threshold = float(slo.total_score.pass_.rstrip("%"))
    assert (data["result"] == "pass") == (score >= pass_threshold)
    if slo.total_score.warning:
        warning_threshold = float(slo.total_score.warning.rstrip("%"))
        assert (data["result"] == "warning") == (warning_threshold <= score < pass_threshold)
    else:
        assert data["result"] in {"pass", "fail"}
    assert data["result"] == data["evaluation"]["result"]


@FAST
@given(scenarios())
def test_a_failed_key_sli_always_fails_the_evaluation(scenario):
    slo, values, history = scenario
    data = evaluate(slo, values, history)
    key_failed = any(
        objective.key_sli and result["status"] == "fail"
        for objective, result in zip(slo.objectives, data["evaluation"]["indicatorResults"], strict=True)
    )
    if key_failed:
        assert data["result"] == "fail"
        assert data["message"].startswith("Evaluation failed due to key_sli objective '")


@FAST
@given(scenarios())
def test_evaluate_does_not_change_its_inputs_and_is_repeatable(scenario):
    slo, values, history = scenario
    values_before, history_before = list(values), copy.deepcopy(history)
    first = evaluate(slo, values, history)
    assert values == values_before and history == history_before
    assert evaluate(slo, values, history) == first


@FAST
@given(scenarios(), st.sampled_from(("pass", "fail", "warning")), st.text(max_size=10))
def test_a_failed_get_sli_fails_and_keeps_the_score(scenario, sli_result, message):
    data = evaluate(*scenario)
    changed = apply_sli_outcome(data, sli_result, message)
    assert changed["evaluation"] == data["evaluation"]
    assert changed["result"] == ("fail" if sli_result == "fail" else data["result"])
    assert apply_sli_outcome(changed, sli_result, message) == changed


@FAST
@given(st.lists(criterion_texts, max_size=4), st.floats(min_value=-1e6, max_value=1e6))
def test_without_history_relative_criteria_always_hold(texts, measured):
    slo = SLO(
        objectives=[Objective(sli="x", pass_=[CriteriaSet(criteria=texts)])],
        total_score=TotalScore(pass_="100"),
    )
    result = evaluate(slo, [IndicatorValue(metric="x", value=measured, success=True)], [])
    for target in result["evaluation"]["indicatorResults"][0]["passTargets"] or []:
        if parse_criterion(target["criteria"]).relative:
            assert target == {"criteria": target["criteria"], "targetValue": 0, "violated": False}


@FAST
@given(st.text(alphabet="<=>|+-%. 0123456789eEx_naif", max_size=8))
def test_criteria_parsing_only_fails_with_keptns_errors(text):
    try:
        criterion = parse_criterion(text)
    except InvalidCriterionError as exc:
        assert exc.reason in {"invalid criteria string", "could not parse criteria target value"}
    else:
        assert criterion.operator in {"<", "<=", "=", ">=", ">"}
        assert criterion.relative or not (criterion.increase or criterion.percent)


@FAST
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9), min_size=1),
    st.floats(min_value=0, max_value=1),
    st.floats(min_value=0, max_value=1),
)
def test_percentile_stays_within_the_values_and_grows_with_p(values, p, q):
    low, high = sorted((p, q))
    assert min(values) <= percentile(values, low) <= percentile(values, high) <= max(values)


@FAST
@given(st.floats(allow_nan=False))
def test_go_float_text_reads_back_as_the_same_number(value):
    text = go_float(value)
    if math.isinf(value):
        assert text in {"+Inf", "-Inf"}
        return
    parsed = parse_go_float(text)
    assert parsed is not None and parsed == value
    assert math.copysign(1.0, parsed) == math.copysign(1.0, value)
    assert not text.endswith(".0")
