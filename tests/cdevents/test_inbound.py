"""CDEvents → Keptn (pure): schema validation of input, and the triggers accepted CDEvents become."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from keptn.cdevents_inbound import ACCEPTED_TYPES, is_trigger, keptn_target, to_keptn_event
from keptn.cdevents_schema import known_types, validate_cdevent
from keptn.errors import InvalidEventError
from keptn.events import parse_incoming_event
from keptn.validation import stamp_event, validate_incoming_event
from tests.cdevents.schemas import BY_TYPE, conformance_examples

EXAMPLES = conformance_examples()
ACCEPTED_EXAMPLES = {name: doc for name, doc in EXAMPLES.items() if doc["context"]["type"] in ACCEPTED_TYPES}
KEPTN = {"project": "sockshop", "service": "carts"}


def with_keptn(document: dict[str, Any], **keptn: Any) -> dict[str, Any]:
    document = copy.deepcopy(document)
    custom = document.setdefault("customData", {})
    custom["keptn"] = {**KEPTN, **keptn}
    return document


def test_the_runtime_knows_every_v0_5_1_type() -> None:
    assert known_types() == frozenset(BY_TYPE)
    assert len(EXAMPLES) == 45


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_conformance_example_is_valid(name: str) -> None:
    assert validate_cdevent(EXAMPLES[name]) == EXAMPLES[name]["context"]["type"]


def test_the_accept_path_covers_its_types() -> None:
    assert {doc["context"]["type"] for doc in ACCEPTED_EXAMPLES.values()} == set(ACCEPTED_TYPES)


@pytest.mark.parametrize("name", sorted(ACCEPTED_EXAMPLES))
def test_every_accepted_conformance_example_becomes_a_valid_keptn_event(name: str) -> None:
    document = with_keptn(ACCEPTED_EXAMPLES[name])
    validate_cdevent(document)  # customData.keptn keeps it valid
    target = keptn_target(document)
    event = to_keptn_event(document, target, stage="dev" if is_trigger(document["context"]["type"]) else None)
    incoming = parse_incoming_event(event)
    validate_incoming_event(incoming)
    stored = stamp_event(incoming, now=datetime.now(UTC), new_id=lambda: "unused")
    assert stored.data["project"] == "sockshop"
    assert stored.data["service"] == "carts"
    assert stored.shkeptncontext == document["context"]["chainId"]
    assert stored.source == document["context"]["source"]
    assert stored.data["cdevent"]["id"] == document["context"]["id"]
    # Redelivered, the same CDEvent is the same Keptn event.
    assert to_keptn_event(document, target, stage="dev")["id"] == event["id"]


def test_the_mapping_of_each_kind() -> None:
    published = with_keptn(EXAMPLES["artifact_published.json"], labels={"by": "ci"})
    published["subject"]["id"] = "pkg:docker/keptnexamples/carts@0.13.1?repository_url=docker.io"
    event = to_keptn_event(published, keptn_target(published), stage="dev")
    assert event["type"] == "sh.keptn.event.dev.delivery.triggered"
    assert event["data"]["configurationChange"] == {
        "values": {"image": "docker.io/keptnexamples/carts:0.13.1"}
    }
    assert event["data"]["labels"] == {"by": "ci"}

    deployed = with_keptn(EXAMPLES["service_deployed.json"], stage="staging")
    event = to_keptn_event(deployed, keptn_target(deployed), stage="staging")
    assert event["type"] == "sh.keptn.event.staging.evaluation.triggered"

    chosen = with_keptn(EXAMPLES["service_upgraded.json"], sequence="canary")
    assert (
        to_keptn_event(chosen, keptn_target(chosen), stage="dev")["type"]
        == "sh.keptn.event.dev.canary.triggered"
    )

    detected = with_keptn(EXAMPLES["incident_detected.json"])
    event = to_keptn_event(detected, keptn_target(detected), stage="production")
    assert event["type"] == "sh.keptn.event.production.remediation.triggered"
    assert event["data"]["problem"] == {
        "ProblemID": "incident-123",
        "problemTitle": "Response time above threshold of 100ms",
        "State": "OPEN",
    }

    resolved = with_keptn(EXAMPLES["incident_resolved.json"])
    assert not is_trigger(resolved["context"]["type"])
    event = to_keptn_event(resolved, keptn_target(resolved), stage=None)
    assert event["type"] == "sh.keptn.events.problem"
    assert event["data"]["State"] == "RESOLVED"
    assert "stage" not in event["data"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["subject"]["content"].__setitem__("artifactId", 5), "subject.content.artifactId"),
        (lambda d: d["subject"]["content"].pop("environment"), "subject.content.environment"),
        (lambda d: d["context"].pop("id"), "context.id"),
        (lambda d: d["context"].__setitem__("specversion", "0.4.1"), "context.specversion"),
        (lambda d: d["context"].__setitem__("type", "dev.cdevents.service.exploded.0.3.0"), "context.type"),
        (lambda d: d["context"].__setitem__("type", "sh.keptn.event.dev.delivery.triggered"), "context.type"),
        (lambda d: d.__setitem__("extra", 1), None),
        (lambda d: d.pop("context"), "context"),
    ],
)
def test_invalid_cdevents_name_the_field(change: Any, field: str | None) -> None:
    document = copy.deepcopy(EXAMPLES["service_deployed.json"])
    change(document)
    with pytest.raises(InvalidEventError) as raised:
        validate_cdevent(document)
    assert raised.value.field == field
    if field:
        assert field in raised.value.message


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (EXAMPLES["artifact_published.json"], "customData.keptn"),
        (with_keptn(EXAMPLES["artifact_published.json"], project=None), "customData.keptn.project"),
        (with_keptn(EXAMPLES["artifact_published.json"], service=""), "customData.keptn.service"),
        (with_keptn(EXAMPLES["artifact_published.json"], stage=3), "customData.keptn.stage"),
        (with_keptn(EXAMPLES["artifact_published.json"], labels={"a": 1}), "customData.keptn.labels"),
        (with_keptn(EXAMPLES["pipelinerun_queued.json"]), "context.type"),
    ],
)
def test_a_trigger_must_say_where_it_goes(document: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEventError) as raised:
        keptn_target(document)
    assert raised.value.field == field
