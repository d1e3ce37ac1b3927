"""Keptn's sequence rules (behaviour spec §1.2, §3.4) as plain unit tests of keptn.sequence."""

from __future__ import annotations

from typing import Any

import pytest

from keptn.sequence import (
    Scope,
    TaskOutcome,
    aggregate_task,
    follow_up_sequences,
    matches_trigger,
    next_task_payload,
    sequence_continues,
    sequence_finished_data,
    unknown_sequence_message,
    worst_result,
)
from keptn.shipyard import Task, parse_shipyard

SCOPE = Scope(project="sockshop", stage="staging", service="carts")

SHIPYARD = parse_shipyard(
    """
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: sockshop}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}]
    - name: staging
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}]
        - name: rollback
          triggeredOn:
            - event: staging.delivery.finished
              selector: {match: {result: fail}}
          tasks: [{name: rollback}]
    - name: production
      sequences:
        - name: delivery
          triggeredOn: [{event: staging.delivery.finished}]
          tasks: [{name: deployment}, {name: release}]
        - name: remediation
          triggeredOn:
            - event: production.remediation.finished
              selector: {match: {evaluation.result: fail}}
          tasks: [{name: action}, {name: evaluation}]
"""
)


def _finished(result: str, status: str = "succeeded", **extra: Any) -> dict[str, Any]:
    return {"result": result, "status": status, **extra}


def _outcome(name: str, result: str = "pass", status: str = "succeeded", **properties: Any) -> TaskOutcome:
    return TaskOutcome(
        name=name,
        triggered_id=f"{name}-id",
        result=result,
        status=status,
        properties=properties,
    )


@pytest.mark.parametrize(
    ("answers", "result", "status"),
    [
        ([_finished("pass")], "pass", "succeeded"),
        ([_finished("pass"), _finished("warning")], "warning", "succeeded"),
        ([_finished("warning"), _finished("fail")], "fail", "succeeded"),
        # garbage or an empty result counts as fail
        ([_finished("pass"), _finished("")], "fail", "succeeded"),
        ([_finished("pass"), _finished("great")], "fail", "succeeded"),
        ([_finished("pass", "errored"), _finished("pass", "aborted")], "pass", "errored"),
        ([_finished("pass", "aborted"), _finished("pass")], "pass", "aborted"),
        # keptn#7367: a status that is none of the known ones forces fail
        ([_finished("pass", "")], "fail", "unknown"),
        ([_finished("pass", "unknown")], "fail", "unknown"),
        ([], "fail", "unknown"),
    ],
)
def test_aggregate_task_result_and_status(answers: list[dict[str, Any]], result: str, status: str) -> None:
    outcome = aggregate_task("test", "t-1", answers)
    assert (outcome.result, outcome.status) == (result, status)
    assert (outcome.name, outcome.triggered_id) == ("test", "t-1")


def test_aggregate_task_merges_answers_in_arrival_order() -> None:
    first = _finished("pass", urls=["a"], deployment={"name": "one", "replicas": 1})
    second = _finished("pass", urls=["b"], deployment={"name": "two"})
    outcome = aggregate_task("deployment", "t-1", [first, second])
    # later maps win per key; lists concatenate with the later list first (keptn#7627)
    assert outcome.properties["deployment"] == {"name": "two", "replicas": 1}
    assert outcome.properties["urls"] == ["b", "a"]


@pytest.mark.parametrize(
    ("result", "status", "continues"),
    [
        ("pass", "succeeded", True),
        ("warning", "succeeded", True),
        ("pass", "aborted", True),
        ("fail", "succeeded", False),
        ("pass", "errored", False),
    ],
)
def test_sequence_continues(result: str, status: str, continues: bool) -> None:
    assert sequence_continues(_outcome("test", result, status)) is continues


def test_next_task_payload_follows_keptn_order() -> None:
    input_properties = {
        "project": "other",
        "message": "from the trigger",
        "configurationChange": {"values": {"image": "carts:0.1"}},
        "deployment": {"deploymentURIsPublic": ["dev-url"]},
    }
    previous = [
        _outcome("deployment", deployment={"deploymentURIsPublic": ["staging-url"]}, message="deployed"),
        _outcome("test", "warning", test={"start": "t0"}),
    ]
    task = Task(name="evaluation", properties={"timeframe": "5m"})
    payload = next_task_payload(input_properties, SCOPE, previous, task)
    assert (payload["project"], payload["stage"], payload["service"]) == ("sockshop", "staging", "carts")
    assert payload["deployment"]["deploymentURIsPublic"] == ["staging-url", "dev-url"]
    assert payload["test"] == {"start": "t0"}
    assert (payload["result"], payload["status"]) == ("warning", "succeeded")
    assert payload["evaluation"] == {"timeframe": "5m"}
    assert payload["message"] == ""  # an earlier executor's message is blanked
    assert input_properties["deployment"] == {"deploymentURIsPublic": ["dev-url"]}  # input untouched


def test_next_task_payload_of_the_first_task_has_no_result() -> None:
    payload = next_task_payload({"labels": {"a": "b"}}, SCOPE, [], Task(name="deployment"))
    assert payload == {"labels": {"a": "b"}, "project": "sockshop", "stage": "staging", "service": "carts"}


def test_sequence_finished_data_takes_the_last_answer_with_aggregated_result() -> None:
    last = _outcome("test", "fail", "succeeded")
    data = sequence_finished_data(
        SCOPE, {"x": "y"}, {"stage": "staging", "message": "tests failed", "result": "pass"}, last
    )
    assert data == {
        "project": "sockshop",
        "stage": "staging",
        "service": "carts",
        "labels": {"x": "y"},
        "result": "fail",
        "status": "succeeded",
        "message": "tests failed",
    }
    assert "labels" not in sequence_finished_data(SCOPE, None, None, None)


@pytest.mark.parametrize(
    ("match", "result", "last_task", "fires"),
    [
        (None, "pass", None, True),
        (None, "warning", None, True),  # the code accepted warning, the spec text said only pass
        (None, "fail", None, False),
        ({}, "fail", None, False),
        ({"result": "fail"}, "fail", "release", True),
        ({"release.result": "fail"}, "fail", "release", True),
        ({"release.result": "fail"}, "fail", "deployment", False),
        ({"other": "fail"}, "fail", "release", False),
    ],
)
def test_matches_trigger(
    match: dict[str, str] | None, result: str, last_task: str | None, fires: bool
) -> None:
    assert matches_trigger(match, result, last_task) is fires


def test_follow_up_sequences_scan_all_stages_in_order() -> None:
    assert follow_up_sequences(SHIPYARD, "dev", "delivery", "pass", "test") == [("staging", "delivery")]
    assert follow_up_sequences(SHIPYARD, "staging", "delivery", "pass", "deployment") == [
        ("production", "delivery")
    ]
    assert follow_up_sequences(SHIPYARD, "staging", "delivery", "fail", "deployment") == [
        ("staging", "rollback")
    ]
    assert follow_up_sequences(SHIPYARD, "dev", "delivery", "fail", "test") == []


def test_a_sequence_may_trigger_itself() -> None:
    loop = follow_up_sequences(SHIPYARD, "production", "remediation", "fail", "evaluation")
    assert loop == [("production", "remediation")]
    assert follow_up_sequences(SHIPYARD, "production", "remediation", "pass", "evaluation") == []


def test_unknown_sequence_message() -> None:
    assert unknown_sequence_message(SHIPYARD, "dev", "delivery") is None
    assert unknown_sequence_message(SHIPYARD, "qa", "delivery") == (
        "Unable to start sequence delivery: no stage with name qa"
    )
    assert unknown_sequence_message(SHIPYARD, "dev", "rollout") == (
        "Unable to start sequence rollout: no task sequence with name rollout found in stage dev"
    )


@pytest.mark.parametrize(
    ("results", "unknown_is_fail", "worst"),
    [
        ([], True, None),
        ([None, None], True, None),
        (["pass", None, "warning"], True, "warning"),
        (["warning", "fail", "pass"], True, "fail"),
        (["pass", ""], True, "fail"),
        (["pass", "errored"], True, "fail"),
        (["pass", "", "errored"], False, "pass"),
        (["", "garbage"], False, None),
    ],
)
def test_worst_result(results: list[str | None], unknown_is_fail: bool, worst: str | None) -> None:
    assert worst_result(results, unknown_is_fail=unknown_is_fail) == worst
