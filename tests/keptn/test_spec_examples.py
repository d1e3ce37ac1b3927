"""Keptn's spec examples (tests/data/keptn-spec/events) against our models and the schema helper."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from keptn.events import KeptnEvent, parse_incoming_event
from tests.keptn_schemas import (
    assert_matches_event_schema,
    matches_event_schema,
    relaxed_schema,
    schema_name,
)

EVENTS = Path(__file__).parents[1] / "data" / "keptn-spec" / "events"
EXAMPLES = sorted(EVENTS.glob("*.example.json"))
TIME = "2021-05-10T09:51:00.000Z"

# Examples that break their own schema in keptn/spec (see tests/data/keptn-spec/README.md), with
# the one problem each has under the relaxed reading too.
BROKEN_EXAMPLES = {
    "evaluation-finished": "event.data.evaluation.indicatorResults[0].status: 'failed' is not one of",
    "problem": "event.data.ProblemDetails: ",
    "release-triggered": "event.data.deployment.deploymentstrategy: 'duplicate' is not one of",
}


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return loaded


def stamped(path: Path) -> dict[str, Any]:
    event = load(path)
    event["time"] = TIME  # no example carries the time Keptn's api-service stamps
    return event


def test_there_are_42_examples_and_schemas():
    assert len(EXAMPLES) == 42
    assert len(list(EVENTS.glob("*.schema.json"))) == 42


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name.removesuffix(".example.json"))
def test_every_example_parses_as_a_keptn_event_and_round_trips(path):
    assert "time" not in load(path)
    event = KeptnEvent.from_wire(stamped(path))
    assert KeptnEvent.from_wire(event.to_wire()) == event
    assert event.to_wire() == stamped(path)
    # the example as such is a valid POST /api/v1/event body
    assert parse_incoming_event(load(path)).type == event.type


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name.removesuffix(".example.json"))
def test_examples_against_their_own_schemas_strictly(path):
    name = path.name.removesuffix(".example.json")
    schema = load(EVENTS / f"{name}.schema.json")
    errors = list(jsonschema.Draft4Validator(schema).iter_errors(load(path)["data"]))
    assert bool(errors) == (name in BROKEN_EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name.removesuffix(".example.json"))
def test_examples_against_the_relaxed_reading(path):
    name = path.name.removesuffix(".example.json")
    problems = matches_event_schema(stamped(path))
    if name in BROKEN_EXAMPLES:
        assert len(problems) == 1
        assert problems[0].startswith(BROKEN_EXAMPLES[name])
    else:
        assert problems == []


def test_the_test_status_changed_example_is_mislabelled():
    example = load(EVENTS / "test-status-changed.example.json")
    assert example["type"] == "sh.keptn.event.test.triggered"


# --- the helper itself -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "name"),
    [
        ("sh.keptn.event.deployment.triggered", "deployment-triggered"),
        ("sh.keptn.event.get-sli.finished", "get-sli-finished"),
        ("sh.keptn.event.approval.status.changed", "approval-status-changed"),
        ("sh.keptn.event.service.create.status.changed", "service-create-status-changed"),
        ("sh.keptn.event.dev.delivery.finished", "dev-delivery-finished"),
        ("sh.keptn.event.monitoring.configure", "configure-monitoring"),
        ("sh.keptn.log.error", "error-log"),
        ("sh.keptn.events.problem", "problem"),
        ("garbage", None),
    ],
)
def test_schema_names(event_type, name):
    assert schema_name(event_type) == name


def deployment_triggered(**changes) -> dict[str, Any]:
    event = stamped(EVENTS / "deployment-triggered.example.json")
    event.update(changes)
    return {key: value for key, value in event.items() if value is not ...}


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"time": ...}, "'time' is a required property"),
        ({"time": "2021-05-10T09:51:00Z"}, "event.time: "),
        ({"time": "2021-05-10T09:51:00.000000Z"}, "event.time: "),
        ({"specversion": "0.2"}, "event.specversion: "),
        ({"id": ""}, "event.id: "),
        ({"source": ...}, "'source' is a required property"),
        ({"datacontenttype": ...}, "'datacontenttype' is a required property"),
        ({"datacontenttype": "text/plain"}, "event.datacontenttype: "),
        ({"shkeptncontext": "A3E5F16D-8888-4720-82C7-6995062905C1"}, "event.shkeptncontext: "),
        ({"shkeptncontext": "ctx"}, "event.shkeptncontext: "),
        ({"type": "sh.keptn.event.deployment.done"}, "event.type: "),
        ({"triggeredid": "t"}, "event.triggeredid: must be absent on a .triggered event"),
        ({"gitcommitid": None}, "event.gitcommitid: None is not of type 'string'"),
        ({"traceparent": None}, "event.traceparent: None is not of type"),
        ({"Foo": "x"}, "'Foo' does not match any of the regexes"),
        ({"ext": 1.5}, "event.ext: 1.5 is not of type"),
        ({"data": "text"}, "event.data: 'text' is not of type 'object'"),
    ],
)
def test_the_envelope_is_strict(changes, problem):
    problems = matches_event_schema(deployment_triggered(**changes))
    assert any(problem in line for line in problems), problems


def test_triggeredid_is_required_on_answers():
    event = stamped(EVENTS / "deployment-finished.example.json")
    del event["triggeredid"]
    assert matches_event_schema(event) == ["event.triggeredid: required on a .finished event"]
    with pytest.raises(AssertionError, match="does not match Keptn's schemas"):
        assert_matches_event_schema(event)


def test_envelope_accepts_extensions_and_optional_attributes():
    assert_matches_event_schema(deployment_triggered(traceparent="00-x", n1=3, flag=True, gitcommitid=...))


def test_data_relaxations():
    data = {
        # 1. required fields missing (configurationChange, deployment.deploymentURIsLocal)
        "project": "sockshop",
        "deployment": {"deploymentstrategy": "direct", "deploymentURIsPublic": None},  # 3. Go null
        "labels": None,  # 3. Go null
        "status": "aborted",  # 4. go-utils StatusAborted
        "test": {"start": "x"},  # 2. carried over by the merge
    }
    assert_matches_event_schema(deployment_triggered(data=data))
    evaluation = stamped(EVENTS / "evaluation-finished.example.json")
    evaluation["data"]["evaluation"]["indicatorResults"][0]["status"] = "info"  # 4. lighthouse
    evaluation["data"]["evaluation"]["indicatorResults"][0]["passTargets"] = None
    evaluation["data"]["evaluation"]["comparedEvents"] = None
    assert_matches_event_schema(evaluation)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"result": "failed"}, "event.data.result: 'failed' is not one of"),
        ({"status": "ok"}, "event.data.status: 'ok' is not one of"),
        ({"labels": {"a": 1}}, "event.data.labels.a: 1 is not of type"),
        ({"deployment": {"deploymentstrategy": "canary"}}, "event.data.deployment.deploymentstrategy"),
        ({"deployment": {"deploymentURIsLocal": "http://x"}}, "event.data.deployment.deploymentURIsLocal"),
        ({"project": 1}, "event.data.project: 1 is not of type"),
    ],
)
def test_data_types_and_enums_are_kept(data, problem):
    problems = matches_event_schema(deployment_triggered(data=data))
    assert any(line.startswith(problem) for line in problems), problems


def test_types_without_a_schema_use_the_common_data_fields():
    event = deployment_triggered(type="sh.keptn.event.dev.delivery.finished", triggeredid="t")
    event["data"] = {"project": "p", "result": "pass", "status": "succeeded", "anything": [1]}
    assert_matches_event_schema(event)
    event["data"]["result"] = "passed"
    assert matches_event_schema(event) == [
        "event.data.result: 'passed' is not one of ['pass', 'warning', 'fail', None]"
    ]
    custom = deployment_triggered(type="sh.keptn.event.my-task.triggered", data={"labels": {"k": 2}})
    assert len(matches_event_schema(custom)) == 1


def test_relaxed_schema_does_not_modify_its_input():
    schema = load(EVENTS / "evaluation-finished.schema.json")
    original = copy.deepcopy(schema)
    relaxed = relaxed_schema(schema)
    assert schema == original
    assert "required" not in json.dumps(relaxed)
