"""The evaluation heatmap model and the score chart geometry: pure functions, no stack."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from api.bridge.charts import ScoreSample, label_stride, sample_x, score_chart, score_y
from api.bridge.heatmap import (
    build_heatmap,
    cell_status,
    format_value,
    parse_evaluation,
    score_thresholds,
)

SLO = """spec_version: "1.0"
objectives:
  - sli: rt
    pass: [{criteria: ["<600"]}]
total_score: {pass: "90%", warning: "75%"}
"""


def indicator(sli: str, value: float, status: str, **more: Any) -> dict[str, Any]:
    return {
        "score": more.pop("score", 1),
        "value": {"metric": sli, "value": value, "success": more.pop("success", True), "message": ""},
        "displayName": more.pop("displayName", ""),
        "passTargets": more.pop("passTargets", [{"criteria": "<600", "targetValue": 600, "violated": False}]),
        "warningTargets": more.pop("warningTargets", None),
        "keySli": more.pop("keySli", False),
        "status": status,
    }


def finished(
    event_id: str, time: str, score: float, result: str, *indicators: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "sh.keptn.event.evaluation.finished",
        "source": "lighthouse-service",
        "time": time,
        "shkeptncontext": f"ctx-{event_id}",
        "triggeredid": f"trig-{event_id}",
        "data": {
            "project": "p",
            "stage": "dev",
            "service": "carts",
            "result": result,
            "status": "succeeded",
            "evaluation": {
                "score": score,
                "result": result,
                "indicatorResults": list(indicators),
                "sloFileContent": base64.b64encode(SLO.encode()).decode(),
            },
        },
    }


def test_columns_run_oldest_to_newest_and_rows_follow_the_newest_evaluation():
    newest_first = [
        finished(
            "e3",
            "2026-01-03T00:00:00.000Z",
            50,
            "fail",
            indicator("rt", 700, "fail", score=0),
            indicator("errors", 1.23456, "pass", keySli=True),
        ),
        finished(
            "e2",
            "2026-01-02T00:00:00.000Z",
            100,
            "pass",
            indicator("errors", 0.5, "pass"),
            indicator("rt", 400, "pass"),
        ),
        finished(
            "e1",
            "2026-01-01T00:00:00.000Z",
            75,
            "warning",
            indicator("old", 3, "warning"),
            indicator("rt", 650, "failed"),
        ),
    ]
    heatmap = build_heatmap(newest_first)
    assert [c.event_id for c in heatmap.columns] == ["e1", "e2", "e3"]
    assert [r.sli for r in heatmap.rows] == ["rt", "errors", "old"]
    rt, errors, old = heatmap.rows
    assert [c.status if c else None for c in rt.cells] == ["fail", "pass", "fail"]  # "failed" is fail
    assert [c.shown_value if c else None for c in errors.cells] == [None, "0.5", "1.23"]
    assert errors.key_sli
    assert [c is None for c in old.cells] == [False, True, True]
    assert [c.result for c in heatmap.columns] == ["warning", "pass", "fail"]


def test_a_cell_title_names_value_targets_status_and_score():
    raw = indicator(
        "rt",
        512.5,
        "warning",
        score=0.5,
        displayName="Response time",
        keySli=True,
        passTargets=[{"criteria": "<=+10%", "targetValue": 440, "violated": True}],
        warningTargets=[{"criteria": "<=800", "targetValue": 800, "violated": False}],
    )
    (column,) = build_heatmap([finished("e", "2026-01-01T00:00:00Z", 50, "warning", raw)]).columns
    cell = column.indicators[0]
    assert cell.label == "Response time"
    assert cell.title.splitlines() == [
        "Response time: 512.5 (key SLI)",
        "pass: <=+10% (= 440) ✗",
        "warning: <=800 (= 800)",
        "status: warning, score: 0.5",
    ]


def test_an_informational_sli_and_a_failed_measurement():
    info = indicator("throughput", 50, "info", score=0, passTargets=None)
    failed = indicator("rt", 0, "fail", score=0, success=False)
    (column,) = build_heatmap([finished("e", "2026-01-01T00:00:00Z", 0, "fail", info, failed)]).columns
    assert column.indicators[0].status == "info"
    assert "informational" in column.indicators[0].title
    assert column.indicators[1].shown_value == "n/a"


def test_broken_events_give_empty_parts_instead_of_errors():
    evaluation = parse_evaluation(
        {"id": "x", "data": {"evaluation": {"indicatorResults": [{"value": {}}, 3]}}}
    )
    assert evaluation.indicators == ()
    assert (evaluation.result, evaluation.score, evaluation.slo_content) == ("info", 0.0, "")
    assert build_heatmap([]).rows == ()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("pass", "pass"),
        ("warning", "warning"),
        ("fail", "fail"),
        ("failed", "fail"),
        ("info", "info"),
        ("", "info"),
        (None, "info"),
        ("bogus", "info"),
    ],
)
def test_cell_status(status: Any, expected: str):
    assert cell_status(status) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (100, "100"),
        (100.0, "100"),
        (1.23456, "1.23"),
        (0.5, "0.5"),
        (0.001234, "0.00123"),
        (None, ""),
        (True, "True"),
    ],
)
def test_format_value(value: Any, expected: str):
    assert format_value(value) == expected


def test_score_thresholds_come_from_the_slo_total_score():
    assert score_thresholds(SLO) == (90.0, 75.0)
    assert score_thresholds('spec_version: "1.0"\ntotal_score: {pass: "80"}\n') == (80.0, None)
    assert score_thresholds("") == (None, None)
    assert score_thresholds("objectives: 3") == (None, None)  # not an SLO


def test_chart_places_scores_between_the_margins():
    samples = [ScoreSample(score=s, status="pass", label=f"t{i}") for i, s in enumerate([0, 50, 100])]
    chart = score_chart(
        samples,
        pass_threshold=90,
        warning_threshold=75,
        width=240,
        height=140,
        margin_left=40,
        margin_right=0,
        margin_top=20,
        margin_bottom=20,
    )
    assert [(p.x, p.y) for p in chart.points] == [(40, 120), (140, 70), (240, 20)]
    assert chart.polyline == "40,120 140,70 240,20"
    assert [(t.name, t.value, t.y) for t in chart.thresholds] == [("pass", 90, 30), ("warning", 75, 45)]
    assert [(label.text, label.position) for label in chart.y_labels] == [
        ("0", 120),
        ("25", 95),
        ("50", 70),
        ("75", 45),
        ("100", 20),
    ]
    assert [label.text for label in chart.x_labels] == ["t0", "t1", "t2"]


def test_chart_of_one_sample_centres_it_and_draws_no_line_or_unknown_thresholds():
    chart = score_chart(
        [ScoreSample(score=250, status="pass", label="now")], width=200, margin_left=0, margin_right=0
    )
    (point,) = chart.points
    assert point.x == 100
    assert point.y == chart.top  # clamped to 100
    assert chart.polyline == ""
    assert chart.thresholds == ()
    assert score_chart([]).points == ()


def test_many_samples_get_every_nth_time_label_ending_with_the_newest():
    samples = [ScoreSample(score=50, status="pass", label=f"t{i}") for i in range(25)]
    chart = score_chart(samples)
    assert label_stride(25) == 4
    assert [label.text for label in chart.x_labels][-1] == "t24"
    assert len(chart.x_labels) <= 8


def test_axis_helpers():
    assert score_y(-5, 0, 100) == 100
    assert score_y(float("nan"), 0, 100) == 100
    assert sample_x(0, 1, 0, 10) == 5
    assert sample_x(2, 3, 0, 10) == 10
