"""remediation.yaml and Keptn's get-action rules (spec §6), with Keptn's own fixtures and examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keptn.errors import InvalidInputError
from keptn.remediation import (
    DECODE_FAILED,
    PARSE_FAILED,
    REMEDIATION_API_VERSION,
    GetActionOutcome,
    InvalidRemediationError,
    Remediation,
    RemediationAction,
    RemediationFile,
    choose_action,
    get_action_finished_data,
    get_action_index,
    parse_remediation,
    remediation_missing_message,
)

KEPTN_DATA = Path("/work/shared/keptn-data")
FIXTURES = KEPTN_DATA / "keptn-fixtures"
SCOPE = {"project": "sockshop", "stage": "production", "service": "carts"}

SPEC_EXAMPLE = """\
apiVersion: spec.keptn.sh/0.1.4
kind: Remediation
metadata: {name: service-remediation}
spec:
  remediations:
    - problemType: "Response time degradation"
      actionsOnOpen:
        - name: Scaling ReplicaSet by 1
          action: scaling
          description: Scale up
          value: "1"
        - name: Toggle feature flag
          action: togglefeature
          description: Toggle feature flag EnablePromotion from ON to OFF
          value:
            EnablePromotion: off
    - problemType: default
      actionsOnOpen:
        - {name: Escalate, action: escalate, description: Escalate via Slack, value: {}}
"""


def fixture(name: str) -> RemediationFile:
    return parse_remediation((FIXTURES / f"remediation-service_handler_test_{name}.yaml").read_text())


def action_of(outcome: GetActionOutcome) -> dict[str, Any]:
    assert outcome.action is not None, outcome.message
    return outcome.action


def problem(title: str = "", root_cause: str = "") -> dict[str, str]:
    return {"problemTitle": title, "rootCause": root_cause}


# --- parsing --------------------------------------------------------------------------------------


def test_parse_spec_example():
    parsed = parse_remediation(SPEC_EXAMPLE)
    assert parsed.api_version == REMEDIATION_API_VERSION
    assert (parsed.kind, parsed.name) == ("Remediation", "service-remediation")
    assert [item.problem_type for item in parsed.remediations] == ["Response time degradation", "default"]
    first, second = parsed.remediations[0].actions_on_open
    assert first == RemediationAction(
        name="Scaling ReplicaSet by 1", action="scaling", description="Scale up", value="1"
    )
    assert second.value == {"EnablePromotion": "off"}  # YAML 1.2: "off" stays a string
    assert parsed.remediations[1].actions_on_open[0].value == {}


def test_parse_bytes():
    assert parse_remediation(SPEC_EXAMPLE.encode()) == parse_remediation(SPEC_EXAMPLE)


def keptn_action(suffix: str, value: str) -> RemediationAction:
    return RemediationAction(
        name=f"actionName{suffix}",
        action=f"action{suffix}",
        description=f"actionDescription{suffix}",
        value={"foo": value},
    )


def test_parse_keptn_fixture():
    default = RemediationAction(
        name="escalateDefaultName",
        action="escalateDefaultAction",
        description="escalateDefaultDescription",
        value={"foo": "bar"},
    )
    assert fixture("remediation") == RemediationFile(
        api_version="spec.keptn.sh/0.1.4",
        kind="Remediation",
        name="service-remediation",
        remediations=[
            Remediation(problem_type="default", actions_on_open=[default]),
            Remediation(
                problem_type="problemType1",
                actions_on_open=[keptn_action("1", "bar"), keptn_action("2", "baz")],
            ),
            Remediation(
                problem_type="problemType2",
                actions_on_open=[keptn_action("11", "bar"), keptn_action("22", "baz")],
            ),
        ],
    )


def test_parse_keptn_spec_example_with_empty_value():
    parsed = parse_remediation((KEPTN_DATA / "spec/examples/remediation-example.yaml").read_text())
    escalate = parsed.remediations[1].actions_on_open[0]
    assert (escalate.action, escalate.value) == ("escalate", None)
    assert parsed.remediations[0].actions_on_open[0].value == {"EnablePromotion": "off"}


def test_optional_fields_default():
    parsed = parse_remediation(
        "apiVersion: spec.keptn.sh/0.1.4\nkind: Remediation\n"
        "spec:\n  remediations:\n    - problemType: default\n      actionsOnOpen:\n"
        "        - {name: Escalate, action: escalate}\n"
    )
    assert parsed.name == ""
    assert parsed.remediations[0].actions_on_open == [
        RemediationAction(name="Escalate", action="escalate", description="", value=None)
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("'1'", "1"),
        ("1", 1),
        ("1.5", 1.5),
        ("[a, b]", ["a", "b"]),
        ("{replicas: 2}", {"replicas": 2}),
        ("true", True),
    ],
)
def test_value_is_free_form(value, expected):
    parsed = parse_remediation(valid_with(f"value: {value}"))
    assert parsed.remediations[0].actions_on_open[0].value == expected


def test_scalars_stand_for_strings_like_ghodss_yaml():
    parsed = parse_remediation(
        "apiVersion: spec.keptn.sh/0.1.4\nkind: Remediation\nmetadata: {name: 7}\n"
        "spec:\n  remediations:\n    - problemType: 500\n      actionsOnOpen:\n"
        "        - {name: 1, action: true, description: 2.5}\n"
    )
    assert parsed.name == "7"
    assert parsed.remediations[0].problem_type == "500"
    assert parsed.remediations[0].actions_on_open[0] == RemediationAction(
        name="1", action="true", description="2.5"
    )


def test_unknown_keys_are_ignored():
    parsed = parse_remediation(SPEC_EXAMPLE.replace("kind: Remediation", "kind: Remediation\nstatus: {x: 1}"))
    assert len(parsed.remediations) == 2


def valid_with(action_line: str) -> str:
    return (
        "apiVersion: spec.keptn.sh/0.1.4\nkind: Remediation\nmetadata: {name: r}\n"
        "spec:\n  remediations:\n    - problemType: default\n      actionsOnOpen:\n"
        f"        - name: n\n          action: a\n          {action_line}\n"
    )


@pytest.mark.parametrize(
    ("version", "found"),
    [
        ("spec.keptn.sh/0.1.3", "'spec.keptn.sh/0.1.3'"),
        ("spec.keptn.sh/0.2.0", "'spec.keptn.sh/0.2.0'"),
        ("'spec.keptn.sh/0.1.4 '", "'spec.keptn.sh/0.1.4 '"),
        ("0.1.4", "'0.1.4'"),
        ("", "nothing"),
    ],
)
def test_api_version_must_match_exactly(version, found):
    content = SPEC_EXAMPLE.replace("apiVersion: spec.keptn.sh/0.1.4", f"apiVersion: {version}")
    with pytest.raises(InvalidRemediationError) as caught:
        parse_remediation(content)
    assert caught.value.field == "apiVersion"
    assert caught.value.message == (
        f"{PARSE_FAILED} apiVersion: remediation.yaml file does not conform to remediation spec "
        f"spec.keptn.sh/0.1.4 (found {found})"
    )


def test_missing_api_version():
    with pytest.raises(InvalidRemediationError) as caught:
        parse_remediation(SPEC_EXAMPLE.replace("apiVersion: spec.keptn.sh/0.1.4\n", ""))
    assert caught.value.detail.endswith("(found nothing)")
    assert isinstance(caught.value, InvalidInputError)


HEAD = "apiVersion: spec.keptn.sh/0.1.4\nkind: Remediation\n"
ACTIONS = "spec.remediations[1].actionsOnOpen"


def spec_with(old: str, new: str) -> str:
    assert old in SPEC_EXAMPLE
    return SPEC_EXAMPLE.replace(old, new)


@pytest.mark.parametrize(
    ("content", "field", "reason"),
    [
        (
            spec_with("kind: Remediation", "kind: Shipyard"),
            "kind",
            "expected 'Remediation', found 'Shipyard'",
        ),
        (spec_with("kind: Remediation\n", ""), "kind", "expected 'Remediation', found nothing"),
        (
            spec_with("metadata: {name: service-remediation}", "metadata: [a]"),
            "metadata",
            "expected a mapping, found a list",
        ),
        (
            spec_with("{name: service-remediation}", "{name: [a]}"),
            "metadata.name",
            "expected a string, found a list",
        ),
        (HEAD, "spec", "missing"),
        (HEAD + "spec: {}\n", "spec.remediations", "missing (expected a list)"),
        (HEAD + "spec: {remediations: {a: 1}}\n", "spec.remediations", "expected a list, found a mapping"),
        (
            spec_with('problemType: "Response time degradation"', "problemTyp: x"),
            "spec.remediations[0].problemType",
            "missing",
        ),
        (
            spec_with("problemType: default", "problemType: ''"),
            "spec.remediations[1].problemType",
            "must not be empty",
        ),
        (
            spec_with(
                "      actionsOnOpen:\n        - {", "      actionsOnOpen: null\n      x:\n        - {"
            ),
            ACTIONS,
            "missing (expected a list)",
        ),
        (
            spec_with("action: escalate,", "action: {x: 1},"),
            f"{ACTIONS}[0].action",
            "expected a string, found a mapping",
        ),
        (spec_with("action: escalate, ", ""), f"{ACTIONS}[0].action", "missing"),
        (spec_with("action: escalate,", "action: '',"), f"{ACTIONS}[0].action", "must not be empty"),
        (
            spec_with("- name: Scaling ReplicaSet by 1\n", "- nam: Scaling\n"),
            "spec.remediations[0].actionsOnOpen[0].name",
            "missing",
        ),
        (
            spec_with("description: Scale up", "description: [a]"),
            "spec.remediations[0].actionsOnOpen[0].description",
            "expected a string, found a list",
        ),
        (
            spec_with("- {name: Escalate", "- 5\n        - {name: Escalate"),
            f"{ACTIONS}[0]",
            "expected a mapping, found 5",
        ),
        (
            spec_with("    - problemType: default", "    - null\n    - problemType: default"),
            "spec.remediations[1]",
            "missing",
        ),
        ("- a\n- b\n", "remediation.yaml", "expected a mapping, found a list"),
        ("", "remediation.yaml", "the file is empty"),
    ],
)
def test_invalid_files_name_the_path(content, field, reason):
    with pytest.raises(InvalidRemediationError) as caught:
        parse_remediation(content)
    assert caught.value.field == field
    assert caught.value.detail == f"{field}: {reason}"
    assert caught.value.message == f"{PARSE_FAILED} {field}: {reason}"


@pytest.mark.parametrize(
    "content",
    ["apiVersion: [", "a: 1\na: 2\n", "a: 1\n---\nb: 2\n", b"\xff\xfe"],
)
def test_unreadable_yaml(content):
    with pytest.raises(InvalidRemediationError) as caught:
        parse_remediation(content)
    assert caught.value.field == "remediation.yaml"
    assert caught.value.message.startswith(PARSE_FAILED + " remediation.yaml: ")


def test_parse_failed_is_keptns_message():
    assert (
        PARSE_FAILED == "Could not parse remediation.yaml file. Please validate it against the specification."
    )


# --- choosing the action --------------------------------------------------------------------------


def test_keptn_get_next_action_cases():
    """Keptn's TestGetNextAction (remediation-service/handler/get_action_event_handler_test.go)."""
    remediation = fixture("remediation")
    by_root_cause = choose_action(remediation, problem("", "problemType1"), 0)
    assert action_of(by_root_cause) == {
        "name": "actionName1",
        "action": "action1",
        "description": "actionDescription1",
        "value": {"foo": "bar"},
    }
    assert choose_action(remediation, problem("problemType1", ""), 0).action == by_root_cause.action
    assert (
        action_of(choose_action(remediation, problem("problemType1", "problemType2"), 0))["name"]
        == "actionName11"
    )
    assert action_of(choose_action(remediation, problem("", ""), 0))["name"] == "escalateDefaultName"
    no_default = choose_action(fixture("remediation-without-default"), problem("", ""), 0)
    assert (no_default.status, no_default.result, no_default.action) == ("succeeded", "fail", None)
    beyond = choose_action(remediation, problem("", ""), 2)
    assert (beyond.status, beyond.result, beyond.action) == ("succeeded", "fail", None)


def test_success_outcome():
    outcome = choose_action(fixture("remediation"), problem("x", "problemType1"), 1)
    assert outcome == GetActionOutcome(
        result="pass",
        status="succeeded",
        message="action 2 of 2 for root cause problemType1: actionName2",
        action={
            "name": "actionName2",
            "action": "action2",
            "description": "actionDescription2",
            "value": {"foo": "baz"},
        },
        next_index=2,
    )


def test_root_cause_before_problem_title_before_default():
    remediation = parse_remediation(
        "apiVersion: spec.keptn.sh/0.1.4\nkind: Remediation\nspec:\n  remediations:\n"
        "    - {problemType: default, actionsOnOpen: [{name: d, action: d}]}\n"
        "    - {problemType: Title, actionsOnOpen: [{name: t, action: t}]}\n"
        "    - {problemType: Cause, actionsOnOpen: [{name: c, action: c}]}\n"
    )
    assert action_of(choose_action(remediation, problem("Title", "Cause"), 0))["name"] == "c"
    assert action_of(choose_action(remediation, problem("Title", "Other"), 0))["name"] == "t"
    assert action_of(choose_action(remediation, problem("Other", "Other"), 0))["name"] == "d"
    assert action_of(choose_action(remediation, problem("Title", ""), 0))["name"] == "t"
    assert action_of(choose_action(remediation, {"problemTitle": "Title"}, 0))["name"] == "t"
    assert action_of(choose_action(remediation, None, 0))["name"] == "d"
    assert action_of(choose_action(remediation, {}, 0))["name"] == "d"
    assert action_of(choose_action(remediation, problem("title", "cause"), 0))["name"] == "d"  # exact match


def test_first_of_duplicate_problem_types_wins():
    remediation = parse_remediation(
        "apiVersion: spec.keptn.sh/0.1.4\nkind: Remediation\nspec:\n  remediations:\n"
        "    - {problemType: P, actionsOnOpen: [{name: first, action: a}]}\n"
        "    - {problemType: P, actionsOnOpen: [{name: second, action: a}, {name: third, action: a}]}\n"
    )
    assert action_of(choose_action(remediation, problem("", "P"), 0))["name"] == "first"
    assert (
        choose_action(remediation, problem("", "P"), 1).message
        == "there is no action with index 1 for root cause P"
    )


@pytest.mark.parametrize(
    ("details", "named"),
    [
        (problem("Response time degradation", "Memory leak"), "root cause Memory leak"),
        (problem("Response time degradation", ""), "problem title Response time degradation"),
        (problem("", ""), "problem type default"),
        (None, "problem type default"),
    ],
)
def test_no_match_messages(details, named):
    remediation = fixture("remediation-without-default")
    outcome = choose_action(remediation, details, 0)
    assert outcome == GetActionOutcome(
        result="fail",
        status="succeeded",
        message=f"unable to find action for {named}",
        action=None,
        next_index=None,
    )


def test_end_of_escalation_names_the_problem_as_keptn_did():
    remediation = parse_remediation(SPEC_EXAMPLE)
    degradation = problem("Response time degradation", "")
    assert action_of(choose_action(remediation, degradation, 1))["action"] == "togglefeature"
    outcome = choose_action(remediation, degradation, 2)
    assert (outcome.status, outcome.result) == ("succeeded", "fail")
    assert outcome.message == "there is no action with index 2 for problem title Response time degradation"
    # found through the default list, but named by the root cause (Keptn's text)
    fallback = choose_action(remediation, problem("Unknown", "Disk full"), 1)
    assert fallback.message == "there is no action with index 1 for root cause Disk full"
    assert (
        choose_action(remediation, problem(), 7).message
        == "there is no action with index 7 for problem type default"
    )


def test_empty_action_list_matches_and_ends_at_once():
    remediation = parse_remediation(
        "apiVersion: spec.keptn.sh/0.1.4\nkind: Remediation\nspec:\n  remediations:\n"
        "    - {problemType: P, actionsOnOpen: []}\n"
        "    - {problemType: default, actionsOnOpen: [{name: d, action: d}]}\n"
    )
    assert (
        choose_action(remediation, problem("", "P"), 0).message
        == "there is no action with index 0 for root cause P"
    )


def test_value_is_omitted_when_null_like_go_utils():
    remediation = parse_remediation((KEPTN_DATA / "spec/examples/remediation-example.yaml").read_text())
    assert choose_action(remediation, problem("x"), 0).action == {
        "name": "Escalate problem",
        "action": "escalate",
        "description": "Escalate the problem using a SlackBot",
    }


@pytest.mark.parametrize(
    ("details", "reason"),
    [
        ({"rootCause": 5}, "problem.rootCause must be a string, found 5"),
        ({"problemTitle": ["a"]}, "problem.problemTitle must be a string, found a list"),
        ("Response time degradation", "problem must be a mapping, found 'Response time degradation'"),
    ],
)
def test_undecodable_problem_is_errored(details, reason):
    outcome = choose_action(parse_remediation(SPEC_EXAMPLE), details, 0)
    assert outcome == GetActionOutcome(result="fail", status="errored", message=f"{DECODE_FAILED}: {reason}")


def test_negative_index_is_errored():
    outcome = choose_action(parse_remediation(SPEC_EXAMPLE), problem(), -1)
    assert outcome == GetActionOutcome.errored(
        f"{DECODE_FAILED}: get-action.actionIndex must be at least 0, found -1"
    )


# --- action index ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, 0),
        ({"get-action": None}, 0),
        ({"get-action": {}}, 0),
        ({"get-action": {"actionIndex": None}}, 0),
        ({"get-action": {"actionIndex": 0}}, 0),
        ({"get-action": {"actionIndex": 3}}, 3),
        ({"get-action": {"actionIndex": 2.0}}, 2),
        ({"actionIndex": 5}, 0),  # top level (the spec's schema) is not where Keptn read it
    ],
)
def test_get_action_index(data, expected):
    assert get_action_index({**SCOPE, **data}) == expected


@pytest.mark.parametrize(
    ("data", "field", "found"),
    [
        ({"get-action": {"actionIndex": -1}}, "get-action.actionIndex", "-1"),
        ({"get-action": {"actionIndex": "1"}}, "get-action.actionIndex", "'1'"),
        ({"get-action": {"actionIndex": 1.5}}, "get-action.actionIndex", "1.5"),
        ({"get-action": {"actionIndex": True}}, "get-action.actionIndex", "True"),
        ({"get-action": {"actionIndex": [1]}}, "get-action.actionIndex", "a list"),
        ({"get-action": 1}, "get-action", "1"),
    ],
)
def test_invalid_action_index(data, field, found):
    with pytest.raises(InvalidInputError) as caught:
        get_action_index(data)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{DECODE_FAILED}: {field} must be")
    assert caught.value.message.endswith(f"found {found}")


@pytest.mark.parametrize("index", [0, 1, 2])
def test_keptn_handler_fixtures(index):
    """Keptn's Test_Receiving_GetActionTriggeredEvent_RemediationFromServiceLevel, on our side."""
    event = json.loads(
        (FIXTURES / f"remediation-service_handler_test_events_get-action.triggered-{index}.json").read_text()
    )
    remediation = parse_remediation(SPEC_EXAMPLE)
    outcome = choose_action(remediation, event["data"]["problem"], get_action_index(event["data"]))
    data = get_action_finished_data(event["data"], outcome)
    assert data["status"] == "succeeded"
    if index < 2:
        assert data["result"] == "pass"
        assert data["get-action"] == {"actionIndex": index + 1}
    else:
        assert data["result"] == "fail"
        assert "get-action" not in data and "action" not in data


# --- get-action.finished --------------------------------------------------------------------------


def test_finished_data_on_success():
    triggered: dict[str, Any] = {
        **SCOPE,
        "labels": {"team": "a"},
        "problem": problem("Response time degradation"),
        "get-action": {"actionIndex": 0},
        "result": "fail",
        "message": "from the previous run",
    }
    outcome = choose_action(
        parse_remediation(SPEC_EXAMPLE), triggered["problem"], get_action_index(triggered)
    )
    assert get_action_finished_data(triggered, outcome) == {
        **SCOPE,
        "labels": {"team": "a"},
        "result": "pass",
        "status": "succeeded",
        "message": "action 1 of 2 for problem title Response time degradation: Scaling ReplicaSet by 1",
        "action": {
            "name": "Scaling ReplicaSet by 1",
            "action": "scaling",
            "description": "Scale up",
            "value": "1",
        },
        "get-action": {"actionIndex": 1},
    }


def test_finished_data_at_the_end_of_escalation():
    outcome = choose_action(parse_remediation(SPEC_EXAMPLE), problem(), 1)
    assert get_action_finished_data(SCOPE, outcome) == {
        **SCOPE,
        "result": "fail",
        "status": "succeeded",
        "message": "there is no action with index 1 for problem type default",
    }


def test_finished_data_when_errored():
    try:
        parse_remediation("apiVersion: x")
    except InvalidRemediationError as exc:
        outcome = GetActionOutcome.errored(exc.message)
    assert get_action_finished_data(SCOPE, outcome) == {
        **SCOPE,
        "result": "fail",
        "status": "errored",
        "message": f"{PARSE_FAILED} apiVersion: remediation.yaml file does not conform to remediation spec "
        "spec.keptn.sh/0.1.4 (found 'x')",
    }


def test_missing_file_message_is_keptns():
    assert (
        remediation_missing_message(SCOPE)
        == "Could not get remediation.yaml file for services carts in stage production."
    )
