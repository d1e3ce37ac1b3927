"""Approval rules of Keptn's approval-service (spec §5) and Capstan's timeouts and approvers."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from keptn.approval import (
    APPROVAL_SOURCE,
    ApprovalPolicy,
    ApprovalTally,
    AutomaticDecision,
    Vote,
    approval_finished_data,
    approval_policy,
    automatic_decision,
    decisive_result,
    human_decision_event,
    started_message,
)
from keptn.errors import InvalidInputError

KEPTN_DATA = Path("/work/shared/keptn-data")
SCOPE = {"project": "sockshop", "stage": "dev", "service": "carts"}


def policy(**approval):
    return approval_policy({**SCOPE, "approval": approval})


def test_source_is_keptns_service_name():
    assert APPROVAL_SOURCE == "approval-service"


# --- policy ---------------------------------------------------------------------------------------


def test_policy_defaults_without_approval_block():
    assert approval_policy(SCOPE) == ApprovalPolicy(
        pass_strategy=None, warning_strategy=None, timeout=None, on_timeout="decline", approvers=1
    )
    assert approval_policy({**SCOPE, "approval": None}) == ApprovalPolicy()
    assert policy() == ApprovalPolicy()


def test_policy_reads_keptn_and_capstan_properties():
    assert policy(pass_="x") == ApprovalPolicy()  # unknown keys are ignored
    read = policy(
        **{"pass": "automatic", "warning": "manual", "timeout": "1h30m", "onTimeout": "pass"}, approvers=2
    )
    assert read == ApprovalPolicy(
        pass_strategy="automatic",
        warning_strategy="manual",
        timeout=datetime.timedelta(hours=1, minutes=30),
        on_timeout="pass",
        approvers=2,
    )


def test_policy_from_the_spec_example_event():
    event = json.loads((KEPTN_DATA / "spec/events/approval-triggered.example.json").read_text())
    read = approval_policy(event["data"])
    assert (read.pass_strategy, read.warning_strategy) == ("automatic", "manual")


@pytest.mark.parametrize("unset", [None, ""])
def test_empty_values_mean_unset(unset):
    read = policy(
        **{"pass": unset, "warning": unset, "timeout": unset, "onTimeout": unset, "approvers": None}
    )
    assert read == ApprovalPolicy()


@pytest.mark.parametrize("value", ["Automatic", "AUTOMATIC", "auto", "yes", " automatic", "never"])
def test_strategy_other_than_automatic_is_manual_like_keptn(value):
    read = policy(**{"pass": value, "warning": value})
    assert (read.pass_strategy, read.warning_strategy) == ("manual", "manual")
    assert automatic_decision("pass", read) is None
    assert automatic_decision("warning", read) is None


@pytest.mark.parametrize(
    ("key", "value"), [("pass", True), ("pass", 1), ("warning", ["automatic"]), ("warning", {})]
)
def test_strategy_that_is_not_a_string_is_rejected(key, value):
    with pytest.raises(InvalidInputError) as caught:
        policy(**{key: value})
    assert caught.value.field == f"approval.{key}"
    assert f"approval.{key}" in caught.value.message
    assert repr(value) in caught.value.message


@pytest.mark.parametrize("value", ["10", "ten minutes", "-5m", "0", "0s", "1ns", 600, True])
def test_invalid_timeout_is_rejected_naming_the_value(value):
    with pytest.raises(InvalidInputError) as caught:
        policy(timeout=value)
    assert caught.value.field == "approval.timeout"
    assert "approval.timeout" in caught.value.message
    assert repr(value) in caught.value.message


@pytest.mark.parametrize(("text", "expected"), [("30m", 1800), ("1.5h", 5400), ("90s", 90), ("2h45m", 9900)])
def test_timeout_is_a_go_duration(text, expected):
    assert policy(timeout=text).timeout == datetime.timedelta(seconds=expected)


@pytest.mark.parametrize("value", ["Pass", "approve", "fail", 1, True])
def test_invalid_on_timeout_is_rejected(value):
    with pytest.raises(InvalidInputError) as caught:
        policy(onTimeout=value)
    assert caught.value.field == "approval.onTimeout"
    assert repr(value) in caught.value.message


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (3, 3), (2.0, 2)])
def test_approvers(value, expected):
    assert policy(approvers=value).approvers == expected


@pytest.mark.parametrize("value", [0, -1, 1.5, "2", True, [2]])
def test_invalid_approvers_are_rejected(value):
    with pytest.raises(InvalidInputError) as caught:
        policy(approvers=value)
    assert caught.value.field == "approval.approvers"
    assert repr(value) in caught.value.message


@pytest.mark.parametrize("block", ["automatic", ["pass"], 1])
def test_approval_block_that_is_not_a_mapping_is_rejected(block):
    with pytest.raises(InvalidInputError) as caught:
        approval_policy({**SCOPE, "approval": block})
    assert caught.value.field == "approval"


def test_policy_is_frozen():
    with pytest.raises(ValueError):
        ApprovalPolicy(approvers=0)
    read = ApprovalPolicy()
    with pytest.raises(ValueError):
        read.approvers = 2  # type: ignore[misc]


# --- decisive result ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"result": "pass"}, "pass"),
        ({"result": "warning", "evaluation": {"result": "fail"}}, "warning"),
        ({"result": "", "evaluation": {"result": "fail"}}, "fail"),  # keptn#4391: fall back
        ({"evaluation": {"result": "warning"}}, "warning"),
        ({"result": None, "evaluation": {"result": "pass"}}, "pass"),
        ({"evaluation": {"score": 50}}, ""),
        ({"evaluation": "fail"}, ""),
        ({"evaluation": {"result": 1}}, ""),
        ({}, ""),
        ({"result": "errored"}, "errored"),
        ({"result": 7, "evaluation": {"result": "pass"}}, "pass"),
    ],
)
def test_decisive_result(data, expected):
    assert decisive_result({**SCOPE, **data}) == expected


# --- started message and automatic decision -------------------------------------------------------


AUTOMATIC = {"pass": "automatic", "warning": "automatic"}
MANUAL = {"pass": "manual", "warning": "manual"}


@pytest.mark.parametrize(
    ("result", "approval", "strategy"),
    [
        ("pass", AUTOMATIC, "automatic"),
        ("pass", MANUAL, "manual"),
        ("pass", {}, "manual"),  # unset falls back to manual (Keptn's code, not its spec)
        ("pass", {"warning": "automatic"}, "manual"),
        ("warning", AUTOMATIC, "automatic"),
        ("warning", MANUAL, "manual"),
        ("warning", {"pass": "automatic"}, "manual"),
        ("fail", MANUAL, "automatic"),  # declined automatically
        ("fail", {}, "automatic"),
        ("", AUTOMATIC, "manual"),
        ("unknown", AUTOMATIC, "manual"),
        ("PASS", AUTOMATIC, "manual"),
    ],
)
def test_started_message_is_keptns(result, approval, strategy):
    assert (
        started_message(result, policy(**approval)) == f"Approval strategy for result '{result}': {strategy}"
    )


def test_started_message_examples():
    assert started_message("pass", policy(**AUTOMATIC)) == "Approval strategy for result 'pass': automatic"
    assert started_message("", ApprovalPolicy()) == "Approval strategy for result '': manual"


@pytest.mark.parametrize(
    ("result", "approval", "expected"),
    [
        ("pass", AUTOMATIC, "pass"),
        ("pass", {"pass": "automatic", "warning": "manual"}, "pass"),
        ("pass", {"pass": "manual", "warning": "automatic"}, None),
        ("pass", {}, None),
        ("warning", AUTOMATIC, "pass"),
        ("warning", {"pass": "automatic", "warning": "manual"}, None),
        ("warning", {"pass": "automatic"}, None),
        ("fail", AUTOMATIC, "fail"),
        ("fail", MANUAL, "fail"),
        ("fail", {}, "fail"),
        ("", AUTOMATIC, None),
        ("errored", AUTOMATIC, None),
        ("Pass", AUTOMATIC, None),
    ],
)
def test_automatic_decision(result, approval, expected):
    decision = automatic_decision(result, policy(**approval))
    assert (decision.result if decision else None) == expected


def test_automatic_decision_messages():
    assert automatic_decision("warning", policy(**AUTOMATIC)) == AutomaticDecision(
        result="pass",
        message="Automatically approved: the approval strategy for result 'warning' is automatic",
    )
    assert automatic_decision("fail", ApprovalPolicy()) == AutomaticDecision(
        result="fail", message="Automatically declined because the previous step failed"
    )


def test_evaluation_result_fallback_decides():
    data = {**SCOPE, "result": "", "evaluation": {"result": "warning"}, "approval": AUTOMATIC}
    result = decisive_result(data)
    assert (
        started_message(result, approval_policy(data)) == "Approval strategy for result 'warning': automatic"
    )
    assert automatic_decision(result, approval_policy(data)).result == "pass"


# --- tally ----------------------------------------------------------------------------------------


def test_single_approver_like_keptn():
    tally = ApprovalTally()
    assert tally.decided is None and tally.decision(1) is None
    tally.add(Vote(user="alice", approved=True))
    assert tally.decided == "approved"
    assert tally.approvers == ["alice"]
    assert tally.declined_by is None


def test_single_decline():
    tally = ApprovalTally()
    no = Vote(user="bob", approved=False, message="not today")
    tally.add(no)
    assert tally.decided == "declined"
    assert tally.declined_by == no
    assert tally.approvers == []


def test_several_approvers_needed():
    tally = ApprovalTally(required=2)
    tally.add(Vote(user="alice", approved=True))
    assert tally.decided is None
    assert tally.decision(1) == "approved"
    tally.add(Vote(user="bob", approved=True))
    assert tally.decided == "approved"
    assert tally.approvers == ["alice", "bob"]


def test_repeated_vote_of_a_user_is_ignored_and_reported():
    tally = ApprovalTally(required=2)
    first = Vote(user="alice", approved=True)
    again = Vote(user="alice", approved=True, message="really")
    tally.add(first)
    tally.add(again)
    assert tally.decided is None  # alice counts once
    assert tally.votes == [first]
    assert tally.ignored == [again]
    change = Vote(user="alice", approved=False)
    tally.add(change)  # the first decision of a user counts; a change of mind is ignored too
    assert tally.declined_by is None
    assert tally.ignored == [again, change]


def test_users_are_compared_exactly():
    tally = ApprovalTally(required=2)
    tally.add(Vote(user="alice", approved=True))
    tally.add(Vote(user="Alice", approved=True))
    assert tally.decided == "approved"


def test_any_decline_declines():
    tally = ApprovalTally(required=3)
    tally.add(Vote(user="alice", approved=True))
    no = Vote(user="bob", approved=False)
    tally.add(no)
    assert tally.decided == "declined"
    assert tally.declined_by == no
    tally.add(Vote(user="carol", approved=True))
    tally.add(Vote(user="dave", approved=True))
    assert tally.decided == "declined"
    assert tally.approvers == ["alice", "carol", "dave"]


def test_the_vote_that_settles_it_first_decides():
    tally = ApprovalTally(required=2)
    tally.add(Vote(user="alice", approved=True))
    tally.add(Vote(user="bob", approved=True))
    late = Vote(user="carol", approved=False)
    tally.add(late)
    assert tally.decided == "approved"
    assert tally.decision(3) == "declined"
    assert tally.declined_by == late
    assert [vote.user for vote in tally.votes] == ["alice", "bob", "carol"]


def test_views_are_copies():
    tally = ApprovalTally()
    tally.votes.append(Vote(user="mallory", approved=True))
    assert tally.votes == [] and tally.decided is None


@pytest.mark.parametrize("required", [0, -1])
def test_at_least_one_approver(required):
    with pytest.raises(ValueError):
        ApprovalTally(required=required)
    with pytest.raises(ValueError):
        ApprovalTally().decision(required)


# --- approval.finished ----------------------------------------------------------------------------


def test_finished_data_with_votes():
    triggered = {**SCOPE, "labels": {"build": "42"}, "result": "pass", "approval": MANUAL, "deployment": {}}
    votes = [Vote(user="alice", approved=True, message="lgtm"), Vote(user="bob", approved=True)]
    assert approval_finished_data(
        triggered, result="pass", message="approved by alice, bob", votes=votes
    ) == {
        **SCOPE,
        "labels": {"build": "42"},
        "result": "pass",
        "status": "succeeded",
        "message": "approved by alice, bob",
        "approval": {
            "approvers": [
                {"user": "alice", "approved": True, "message": "lgtm"},
                {"user": "bob", "approved": True, "message": ""},
            ]
        },
    }


def test_finished_data_of_an_automatic_decision_is_keptns_shape():
    data = approval_finished_data({**SCOPE, "labels": {}}, result="fail", message="declined", votes=[])
    assert data == {**SCOPE, "result": "fail", "status": "succeeded", "message": "declined"}
    spec = json.loads((KEPTN_DATA / "spec/events/approval-finished.example.json").read_text())["data"]
    assert set(data) <= set(spec)


def test_finished_data_of_a_decline_is_succeeded_with_result_fail():
    votes = [Vote(user="bob", approved=False, message="no")]
    data = approval_finished_data(SCOPE, result="fail", message="declined by bob", votes=votes)
    assert (data["status"], data["result"]) == ("succeeded", "fail")
    assert data["approval"]["approvers"] == [{"user": "bob", "approved": False, "message": "no"}]


def test_a_human_decision_keeps_scope_and_labels_and_names_who_decided():
    triggered = {
        "id": "t-1",
        "shkeptncontext": "ctx-1",
        "data": {"project": "p", "stage": "prod", "service": "carts", "labels": {"build": 42}, "x": 1},
    }
    declined = human_decision_event(triggered, approved=False, user="ann", message="slow", source="me")
    assert declined == {
        "type": "sh.keptn.event.approval.finished",
        "specversion": "1.0",
        "source": "me",
        "contenttype": "application/json",
        "triggeredid": "t-1",
        "shkeptncontext": "ctx-1",
        "data": {
            "project": "p",
            "stage": "prod",
            "service": "carts",
            "labels": {"build": "42"},
            "status": "succeeded",
            "result": "fail",
            "message": "slow",
            "approval": {"user": "ann", "approved": False, "message": "slow"},
        },
    }
    approved = human_decision_event({"id": "t"}, approved=True, user="u", message="", source="s")
    assert approved["data"]["result"] == "pass" and "labels" not in approved["data"]
