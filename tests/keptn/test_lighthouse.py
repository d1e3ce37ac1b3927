"""Lighthouse scoring (spec §4.4-§4.6): every rule, Keptn's messages and Keptn's own examples."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from keptn.lighthouse import (
    NO_OBJECTIVES_MESSAGE,
    ComparisonRules,
    IndicatorValue,
    aborted_sli_outcome,
    aggregate,
    apply_comparison_rules,
    apply_sli_outcome,
    comparison_rules,
    errored_outcome,
    errored_sli_outcome,
    evaluate,
    go_float,
    no_provider_outcome,
    no_slo_outcome,
    percentile,
    to_go_json_numbers,
)
from keptn.lighthouse_comparison import previous_values, previous_values_by_metric
from keptn.slo import parse_slo


def ok(metric: str, value: float, message: str = "") -> IndicatorValue:
    return IndicatorValue(metric=metric, value=value, success=True, message=message)


def failed(metric: str, message: str) -> IndicatorValue:
    return IndicatorValue(metric=metric, success=False, message=message)


def previous_evaluation(
    values: dict[str, float], *, result: str = "pass", id: str | None = None
) -> dict[str, Any]:
    """An evaluation.finished data object whose indicator results carry ``values``."""
    entry: dict[str, Any] = {
        "result": result,
        "evaluation": {
            "result": result,
            "indicatorResults": [
                {"status": "pass", "value": {"metric": metric, "value": value, "success": True}}
                for metric, value in values.items()
            ],
        },
    }
    if id is not None:
        entry["id"] = id
    return entry


def by_sli(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {result["value"]["metric"]: result for result in data["evaluation"]["indicatorResults"]}


def target(criteria: str, value: float, violated: bool) -> dict[str, Any]:
    return {"criteria": criteria, "targetValue": value, "violated": violated}


WORKED_EXAMPLE = """\
objectives:
  - sli: a
    pass: [{criteria: ["<10"]}]
    warning: [{criteria: ["<20"]}]
  - sli: b
    weight: 2
    pass: [{criteria: ["<10"]}]
    warning: [{criteria: ["<20"]}]
  - sli: c
    pass: [{criteria: ["<10"]}]
    warning: [{criteria: ["<20"]}]
total_score: {pass: "90%", warning: "50%"}
"""


def test_worked_example_pass_warning_fail_with_weights_1_2_1_scores_50():
    data = evaluate(parse_slo(WORKED_EXAMPLE), [ok("a", 5), ok("b", 15), ok("c", 25)], [])
    results = by_sli(data)
    assert [(r["status"], r["score"]) for r in results.values()] == [("pass", 1), ("warning", 1), ("fail", 0)]
    assert data["evaluation"]["score"] == 50
    assert data["result"] == data["evaluation"]["result"] == "warning"
    assert data["status"] == "succeeded"
    assert data["message"] == (
        "Evaluation returned a warning: the calculated score of 50 is close to the warning target value of 50"
    )


def test_indicator_result_has_lighthouses_shape():
    data = evaluate(parse_slo(WORKED_EXAMPLE), [ok("a", 5), ok("b", 15), ok("c", 25)], [])
    assert data["evaluation"]["indicatorResults"][1] == {
        "score": 1.0,
        "value": {"metric": "b", "value": 15.0, "comparedValue": 0.0, "success": True, "message": ""},
        "displayName": "",
        "passTargets": [target("<10", 10, True)],
        "warningTargets": [target("<20", 20, False)],
        "keySli": False,
        "status": "warning",
    }
    assert set(data) == {"result", "status", "message", "evaluation"}
    assert set(data["evaluation"]) == {"result", "score", "indicatorResults", "comparedEvents"}
    assert data["evaluation"]["comparedEvents"] is None  # Go's nil slice


# Keptn's lighthouse integration test (lighthouse-service main_test.go): the stored previous
# evaluation is exactly what lighthouse produced for these values compared with themselves.
KEPTN_QG_SLO = """\
---
spec_version: "0.1.1"
comparison:
  aggregate_function: "avg"
  compare_with: "single_result"
  include_result_with_score: "pass"
  number_of_comparison_results: 1
filter:
objectives:
  - sli: "response_time_p95"
    key_sli: false
    pass:             # pass if (relative change <= 75% AND absolute value is < 75ms)
      - criteria:
          - "<=+75%"  # relative values require a prefixed sign (plus or minus)
          - "<800"     # absolute values only require a logical operator
    warning:          # if the response time is below 200ms, the result should be a warning
      - criteria:
          - "<=1000"
          - "<=+100%"
    weight: 1
  - sli: "throughput"
    pass:
      - criteria:
          - "<=+100%"
          - ">=-80%"
  - sli: "error_rate"
total_score:
  pass: "100%"
  warning: "65%"
"""

KEPTN_QG_RESULTS = [
    {
        "displayName": "",
        "keySli": False,
        "passTargets": [target("<=+75%", 350, False), target("<800", 800, False)],
        "score": 1,
        "status": "pass",
        "value": {
            "comparedValue": 200,
            "metric": "response_time_p95",
            "success": True,
            "value": 200,
            "message": "",
        },
        "warningTargets": [target("<=1000", 1000, False), target("<=+100%", 400, False)],
    },
    {
        "displayName": "",
        "keySli": False,
        "passTargets": [target("<=+100%", 400, False), target(">=-80%", 40, False)],
        "score": 1,
        "status": "pass",
        "value": {"comparedValue": 200, "metric": "throughput", "success": True, "value": 200, "message": ""},
        "warningTargets": None,
    },
    {
        "displayName": "",
        "keySli": False,
        "passTargets": None,
        "score": 0,
        "status": "info",
        "value": {"comparedValue": 0, "metric": "error_rate", "success": True, "value": 0, "message": ""},
        "warningTargets": None,
    },
]


def test_keptns_quality_gate_example_is_reproduced():
    slo = parse_slo(KEPTN_QG_SLO)
    stored = {
        "result": "pass",
        "id": "c09c80ae-a70d-4f1f-b2ff-f09f4ca38bdd",
        "evaluation": {"result": "pass", "score": 100, "indicatorResults": KEPTN_QG_RESULTS},
    }
    history = apply_comparison_rules(comparison_rules(slo), [stored])
    data = evaluate(slo, [ok("response_time_p95", 200), ok("throughput", 200), ok("error_rate", 0)], history)
    assert data["evaluation"]["indicatorResults"] == KEPTN_QG_RESULTS
    assert data["evaluation"]["score"] == 100
    assert data["evaluation"]["comparedEvents"] == ["c09c80ae-a70d-4f1f-b2ff-f09f4ca38bdd"]
    assert (data["result"], data["status"], data["message"]) == ("pass", "succeeded", "")


# --- §4.6 edge cases -------------------------------------------------------------------------


def test_zero_objectives_fail_with_keptns_message():
    slo = parse_slo("objectives:\ntotal_score: {pass: '90%', warning: '75%'}\n")
    data = evaluate(slo, [failed("no metric", "no SLIs were requested")], [previous_evaluation({}, id="e1")])
    assert data == {
        "result": "fail",
        "status": "succeeded",
        "message": NO_OBJECTIVES_MESSAGE,
        "evaluation": {"result": "fail", "score": 0.0, "indicatorResults": None, "comparedEvents": ["e1"]},
    }
    assert NO_OBJECTIVES_MESSAGE == "lighthouse failed because no SLO objective was provided"


def test_zero_objectives_without_total_score_is_an_error_about_the_target():
    # Keptn computes the score before it looks at the objectives: the missing target wins.
    data = evaluate(parse_slo(""), [], [])
    assert (data["status"], data["result"], data["message"]) == ("errored", "fail", "no target score defined")


def test_only_info_objectives_pass_with_100_whatever_the_values():
    slo = parse_slo("objectives:\n  - sli: a\n    warning: [{criteria: ['<1', '<=+5%']}]\n  - sli: b\n")
    data = evaluate(slo, [ok("a", 50), failed("b", "timeout")], [previous_evaluation({"a": 10})])
    assert (data["result"], data["status"], data["evaluation"]["score"]) == ("pass", "succeeded", 100)
    a, b = data["evaluation"]["indicatorResults"]
    assert (a["status"], a["score"], b["status"], b["score"]) == ("info", 0, "info", 0)
    # Warning criteria of info objectives are listed unevaluated: violated, relative ones at the baseline.
    assert a["passTargets"] is None
    assert a["warningTargets"] == [target("<1", 1, True), target("<=+5%", 10, True)]
    assert a["value"]["comparedValue"] == 0
    assert b["value"] == {
        "metric": "b",
        "value": 0,
        "comparedValue": 0,
        "success": False,
        "message": "timeout",
    }


def test_missing_sli_fails_its_objective_with_all_targets_violated():
    slo = parse_slo(
        "objectives:\n"
        "  - sli: rt\n"
        "    pass: [{criteria: ['<=+10%', '<600']}, {criteria: ['bad', '=-5']}]\n"
        "    warning: [{criteria: ['<=800']}]\n"
        "  - sli: tp\n"
        "    pass: [{criteria: ['>0']}]\n"
        "total_score: {pass: '50%'}\n"
    )
    data = evaluate(slo, [ok("tp", 10)], [previous_evaluation({"rt": 100}), previous_evaluation({"rt": 300})])
    rt = by_sli(data)["rt"]
    assert rt["status"] == "fail" and rt["score"] == 0
    assert rt["value"] == {
        "metric": "rt",
        "value": 0,
        "comparedValue": 0,
        "success": False,
        "message": "no value received from SLI provider",
    }
    # Relative targets show the bare baseline (avg 200), without +10% or -5; bad criteria are left out.
    assert rt["passTargets"] == [
        target("<=+10%", 200, True),
        target("<600", 600, True),
        target("=-5", 200, True),
    ]
    assert rt["warningTargets"] == [target("<=800", 800, True)]
    assert data["evaluation"]["score"] == 50 and data["result"] == "pass"


def test_failed_sli_keeps_the_providers_value_and_message():
    slo = parse_slo("objectives: [{sli: rt, pass: [{criteria: ['<=+10%']}]}]\ntotal_score: {pass: '90%'}\n")
    provider_value = IndicatorValue(metric="rt", value=12.5, success=False, message="query failed")
    data = evaluate(slo, [provider_value], [])
    rt = by_sli(data)["rt"]
    assert rt["status"] == "fail"
    assert rt["value"] == {
        "metric": "rt",
        "value": 12.5,
        "comparedValue": 0,
        "success": False,
        "message": "query failed",
    }
    assert rt["passTargets"] == [target("<=+10%", 0, True)]
    assert data["result"] == "fail"
    assert (
        data["message"] == "Evaluation failed since the calculated score of 0 is below the target value of 90"
    )


KEY_SLI_SLO = """\
objectives:
  - sli: rt
    displayName: Response time
    key_sli: true
    pass: [{criteria: ["<100"]}]
    warning: [{criteria: ["<200"]}]
  - sli: a
    weight: 9
    pass: [{criteria: ["<1"]}]
total_score: {pass: "90%", warning: "75%"}
"""


def test_failed_key_sli_fails_the_evaluation_whatever_the_score():
    data = evaluate(parse_slo(KEY_SLI_SLO), [ok("rt", 500, "slow"), ok("a", 0)], [])
    assert data["evaluation"]["score"] == 90
    assert data["result"] == data["evaluation"]["result"] == "fail"
    assert data["message"] == "Evaluation failed due to key_sli objective 'Response time': slow"
    assert by_sli(data)["rt"]["keySli"] is True


def test_missing_key_sli_names_the_provider_message():
    data = evaluate(parse_slo(KEY_SLI_SLO), [ok("a", 0)], [])
    assert data["result"] == "fail"
    assert data["message"] == (
        "Evaluation failed due to key_sli objective 'Response time': no value received from SLI provider"
    )


def test_key_sli_message_prints_the_display_name_even_when_empty():
    slo = parse_slo(
        "objectives: [{sli: rt, key_sli: true, pass: [{criteria: ['<1']}]}]\ntotal_score: {pass: '0'}\n"
    )
    data = evaluate(slo, [failed("rt", "boom")], [])
    assert data["message"] == "Evaluation failed due to key_sli objective '': boom"


def test_first_failed_key_sli_is_named():
    slo = parse_slo(
        "objectives:\n"
        "  - {sli: x, displayName: X, key_sli: true, pass: [{criteria: ['<1']}]}\n"
        "  - {sli: y, displayName: Y, key_sli: true, pass: [{criteria: ['<1']}]}\n"
        "total_score: {pass: '0'}\n"
    )
    data = evaluate(slo, [failed("x", "x down"), failed("y", "y down")], [])
    assert data["message"] == "Evaluation failed due to key_sli objective 'X': x down"


def test_key_sli_in_warning_does_not_fail_the_evaluation():
    data = evaluate(parse_slo(KEY_SLI_SLO), [ok("rt", 150), ok("a", 0)], [])
    assert by_sli(data)["rt"]["status"] == "warning"
    assert data["evaluation"]["score"] == 95
    assert data["result"] == "pass"


def test_get_sli_result_fail_fails_the_evaluation_but_keeps_its_score():
    slo = parse_slo("objectives: [{sli: a, pass: [{criteria: ['<1']}]}]\ntotal_score: {pass: '90%'}\n")
    computed = evaluate(slo, [ok("a", 0)], [])
    original = copy.deepcopy(computed)
    data = apply_sli_outcome(computed, "fail", "some-silly-msg")
    assert computed == original
    assert (data["result"], data["status"]) == ("fail", "succeeded")
    assert data["message"] == "lighthouse failed because SLI failed with message some-silly-msg"
    assert (data["evaluation"]["result"], data["evaluation"]["score"]) == ("pass", 100)
    assert apply_sli_outcome(computed, "pass", "whatever") == computed


def test_no_objectives_message_takes_precedence_over_a_failed_get_sli():
    data = evaluate(parse_slo("objectives: []\ntotal_score: {pass: '90%'}\n"), [], [])
    assert apply_sli_outcome(data, "fail", "no SLIs were requested")["message"] == NO_OBJECTIVES_MESSAGE


def test_failed_get_sli_does_not_touch_errored_outcomes():
    errored = errored_outcome("no target score defined")
    assert apply_sli_outcome(errored, "fail", "x") == errored


def test_first_run_passes_relative_criteria_with_target_zero():
    slo = parse_slo(
        "objectives: [{sli: rt, pass: [{criteria: ['<=+10%', '>=-10%', '=+0']}]}]\n"
        "total_score: {pass: '100'}\n"
    )
    data = evaluate(slo, [ok("rt", 12345)], [])
    rt = by_sli(data)["rt"]
    assert rt["status"] == "pass"
    assert rt["passTargets"] == [
        target("<=+10%", 0, False),
        target(">=-10%", 0, False),
        target("=+0", 0, False),
    ]
    assert rt["value"]["comparedValue"] == 0
    assert data["result"] == "pass" and data["evaluation"]["score"] == 100


def test_previous_values_that_failed_do_not_count_as_history():
    slo = parse_slo("objectives: [{sli: rt, pass: [{criteria: ['<=+10%']}]}]\ntotal_score: {pass: '100'}\n")
    history = [
        {
            "result": "pass",
            "evaluation": {"indicatorResults": [{"value": {"metric": "rt", "value": 1, "success": False}}]},
        }
    ]
    rt = by_sli(evaluate(slo, [ok("rt", 500)], history))["rt"]
    assert rt["passTargets"] == [target("<=+10%", 0, False)]
    assert rt["status"] == "pass"


def _indicator(metric: Any, value: Any, success: Any = True) -> dict[str, Any]:
    return {"status": "pass", "value": {"metric": metric, "value": value, "success": success}}


def test_a_metric_listed_twice_in_one_previous_evaluation_counts_both_values():
    slo = parse_slo(
        "objectives:\n"
        "  - {sli: rt, pass: [{criteria: ['<=+10%']}]}\n"
        "  - {sli: rt, pass: [{criteria: ['<=+50%']}]}\n"
        "total_score: {pass: '90%'}\n"
    )
    history = [
        {
            "result": "pass",
            "evaluation": {"indicatorResults": [_indicator("rt", 100), _indicator("rt", 200)]},
        },
        {"result": "pass", "evaluation": {"indicatorResults": [_indicator("rt", 600)]}},
    ]
    first, second = evaluate(slo, [ok("rt", 400), ok("rt", 400)], history)["evaluation"]["indicatorResults"]
    # avg(100, 200, 600) = 300, not 350 (first value only) or 400 (last value only)
    assert first["value"]["comparedValue"] == second["value"]["comparedValue"] == 300
    assert first["passTargets"] == [target("<=+10%", 330, True)]
    assert second["passTargets"] == [target("<=+50%", 450, False)]


def test_previous_values_by_metric_keeps_order_and_filters_like_previous_values():
    history: list[Any] = [
        {"evaluation": {"indicatorResults": [_indicator("a", 3), _indicator("b", 1), _indicator("a", 1.5)]}},
        "not an evaluation",
        {"evaluation": None},
        {"evaluation": {"indicatorResults": {"a": 1}}},
        {
            "evaluation": {
                "indicatorResults": [
                    None,
                    {"value": "x"},
                    _indicator("a", 9, success=False),
                    _indicator("a", 9, success="true"),
                    _indicator("a", True),
                    _indicator("a", "9"),
                    _indicator(["a"], 9),
                    _indicator(1, 9),
                    {"value": {"metric": "a", "success": True}},
                    _indicator("a", -2),
                ]
            }
        },
    ]
    index = previous_values_by_metric(history)
    assert index == {"a": [3.0, 1.5, 0.0, -2.0], "b": [1.0]}
    for name in ("a", "b", "c"):
        assert previous_values(history, name) == index.get(name, [])


@pytest.mark.parametrize(
    ("displayName", "criteria", "message"),
    [
        ("Response time", "abc", "error with Response time: invalid criteria string"),
        ("", "abc", "error with rt: invalid criteria string"),
        ("", "<abc", "error with rt: could not parse criteria target value"),
    ],
)
def test_invalid_pass_criteria_abort_the_evaluation(displayName, criteria, message):
    slo = parse_slo(
        "objectives:\n"
        "  - {sli: ok, pass: [{criteria: ['<1']}]}\n"
        f"  - {{sli: rt, displayName: '{displayName}',"
        f" pass: [{{criteria: ['<1']}}, {{criteria: ['{criteria}']}}]}}\n"
        "total_score: {pass: '90%'}\n"
    )
    data = evaluate(slo, [ok("ok", 0), ok("rt", 0)], [previous_evaluation({}, id="e1")])
    assert data == {
        "result": "fail",
        "status": "succeeded",
        "message": message,
        "evaluation": {"result": "fail", "score": 0.0, "indicatorResults": None, "comparedEvents": ["e1"]},
    }


def test_invalid_criteria_of_an_objective_without_value_do_not_abort():
    slo = parse_slo(
        "objectives: [{sli: rt, pass: [{criteria: ['abc', '<5']}]}]\ntotal_score: {pass: '90%'}\n"
    )
    rt = by_sli(evaluate(slo, [], []))["rt"]
    assert rt["passTargets"] == [target("<5", 5, True)]


def test_invalid_warning_criteria_mean_no_warning_but_do_not_abort():
    slo = parse_slo(
        "objectives:\n"
        "  - {sli: rt, pass: [{criteria: ['<1']}], warning: [{criteria: ['<100']}, {criteria: ['bad']}]}\n"
        "total_score: {pass: '90%'}\n"
    )
    rt = by_sli(evaluate(slo, [ok("rt", 50)], []))["rt"]
    assert rt["status"] == "fail"
    assert rt["warningTargets"] == [target("<100", 100, False), target("bad", 0, True)]


# --- criteria sets, warnings, scores ----------------------------------------------------------


def test_criteria_sets_are_or_of_and_and_all_targets_are_listed():
    slo = parse_slo(
        "objectives: [{sli: rt, pass: [{criteria: ['<10', '>5']}, {criteria: ['<100', '>50']}]}]\n"
        "total_score: {pass: '90%'}\n"
    )
    rt = by_sli(evaluate(slo, [ok("rt", 60)], []))["rt"]
    assert rt["status"] == "pass"
    assert rt["passTargets"] == [
        target("<10", 10, True),
        target(">5", 5, False),
        target("<100", 100, False),
        target(">50", 50, False),
    ]
    assert by_sli(evaluate(slo, [ok("rt", 30)], []))["rt"]["status"] == "fail"


def test_warning_targets_are_evaluated_even_when_pass_succeeded():
    slo = parse_slo(
        "objectives: [{sli: rt, weight: 4, pass: [{criteria: ['<10']}], warning: [{criteria: ['<5']}]}]\n"
        "total_score: {pass: '90%'}\n"
    )
    rt = by_sli(evaluate(slo, [ok("rt", 7)], []))["rt"]
    assert (rt["status"], rt["score"]) == ("pass", 4)
    assert rt["warningTargets"] == [target("<5", 5, True)]


def test_warning_is_worth_half_the_weight():
    slo = parse_slo(
        "objectives: [{sli: rt, weight: 3, pass: [{criteria: ['<10']}], warning: [{criteria: ['<20']}]}]\n"
        "total_score: {pass: '90%', warning: '50'}\n"
    )
    data = evaluate(slo, [ok("rt", 15)], [])
    assert by_sli(data)["rt"]["score"] == 1.5
    assert data["evaluation"]["score"] == 50
    assert data["result"] == "warning"


def test_score_is_an_unrounded_float_computed_as_keptn_does():
    slo = parse_slo(
        "objectives:\n"
        "  - {sli: a, weight: 2, pass: [{criteria: ['<1']}]}\n"
        "  - {sli: b, pass: [{criteria: ['<1']}]}\n"
        "total_score: {pass: '90%', warning: '60%'}\n"
    )
    data = evaluate(slo, [ok("a", 0), ok("b", 5)], [])
    # 100 * (2 / 3) in float64, the order of lighthouse's calculateScore.
    assert data["evaluation"]["score"] == 100.0 * (2 / 3) == 66.66666666666666
    assert data["message"] == (
        "Evaluation returned a warning: the calculated score of 66.66666666666666"
        " is close to the warning target value of 60"
    )


def test_objectives_whose_pass_has_no_criteria_count_in_max_score_only():
    slo = parse_slo(
        "objectives:\n"
        "  - {sli: a, pass: [{criteria: []}]}\n"
        "  - {sli: b, pass: [{criteria: ['<1']}]}\n"
        "total_score: {pass: '90%'}\n"
    )
    data = evaluate(slo, [ok("a", 0), ok("b", 0)], [])
    assert by_sli(data)["a"]["status"] == "pass" and by_sli(data)["a"]["passTargets"] is None
    assert data["evaluation"]["score"] == 50


BELOW_TARGET = "Evaluation failed since the calculated score of 75 is below the target value of "
BELOW_WARNING = "Evaluation failed since the calculated score of 75 is below the warning value of "
CLOSE_TO_WARNING = (
    "Evaluation returned a warning: the calculated score of 75 is close to the warning target value of "
)


@pytest.mark.parametrize(
    ("total_score", "status", "result", "message"),
    [
        ("{pass: '90%'}", "succeeded", "fail", BELOW_TARGET + "90"),
        ("{pass: '75'}", "succeeded", "pass", ""),
        ("{pass: 75%}", "succeeded", "pass", ""),
        ("{pass: '75.3%'}", "succeeded", "fail", BELOW_TARGET + "75.3"),
        ("{pass: '90%', warning: '75%'}", "succeeded", "warning", CLOSE_TO_WARNING + "75"),
        ("{pass: '90%', warning: '80'}", "succeeded", "fail", BELOW_WARNING + "80"),
        ("{warning: '50%'}", "errored", "fail", "no target score defined"),
        ("{pass: ''}", "errored", "fail", "no target score defined"),
        ("{pass: '90 %'}", "errored", "fail", "could not parse pass target percentage"),
        ("{pass: 'high'}", "errored", "fail", "could not parse pass target percentage"),
        ("{pass: '90%', warning: 'x'}", "errored", "fail", "could not parse warning target percentage"),
        ("{pass: '50%', warning: 'x'}", "succeeded", "pass", ""),
    ],
)
def test_total_score_thresholds_and_messages(total_score, status, result, message):
    slo = parse_slo(
        "objectives:\n"
        "  - {sli: a, weight: 3, pass: [{criteria: ['<1']}]}\n"
        "  - {sli: b, pass: [{criteria: ['<1']}]}\n"
        f"total_score: {total_score}\n"
    )
    data = evaluate(slo, [ok("a", 0), ok("b", 5)], [])
    assert (data["status"], data["result"], data["message"]) == (status, result, message)
    if status == "errored":
        assert data["evaluation"] == {
            "result": "fail",
            "score": 0.0,
            "indicatorResults": None,
            "comparedEvents": None,
        }
    else:
        assert data["evaluation"]["score"] == 75


def test_no_total_score_is_fine_when_only_info_objectives():
    data = evaluate(parse_slo("objectives: [{sli: a}]\n"), [ok("a", 1)], [])
    assert (data["result"], data["evaluation"]["score"]) == ("pass", 100)


def test_additional_slis_are_named_in_go_order_when_the_gate_passes():
    slo = parse_slo("objectives: [{sli: b, pass: [{criteria: ['<1']}]}]\ntotal_score: {pass: '90%'}\n")
    values = [ok("a", 0), ok("b", 0), ok("c", 0), ok("d", 0)]
    data = evaluate(slo, values, [])
    # Go removed "b" by moving the last value into its place: a, d, c.
    assert data["message"] == (
        "Lighthouse received additional SLIs, which are not specified as SLO: a, d, c ."
        " Please consider using them as an SLO."
    )
    assert data["result"] == "pass"


def test_additional_slis_message_is_replaced_when_the_gate_fails():
    slo = parse_slo("objectives: [{sli: b, pass: [{criteria: ['<1']}]}]\ntotal_score: {pass: '90%'}\n")
    data = evaluate(slo, [ok("extra", 0), ok("b", 5)], [])
    assert (
        data["message"] == "Evaluation failed since the calculated score of 0 is below the target value of 90"
    )


def test_additional_slis_survive_when_there_are_only_info_objectives():
    data = evaluate(parse_slo("objectives: [{sli: a}]\n"), [ok("a", 0), ok("x", 0)], [])
    assert "additional SLIs, which are not specified as SLO: x ." in data["message"]


def test_additional_slis_without_names_give_no_message():
    data = evaluate(parse_slo("objectives: [{sli: a}]\n"), [ok("", 0), ok("", 1)], [])
    assert data["message"] == ""


def test_each_value_is_used_by_one_objective_only():
    slo = parse_slo("objectives:\n  - sli: tp\n  - sli: tp\n")
    first, second = evaluate(slo, [ok("tp", 7)], [])["evaluation"]["indicatorResults"]
    assert first["value"]["value"] == 7 and first["value"]["success"] is True
    assert second["value"]["message"] == "no value received from SLI provider"


# --- comparison with previous evaluations -----------------------------------------------------


def test_compared_value_is_the_baseline_also_for_absolute_criteria():
    slo = parse_slo("objectives: [{sli: rt, pass: [{criteria: ['<600']}]}]\ntotal_score: {pass: '90%'}\n")
    history = [previous_evaluation({"rt": 100}, id="e2"), previous_evaluation({"rt": 200}, id="e1")]
    data = evaluate(slo, [ok("rt", 150)], history)
    assert by_sli(data)["rt"]["value"]["comparedValue"] == 150
    assert data["evaluation"]["comparedEvents"] == ["e2", "e1"]


@pytest.mark.parametrize(
    ("function", "baseline", "target_value", "status"),
    [
        ("avg", 20, 22.0, "fail"),
        ("p50", 20, 22.0, "fail"),
        ("p90", 30, 33.0, "pass"),
        ("p95", 30, 33.0, "pass"),
        ("max", 0, 0, "fail"),  # unknown function: baseline 0, still compared
    ],
)
def test_aggregate_function_sets_the_baseline(function, baseline, target_value, status):
    slo = parse_slo(
        "comparison: {compare_with: several_results, number_of_comparison_results: 3,"
        f" aggregate_function: {function}}}\n"
        "objectives: [{sli: rt, pass: [{criteria: ['<=+10%']}]}]\n"
        "total_score: {pass: '90%'}\n"
    )
    history = [previous_evaluation({"rt": value}) for value in (10, 20, 30)]
    rt = by_sli(evaluate(slo, [ok("rt", 25)], history))["rt"]
    assert rt["value"]["comparedValue"] == baseline
    assert rt["passTargets"] == [target("<=+10%", target_value, status == "fail")]
    assert rt["status"] == status


def test_every_indicator_of_an_included_evaluation_counts_whatever_its_own_status():
    slo = parse_slo("objectives: [{sli: rt, pass: [{criteria: ['<=+0%']}]}]\ntotal_score: {pass: '90%'}\n")
    history: list[dict[str, Any]] = [
        {
            "result": "pass",
            "evaluation": {
                "indicatorResults": [
                    {"status": "fail", "value": {"metric": "rt", "value": 40, "success": True}},
                    {"status": "pass", "value": {"metric": "other", "value": 1000, "success": True}},
                    {"status": "pass", "value": None},
                    "garbage",
                    {"status": "pass", "value": {"metric": "rt", "value": "60", "success": True}},
                ]
            },
        },
        {"result": "pass", "evaluation": {"indicatorResults": None}},
        {"result": "pass"},
        previous_evaluation({"rt": 60}),
    ]  # fmt: skip
    assert by_sli(evaluate(slo, [ok("rt", 1)], history))["rt"]["value"]["comparedValue"] == 50


def test_comparison_rules_follow_compare_with():
    def rules(comparison: str) -> ComparisonRules:
        return comparison_rules(parse_slo(comparison))

    assert rules("") == ComparisonRules(count=1, results=None)
    assert rules("comparison: {compare_with: single_result, include_result_with_score: pass}") == (
        ComparisonRules(count=1, results=("pass",))
    )
    assert rules("comparison: {compare_with: several_results, number_of_comparison_results: 5}").count == 5
    assert rules("comparison: {compare_with: several_results}").count == 3
    assert rules("comparison: {compare_with: several_results, number_of_comparison_results: -2}").count == 2
    assert rules("comparison: {include_result_with_score: pass}").count == 3  # no compare_with
    assert rules("comparison: {compare_with: Single_Result}").count == 3
    assert rules("comparison: {include_result_with_score: pass_or_warn}").results == ("pass", "warning")
    assert rules("comparison: {include_result_with_score: PASS_OR_WARN}").results == ("pass", "warning")
    assert rules("comparison: {include_result_with_score: pass_or_warning}").results is None
    assert rules("comparison: {include_result_with_score: all}").results is None


def test_apply_comparison_rules_filters_by_overall_result_and_limits_newest_first():
    previous = [
        {"id": str(index), "result": result}
        for index, result in enumerate(["fail", "warning", "pass", "pass"])
    ]
    assert apply_comparison_rules(ComparisonRules(count=3, results=None), previous) == previous[:3]
    assert apply_comparison_rules(ComparisonRules(count=1, results=("pass",)), previous) == [previous[2]]
    assert (
        apply_comparison_rules(ComparisonRules(count=5, results=("pass", "warning")), previous)
        == previous[1:]
    )
    assert apply_comparison_rules(ComparisonRules(count=0, results=None), previous) == []


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        (list(range(11)), 0.5, 5.0),
        (list(range(11)), 0.9, 9.8),
        (list(range(11)), 0.95, 10.0),
        ([3, 1, 2], 0.5, 2.0),
        ([1, 2], 0.5, 1.5),
        ([5], 0.9, 5.0),
        ([10, 20], 0.1, 10.0),
        ([], 0.5, 0.0),
    ],
)
def test_percentile_uses_keptns_formula(values, p, expected):
    assert percentile(values, p) == expected


def test_percentile_sorts_nan_first_like_go():
    assert math.isnan(percentile([1.0, math.nan, 3.0], 0.1))
    assert percentile([3.0, math.nan, 1.0], 0.95) == 3.0


@pytest.mark.parametrize(
    ("function", "expected"),
    [("avg", 7 / 3), ("p50", 2.0), ("p90", 4.0), ("p95", 4.0), ("AVG", 0.0), ("median", 0.0), ("", 0.0)],
)
def test_aggregate_functions(function, expected):
    assert aggregate([1, 2, 4], function) == expected
    assert aggregate([], function) == 0.0


def test_average_adds_in_order_as_go_does():
    values = [0.1] * 10
    total = 0.0
    for value in values:
        total += value
    assert aggregate(values, "avg") == total / 10 == 0.09999999999999999


# --- values, outcomes, numbers ------------------------------------------------------------------


def test_indicator_values_are_decoded_strictly_like_go_json():
    value = IndicatorValue.model_validate(
        {"metric": "rt", "value": 5, "success": True, "extra": 1, "message": None}
    )
    assert value == IndicatorValue(metric="rt", value=5.0, success=True, message="")
    assert IndicatorValue.model_validate({"metric": "rt"}) == IndicatorValue(
        metric="rt", value=0, success=False
    )
    for bad in (
        {"metric": "rt", "value": "5"},
        {"metric": "rt", "success": "true"},
        {"value": 1},
        {"metric": 5},
    ):
        with pytest.raises(ValidationError):
            IndicatorValue.model_validate(bad)


def test_edge_outcomes_have_keptns_messages():
    assert no_provider_outcome("sockshop") == {
        "result": "pass",
        "status": "succeeded",
        "message": (
            "no evaluation performed by lighthouse because no SLI-provider configured for project sockshop"
        ),
        "evaluation": {"result": "pass", "score": 0.0, "indicatorResults": None, "comparedEvents": None},
    }
    assert no_slo_outcome("sockshop")["message"] == (
        "no evaluation performed by lighthouse because no SLO file configured for project sockshop"
    )
    assert (no_slo_outcome("p")["status"], no_slo_outcome("p")["result"]) == ("succeeded", "pass")
    assert errored_outcome("error retrieving SLO file: x") == {
        "result": "fail",
        "status": "errored",
        "message": "error retrieving SLO file: x",
        "evaluation": {"result": "fail", "score": 0.0, "indicatorResults": None, "comparedEvents": None},
    }
    assert aborted_sli_outcome()["message"] == "evaluation performed by lighthouse was aborted"
    assert errored_sli_outcome("some-silly-msg")["message"] == (
        "evaluation performed by lighthouse received an unexpected error: some-silly-msg"
    )
    assert (aborted_sli_outcome()["status"], errored_sli_outcome("x")["result"]) == ("errored", "fail")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (75.0, "75"),
        (75.3, "75.3"),
        (200 / 3, "66.66666666666667"),
        (100 * (2 / 3), "66.66666666666666"),
        (100.0, "100"),
        (0.0, "0"),
        (-0.0, "-0"),
        (-75.5, "-75.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (123456.0, "123456"),
        (999999.0, "999999"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (123456789.0, "1.23456789e+08"),
        (1e21, "1e+21"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.5e-7, "1.5e-07"),
        (1e100, "1e+100"),
        (5e-324, "5e-324"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
        (7, "7"),
    ],
)
def test_go_float_prints_like_go_percent_v(value, text):
    # Expected texts were printed by Go 1.19's fmt.Printf("%v", float64(value)).
    assert go_float(value) == text


def test_json_numbers_print_like_go():
    document = {"score": 100.0, "list": [1.5, 2.0, -0.0, 1e21, True, None, "x", 3]}
    converted = to_go_json_numbers(document)
    assert json.dumps(converted) == '{"score": 100, "list": [1.5, 2, -0.0, 1e+21, true, null, "x", 3]}'
    assert document["score"] == 100.0 and isinstance(document["score"], float)
