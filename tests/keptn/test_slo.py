"""SLO parsing with Keptn's defaults (TestParseLO), criteria strings and Go number parsing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from keptn.errors import InvalidInputError
from keptn.lighthouse_numbers import parse_go_float
from keptn.slo import (
    SLO,
    Comparison,
    CriteriaSet,
    Criterion,
    InvalidCriterionError,
    InvalidSLOError,
    Objective,
    TotalScore,
    parse_criterion,
    parse_slo,
    slo_problems,
)

KEPTN_DATA = Path("/work/shared/keptn-data")

FULL_SLO = """\
spec_version: "1.0"
filter:
  id: "4711"
  number: 12
comparison:
  compare_with: several_results
  include_result_with_score: pass_or_warn
  number_of_comparison_results: 5
  aggregate_function: p90
objectives:
  - sli: response_time_p95
    displayName: "Response Time P95"
    pass:
      - criteria: ["<=+10%", "<600"]
    warning:
      - criteria: ["<=800"]
    weight: 2
    key_sli: true
  - sli: throughput
total_score:
  pass: "90%"
  warning: 75%
"""


def test_full_slo_is_read_into_the_model():
    slo = parse_slo(FULL_SLO)
    assert slo.spec_version == "1.0"
    assert slo.filter == {"id": "4711", "number": "12"}
    assert slo.comparison == Comparison(
        compare_with="several_results",
        include_result_with_score="pass_or_warn",
        number_of_comparison_results=5,
        aggregate_function="p90",
    )
    first, second = slo.objectives
    assert first == Objective(
        sli="response_time_p95",
        display_name="Response Time P95",
        pass_=[CriteriaSet(criteria=["<=+10%", "<600"])],
        warning=[CriteriaSet(criteria=["<=800"])],
        weight=2,
        key_sli=True,
    )
    assert second == Objective(sli="throughput")
    assert second.pass_ == [] and second.weight == 1 and not second.key_sli
    assert slo.total_score == TotalScore(pass_="90%", warning="75%")


def test_yaml_keys_are_keptns_names():
    objective = Objective.model_validate({"sli": "x", "displayName": "X", "pass": [{"criteria": ["<1"]}]})
    assert objective.display_name == "X"
    assert objective.pass_ == [CriteriaSet(criteria=["<1"])]
    assert TotalScore.model_validate({"pass": "90"}).pass_ == "90"


def test_no_comparison_block_gives_keptns_defaults():
    slo = parse_slo("objectives: []\n")
    assert slo.comparison == Comparison(
        compare_with="single_result",
        include_result_with_score="all",
        number_of_comparison_results=1,
        aggregate_function="avg",
    )


def test_null_comparison_block_is_like_no_block():
    assert parse_slo("comparison:\n").comparison == Comparison()


def test_comparison_block_gets_defaults_but_keeps_compare_with_as_written():
    slo = parse_slo("comparison:\n  aggregate_function: ''\n")
    assert slo.comparison == Comparison(
        compare_with="",
        include_result_with_score="all",
        number_of_comparison_results=3,
        aggregate_function="avg",
    )


def test_zero_comparison_results_become_three():
    slo = parse_slo("comparison: {compare_with: several_results, number_of_comparison_results: 0}\n")
    assert slo.comparison.number_of_comparison_results == 3


def test_null_objectives_are_dropped_and_weight_zero_becomes_one():
    slo = parse_slo("objectives:\n  -\n  - sli: a\n    weight: 0\n  - ~\n  - sli: b\n    weight: 3\n")
    assert [(objective.sli, objective.weight) for objective in slo.objectives] == [("a", 1), ("b", 3)]


def test_negative_weight_is_kept():
    assert parse_slo("objectives: [{sli: a, weight: -2}]\n").objectives[0].weight == -2


def test_whole_float_weight_is_accepted():
    assert parse_slo("objectives: [{sli: a, weight: 2.0}]\n").objectives[0].weight == 2


def test_empty_document_has_no_objectives_and_no_total_score():
    for content in ("", "---\n", b"", "# only a comment\n"):
        slo = parse_slo(content)
        assert slo == SLO()
        assert slo.objectives == [] and slo.total_score is None and slo.filter == {}


def test_null_sections_count_as_absent():
    slo = parse_slo("filter:\nobjectives:\ntotal_score:\nspec_version:\n")
    assert slo == SLO()


def test_scalars_become_strings_like_yaml_v3():
    slo = parse_slo("spec_version: 1.0\ntotal_score: {pass: 90, warning: 75.5}\nfilter: {a: true, b: ~}\n")
    assert slo.spec_version == "1.0"
    assert slo.total_score == TotalScore(pass_="90", warning="75.5")
    assert slo.filter == {"a": "true", "b": ""}


def test_criteria_scalars_become_strings():
    slo = parse_slo("objectives: [{sli: a, pass: [{criteria: [5, ~, '<1']}]}]\n")
    assert slo.objectives[0].pass_[0].criteria == ["5", "", "<1"]


def test_unknown_keys_are_ignored_as_by_yaml_v3():
    slo = parse_slo("unknown: 1\nobjectives: [{sli: a, keySli: true, extra: [1]}]\n")
    assert slo.objectives == [Objective(sli="a")]


def test_bytes_are_read_as_utf8():
    assert parse_slo("objectives: [{sli: ä}]\n".encode()).objectives[0].sli == "ä"


def test_keptn_example_slos_parse():
    slo = parse_slo((KEPTN_DATA / "keptn-fixtures/lighthouse-service_examples_slo.yaml").read_text())
    assert [objective.sli for objective in slo.objectives] == ["request_latency_p95", "error_rate"]
    assert slo.objectives[1].weight == 2
    assert slo.filter == {"handler": "ItemsController.addToCart"}
    assert slo.total_score == TotalScore(pass_="90%", warning="75%")
    monitoring = parse_slo((KEPTN_DATA / "keptn-fixtures/test_assets_self_monitoring_slo.yaml").read_text())
    assert [objective.sli for objective in monitoring.objectives].count("throughput") == 2
    assert monitoring.filter == {}
    podtato = parse_slo((KEPTN_DATA / "keptn-fixtures/test_assets_podtato-head_slo.yaml").read_text())
    assert podtato.objectives[1].pass_[0].criteria == ["<=+100%", ">=-80%"]
    example = parse_slo((KEPTN_DATA / "spec/examples/slo-example.yaml").read_text())
    assert example.comparison.compare_with == "several_results"


ERROR_PREFIX = "Could not parse SLO file for service carts in stage dev in project sockshop: "


@pytest.mark.parametrize(
    ("content", "field", "detail"),
    [
        ("objectives: [\n", "slo.yaml", "slo.yaml: slo.yaml is not valid YAML"),
        ("a: 1\na: 2\n", "slo.yaml", "duplicate key"),
        ("- 1\n- 2\n", "slo.yaml", "slo.yaml: expected a mapping, found a list"),
        ("just text\n", "slo.yaml", "slo.yaml: expected a mapping, found 'just text'"),
        ("objectives: {sli: a}\n", "objectives", "objectives: expected a list, found a mapping"),
        ("objectives: [5]\n", "objectives[0]", "objectives[0]: expected a mapping, found 5"),
        (
            "objectives: [{sli: rt, weight: abc}]\n",
            "objectives[0].weight",
            "objectives[0].weight (objective 'rt'): expected a whole number, found 'abc'",
        ),
        ("objectives: [{sli: rt, weight: 2.5}]\n", "objectives[0].weight", "found 2.5"),
        ("objectives: [{sli: rt, weight: true}]\n", "objectives[0].weight", "found True"),
        ("objectives: [{sli: rt, weight: 9223372036854775808}]\n", "objectives[0].weight", "whole number"),
        ("objectives: [{sli: rt, key_sli: 'yes'}]\n", "objectives[0].key_sli", "expected true or false"),
        ("objectives: [{sli: rt, pass: '<5'}]\n", "objectives[0].pass", "expected a list"),
        ("objectives: [{sli: rt, pass: [~]}]\n", "objectives[0].pass[0]", "found null"),
        ("objectives: [{sli: rt, pass: [{criteria: '<5'}]}]\n", "objectives[0].pass[0].criteria", "a list"),
        (
            "objectives: [{sli: rt, pass: [{criteria: [[1]]}]}]\n",
            "objectives[0].pass[0].criteria[0]",
            "string",
        ),
        ("objectives: [{sli: [a]}]\n", "objectives[0].sli", "expected a string, found a list"),
        ("filter: [a]\n", "filter", "expected a mapping"),
        ("filter: {a: {b: c}}\n", "filter.a", "expected a string, found a mapping"),
        ("comparison: single_result\n", "comparison", "expected a mapping"),
        (
            "comparison: {number_of_comparison_results: x}\n",
            "comparison.number_of_comparison_results",
            "whole",
        ),
        ("total_score: 90\n", "total_score", "expected a mapping, found 90"),
        ("total_score: {pass: [90]}\n", "total_score.pass", "expected a string"),
    ],
)
def test_unusable_slo_files_are_rejected_with_keptns_message(content, field, detail):
    with pytest.raises(InvalidSLOError) as caught:
        parse_slo(content, project="sockshop", stage="dev", service="carts")
    assert caught.value.message.startswith(ERROR_PREFIX)
    assert detail in caught.value.message
    assert caught.value.field == field
    assert isinstance(caught.value, InvalidInputError)


def test_invalid_utf8_is_rejected():
    with pytest.raises(InvalidSLOError, match="not UTF-8"):
        parse_slo(b"objectives: [{sli: \xff}]\n")


def test_invalid_criteria_are_not_a_parse_error_but_a_problem():
    slo = parse_slo(
        "objectives:\n"
        "  - sli: rt\n"
        "    pass: [{criteria: ['<600', 'abc']}, {criteria: ['<x']}]\n"
        "    warning: [{criteria: ['800']}]\n"
        "  - sli: ok\n"
        "    pass: [{criteria: ['<=+10%']}]\n"
    )
    assert slo_problems(slo) == [
        "objective 'rt': invalid criteria string 'abc'",
        "objective 'rt': invalid criteria string '<x'",
        "objective 'rt': invalid criteria string '800'",
    ]
    assert slo_problems(parse_slo(FULL_SLO)) == []


# Keptn's TestParseCriteriaString cases, plus the spec's examples.
@pytest.mark.parametrize(
    ("text", "operator", "value", "relative", "increase", "percent"),
    [
        ("<10", "<", 10, False, False, False),
        ("<=10", "<=", 10, False, False, False),
        ("=10", "=", 10, False, False, False),
        (">=10", ">=", 10, False, False, False),
        (">10", ">", 10, False, False, False),
        (">-10%", ">", 10, True, False, True),
        ("<=+10.5%", "<=", 10.5, True, True, True),
        ("<=+10", "<=", 10, True, True, False),
        ("  <=+10   %", "<=", 10, True, True, True),
        ("  <=10%", "<=", 10, True, True, True),
        ("<600", "<", 600, False, False, False),
        (">=-80%", ">=", 80, True, False, True),
        ("=-1", "=", 1, True, False, False),
        ("=0%", "=", 0, True, True, True),
        ("<= 1e3", "<=", 1000, False, False, False),
        ("<=.5", "<=", 0.5, False, False, False),
        ("<=5.", "<=", 5, False, False, False),
        ("<=1_000", "<=", 1000, False, False, False),
        ("<=0x1p3", "<=", 8, False, False, False),
        ("<=--5", "<=", -5, True, False, False),
        ("<=+-5", "<=", -5, True, True, False),
    ],
)
def test_criteria_strings_parse_like_keptn(text, operator, value, relative, increase, percent):
    assert parse_criterion(text) == Criterion(text, operator, value, relative, increase, percent)


def test_criteria_without_a_number_compare_with_infinity_or_nan_as_go_does():
    assert parse_criterion("<inf").value == math.inf
    assert math.isnan(parse_criterion("<=nan").value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "invalid criteria string"),
        ("abc", "invalid criteria string"),
        ("5", "invalid criteria string"),
        ("+5", "invalid criteria string"),
        ("%5", "invalid criteria string"),
        ("\t<5", "invalid criteria string"),  # only spaces are removed
        ("<", "could not parse criteria target value"),
        ("<=", "could not parse criteria target value"),
        ("<%", "could not parse criteria target value"),
        ("<=-%", "could not parse criteria target value"),
        ("<abc", "could not parse criteria target value"),
        ("<=10%%", "could not parse criteria target value"),
        ("<5\t", "could not parse criteria target value"),
        ("=<5", "could not parse criteria target value"),
        ("<>5", "could not parse criteria target value"),
        ("==5", "could not parse criteria target value"),
        ("|5", "could not parse criteria target value"),  # '|' is in Keptn's operator class
        ("<1e400", "could not parse criteria target value"),
        ("<=1__0", "could not parse criteria target value"),
    ],
)
def test_garbage_criteria_are_rejected_with_keptns_reason(text, reason):
    with pytest.raises(InvalidCriterionError) as caught:
        parse_criterion(text)
    assert caught.value.reason == reason
    assert caught.value.raw == text
    assert caught.value.message.startswith(f"invalid criteria string {text!r}")
    assert isinstance(caught.value, InvalidInputError)


def test_equivalent_spellings_are_the_same_criterion():
    def meaning(text: str) -> tuple[object, ...]:
        criterion = parse_criterion(text)
        return (
            criterion.operator,
            criterion.value,
            criterion.relative,
            criterion.increase,
            criterion.percent,
        )

    assert meaning("<=10%") == meaning("<=+10%") == meaning("< = + 1 0 %")


@pytest.mark.parametrize(
    ("text", "baseline", "target"),
    [
        ("<600", 100, 600),
        ("<=+10%", 200, 220),
        ("<=+10%", 3, 3.3),  # (3 * 110) / 100 as Go computes it; 3 * 1.1 would be 3.3000000000000003
        ("<=10%", 100, 110),
        (">=-80%", 200, 40),
        ("<=+10", 200, 210),
        ("=-1", 10, 9),
        ("=0%", 123.4, 123.4),
        ("<=+100%", 200, 400),
    ],
)
def test_targets_follow_keptns_formulas(text, baseline, target):
    assert parse_criterion(text).target(baseline) == target


@pytest.mark.parametrize(
    ("operator", "measured", "target", "holds"),
    [
        (">", 10, 9, True),
        (">=", 10, 10, True),
        ("<=", 10, 10, True),
        ("<", 10, 10, False),
        (">", 10, 10, False),
        ("=", 10, 10, True),
        ("=", 10, 9, False),
        ("<", math.nan, 10, False),
        (">=", 10, math.nan, False),
    ],
)
def test_operators_compare_like_go(operator, measured, target, holds):
    criterion = Criterion(f"{operator}{target}", operator, target, False, False, False)
    assert criterion.holds(measured, target) is holds


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("90", 90.0),
        ("90.5", 90.5),
        ("5.", 5.0),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("1E+3", 1000.0),
        ("-5", -5.0),
        ("+5", 5.0),
        ("00012", 12.0),
        ("1_000", 1000.0),
        ("1e1_0", 1e10),
        ("0x1p-2", 0.25),
        ("0X1.8P1", 3.0),
        ("0x_1p0", 1.0),
        ("inf", math.inf),
        ("-Infinity", -math.inf),
        ("+INF", math.inf),
        ("1e-400", 0.0),
    ],
)
def test_go_float_parsing_accepts_what_go_accepts(text, value):
    assert parse_go_float(text) == value


@pytest.mark.parametrize(
    "text",
    ["", " 5", "5 ", "90%", "--5", "e2", ".e2", ".", "1e", "1e+", "_1", "1_", "1__0", "1._5", "1e_1",
     "0x10", "0xp1", "-nan", "+nan", "infinit", "1e400", "-1e400", "0x1p2000", "0b101", "12abc", "١"],
)  # fmt: skip
def test_go_float_parsing_rejects_what_go_rejects(text):
    assert parse_go_float(text) is None


def test_go_float_parsing_reads_nan():
    value = parse_go_float("NaN")
    assert value is not None and math.isnan(value)
