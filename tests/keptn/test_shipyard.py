"""Shipyard parsing: Keptn's examples, schema errors with paths, Keptn's rules, lookups."""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from keptn.errors import InvalidShipyardError
from keptn.shipyard import (
    BUILTIN_EVALUATION_SEQUENCE,
    Sequence,
    Shipyard,
    Task,
    parse_shipyard,
    validate_shipyard_document,
)

EXAMPLES = Path(__file__).parents[1] / "data" / "keptn-spec" / "shipyard-examples.yaml"


def example_documents() -> list[str]:
    parts = re.split(r"^---$", EXAMPLES.read_text("utf-8"), flags=re.MULTILINE)
    return [part for part in parts if part.strip()]


@pytest.mark.parametrize("text", example_documents(), ids=lambda text: text.strip().splitlines()[0][:60])
def test_every_example_shipyard_parses(text):
    shipyard = parse_shipyard(text)
    assert shipyard.kind == "Shipyard"
    assert shipyard.stage_names()


def test_there_are_ten_examples():
    assert len(example_documents()) == 10


def test_example_contents_are_read_into_the_model():
    docs = example_documents()
    three_stages = parse_shipyard(docs[0])
    assert three_stages.stage_names() == ["dev", "hardening", "production"]
    assert three_stages.stage("dev").sequences == []
    assert three_stages.stage("dev").sequence("evaluation") is BUILTIN_EVALUATION_SEQUENCE

    remediation = parse_shipyard(docs[2]).stage("production").sequence("remediation")
    trigger = remediation.triggeredOn[0]
    assert trigger.event == "production.remediation.finished"
    assert trigger.stage_and_sequence == ("production", "remediation")
    assert trigger.selector.match == {"evaluation.result": "fail"}
    assert [task.name for task in remediation.tasks] == ["get-action", "action", "evaluation"]
    evaluation = remediation.tasks[2]
    assert evaluation.triggeredAfter == "10m"
    assert evaluation.triggered_after_delta() == timedelta(minutes=10)
    assert evaluation.properties == {"timeframe": "10m"}
    assert remediation.tasks[0].triggered_after_delta() == timedelta(0)

    delivery = parse_shipyard(docs[1]).stage("hardening").sequence("delivery")
    assert delivery.triggeredOn[0].selector is None


def test_keptn_docs_rollback_example_with_broken_indentation_is_rejected():
    # As printed on the Keptn 0.14 "Shipyard" page: "selector" is indented under the event string.
    text = textwrap.dedent(
        """\
        apiVersion: "spec.keptn.sh/0.2.3"
        kind: "Shipyard"
        metadata:
          name: "shipyard-sockshop"
        spec:
          stages:
            - name: "production"
              sequences:
                - name: "rollback"
                  triggeredOn:
                    - event: "production.delivery.finished"
                        selector:
                          match:
                            result: failed
                  tasks:
                    - name: "notification"
                    - name: "rollback"
        """
    )
    with pytest.raises(InvalidShipyardError) as info:
        parse_shipyard(text)
    assert info.value.field == "shipyard"
    assert "not valid YAML" in info.value.message
    fixed = re.sub(
        r"^( +)(selector:|match:|result: failed)", lambda m: m.group(1)[2:] + m.group(2), text, flags=re.M
    )
    assert parse_shipyard(fixed).stage("production").sequence("rollback").triggeredOn[0].selector.match == {
        "result": "failed"
    }


def shipyard_text(stages: str, *, api_version: str = "spec.keptn.sh/0.2.3") -> str:
    return (
        f"apiVersion: {api_version}\nkind: Shipyard\nmetadata:\n  name: test\nspec:\n  stages:\n"
        + textwrap.indent(textwrap.dedent(stages), "    ")
    )


DELIVERY = """\
- name: dev
  sequences:
    - name: delivery
      tasks:
        - name: deployment
"""


def reject(text: str) -> InvalidShipyardError:
    with pytest.raises(InvalidShipyardError) as info:
        parse_shipyard(text)
    assert info.value.message.startswith(f"{info.value.field}: ")
    return info.value


def test_minimal_shipyard():
    shipyard = parse_shipyard(shipyard_text(DELIVERY))
    assert shipyard.apiVersion == "spec.keptn.sh/0.2.3"
    assert shipyard.metadata.name == "test"
    assert shipyard.stage("dev").sequence("delivery").tasks == [Task(name="deployment")]


# --- YAML ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("- a\n- b\n", "must be a mapping"),
        ("", "not null"),
        ("just text", "not string"),
        ("a: [\n", "not valid YAML"),
        ("apiVersion: x\napiVersion: y\n", "duplicate key 'apiVersion'"),
        ("a: 1\n---\nb: 2\n", "single YAML document"),
    ],
)
def test_yaml_level_errors(text, reason):
    error = reject(text)
    assert error.field == "shipyard"
    assert reason in error.message


def test_yaml_is_read_as_yaml_1_2_like_keptn():
    text = shipyard_text(
        """\
        - name: dev
          sequences:
            - name: delivery
              tasks:
                - name: deployment
                  properties:
                    enabled: yes
                    since: 2021-05-10
                    replicas: 010
                    flag: true
        """
    )
    properties = parse_shipyard(text).spec.stages[0].sequences[0].tasks[0].properties
    assert properties == {"enabled": "yes", "since": "2021-05-10", "replicas": 10, "flag": True}


def test_null_structural_values_count_as_absent():
    text = shipyard_text(
        """\
        - name: dev
          sequences:
        - name: prod
          sequences:
            - name: delivery
              triggeredOn:
              tasks:
                - name: deployment
                  triggeredAfter:
                  properties:
                    image: null
        """
    )
    shipyard = parse_shipyard(text)
    assert shipyard.stage("dev").sequences == []
    sequence = shipyard.stage("prod").sequence("delivery")
    assert sequence.triggeredOn == []
    assert sequence.tasks[0] == Task(name="deployment", properties={"image": None})


# --- JSON schema -----------------------------------------------------------------------------


MINIMAL = "apiVersion: spec.keptn.sh/0.2.3\nkind: Shipyard\nmetadata: {name: x}\n"


def with_trigger(trigger: str) -> str:
    return shipyard_text(DELIVERY.replace("tasks:", f"triggeredOn: [{trigger}]\n      tasks:"))


SELECTOR = "spec.stages[0].sequences[0].triggeredOn[0].selector"
TASK = "spec.stages[0].sequences[0].tasks[0]"


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("kind: Shipyard\nmetadata: {name: x}\nspec: {stages: []}\n", "apiVersion",
         "required property is missing"),
        (MINIMAL.replace("{name: x}", "{}") + "spec: {stages: []}\n", "metadata.name",
         "required property is missing"),
        (MINIMAL + "spec: {}\n", "spec.stages", "required property is missing"),
        (MINIMAL.replace("spec.keptn.sh/0.2.3", "0.2") + "spec: {stages: []}\n", "apiVersion",
         "must be of type string, not number"),
        (MINIMAL + "spec: {stages: []}\nextra: 1\n", "extra",
         "unknown property (allowed: apiVersion, kind, metadata, spec)"),
        (shipyard_text("- name: dev\n  deployment_strategy: direct\n"), "spec.stages[0].deployment_strategy",
         "unknown property (allowed: name, sequences)"),
        (shipyard_text("- name: 5\n"), "spec.stages[0].name", "must be of type string, not number"),
        (shipyard_text("- name: dev\n  sequences: {}\n"), "spec.stages[0].sequences",
         "must be of type array"),
        (shipyard_text(DELIVERY + "- name: prod\n  sequences:\n    - name: delivery\n"),
         "spec.stages[1].sequences[0].tasks", "required property is missing"),
        (shipyard_text(DELIVERY.replace("- name: deployment", "- deployment")), TASK,
         "must be of type object, not string"),
        (shipyard_text(DELIVERY + "          properties: [a]\n"), f"{TASK}.properties",
         "must be of type object, not array"),
        (shipyard_text(DELIVERY.replace("tasks:", "triggers: [dev.a.finished]\n      tasks:")),
         "spec.stages[0].sequences[0].triggers", "unknown property (allowed: name, triggeredOn, tasks)"),
        (with_trigger("dev.a.finished"), "spec.stages[0].sequences[0].triggeredOn[0]",
         "must be of type object, not string"),
        (with_trigger("{event: a.b.finished, selector: {match: {result: 1}}}"), f"{SELECTOR}.match.result",
         "must be of type string, not number"),
        (with_trigger("{event: a.b.finished, selector: {}}"), f"{SELECTOR}.match",
         "required property is missing"),
        (shipyard_text(DELIVERY + "          triggeredAfter: 10\n"), f"{TASK}.triggeredAfter",
         "must be of type string, not number"),
    ],
)  # fmt: skip
def test_schema_errors_name_the_path(text, field, reason):
    error = reject(text)
    assert error.field == field
    assert reason in error.message


# --- Keptn's rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version",
    ["spec.keptn.sh/0.2.0", "spec.keptn.sh/0.2.4", "spec.keptn.sh/0.2", "spec.keptn.sh/1.0.0", "0.2.3",
     "spec.keptn.sh/v0.2.3", "spec.keptn.sh/0.2.3+build.7"],
)  # fmt: skip
def test_accepted_api_versions(version):
    assert parse_shipyard(shipyard_text(DELIVERY, api_version=version)).apiVersion == version


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        ("spec.keptn.sh/0.1.7", "Invalid shipyard APIVersion spec.keptn.sh/0.1.7. Expected >= 0.2"),
        ("spec.keptn.sh/0.2.5-rc.1", "Invalid shipyard APIVersion"),
        ("spec.keptn.sh/latest", "could not parse shipyard version 'spec.keptn.sh/latest'"),
        ('""', "could not parse shipyard version"),
        ("keptn.sh/0.2.3", "could not parse shipyard version"),
    ],
)
def test_rejected_api_versions(version, reason):
    error = reject(shipyard_text(DELIVERY, api_version=version))
    assert error.field == "apiVersion"
    assert reason in error.message


def test_at_least_one_stage():
    error = reject(
        "apiVersion: spec.keptn.sh/0.2.3\nkind: Shipyard\nmetadata: {name: x}\nspec: {stages: []}\n"
    )
    assert error.field == "spec.stages"
    assert "Shipyard must contain at least one stage." in error.message


def test_stage_names():
    error = reject(shipyard_text(DELIVERY + "- name: ''\n"))
    assert error.field == "spec.stages[1].name"
    assert "all stages within the shipyard must have a name" in error.message
    error = reject(shipyard_text(DELIVERY.replace("name: dev", "name: Dev")))
    assert error.field == "spec.stages[0].name"
    assert "Stage name 'Dev' contains upper case letter(s) or special character(s)" in error.message
    assert "Please update stage name in your shipyard and try again." in error.message
    error = reject(shipyard_text(DELIVERY + "- name: prod\n" + DELIVERY))
    assert error.field == "spec.stages[2].name"
    assert "stage name 'dev' is already used by spec.stages[0]" in error.message


def test_sequence_names():
    two = DELIVERY + "    - name: delivery\n      tasks: [{name: release}]\n"
    error = reject(shipyard_text(two))
    assert error.field == "spec.stages[0].sequences[1].name"
    assert "sequence name 'delivery' is already used in stage 'dev'" in error.message
    # the same sequence name in another stage is fine
    parse_shipyard(shipyard_text(DELIVERY + DELIVERY.replace("name: dev", "name: prod")))
    error = reject(shipyard_text(DELIVERY.replace("name: delivery", "name: de.livery")))
    assert error.field == "spec.stages[0].sequences[0].name"
    assert "must not contain dots" in error.message
    error = reject(shipyard_text(DELIVERY.replace("name: delivery", "name: ''")))
    assert error.field == "spec.stages[0].sequences[0].name"
    assert "must not be empty" in error.message


def test_tasks():
    error = reject(
        shipyard_text(DELIVERY.replace("      tasks:\n        - name: deployment\n", "      tasks: []\n"))
    )
    assert error.field == "spec.stages[0].sequences[0].tasks"
    assert "sequence 'delivery' in stage 'dev' must have at least one task" in error.message
    error = reject(shipyard_text(DELIVERY.replace("name: deployment", "name: deploy.ment")))
    assert error.field == "spec.stages[0].sequences[0].tasks[0].name"
    assert "task name 'deploy.ment' must not contain dots" in error.message
    error = reject(shipyard_text(DELIVERY.replace("name: deployment", "name: ''")))
    assert error.field == "spec.stages[0].sequences[0].tasks[0].name"


@pytest.mark.parametrize(
    ("after", "reason"), [("10 minutes", "unknown unit"), ("-1m", "negative"), ("5", "unit")]
)
def test_triggered_after_must_be_a_go_duration(after, reason):
    text = shipyard_text(DELIVERY + f"        - name: test\n          triggeredAfter: '{after}'\n")
    error = reject(text)
    assert error.field == "spec.stages[0].sequences[0].tasks[1].triggeredAfter"
    assert reason in error.message


@pytest.mark.parametrize(
    "event",
    [
        "dev.delivery",
        "sh.keptn.event.dev.delivery.finished",
        "dev.delivery.triggered",
        "dev..finished",
        ".x.finished",
    ],
)
def test_trigger_events_have_the_form_stage_sequence_finished(event):
    text = shipyard_text(DELIVERY.replace("tasks:", f"triggeredOn: [{{event: '{event}'}}]\n      tasks:"))
    error = reject(text)
    assert error.field == "spec.stages[0].sequences[0].triggeredOn[0].event"
    assert "must have the form <stage>.<sequence>.finished" in error.message


# --- lookups and the built-in evaluation sequence --------------------------------------------


def test_builtin_evaluation_sequence():
    shipyard = parse_shipyard(shipyard_text(DELIVERY))
    dev = shipyard.stage("dev")
    assert dev.sequence("evaluation") == Sequence(name="evaluation", tasks=[Task(name="evaluation")])
    assert dev.sequence("nope") is None
    assert shipyard.stage("nope") is None
    own = DELIVERY + "    - name: evaluation\n      tasks: [{name: test}, {name: evaluation}]\n"
    custom = parse_shipyard(shipyard_text(own)).stage("dev").sequence("evaluation")
    assert [task.name for task in custom.tasks] == ["test", "evaluation"]


def test_models_are_immutable_and_strict():
    shipyard = parse_shipyard(shipyard_text(DELIVERY))
    with pytest.raises(ValidationError):
        shipyard.kind = "Other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Task(name="x", unknown=1)  # type: ignore[call-arg]


def test_validate_an_already_loaded_document():
    document = {
        "apiVersion": "spec.keptn.sh/0.2.3",
        "kind": "Shipyard",
        "metadata": {"name": "x"},
        "spec": {"stages": [{"name": "dev"}]},
    }
    assert isinstance(validate_shipyard_document(document), Shipyard)
    with pytest.raises(InvalidShipyardError) as info:
        validate_shipyard_document(["not", "a", "mapping"])
    assert info.value.field == "shipyard"
