"""Building answers: ids, envelope, scope, finished defaults (go-utils createStartedEvent & co)."""

from __future__ import annotations

import datetime
import uuid

import pytest

from capstan.sdk._events import (
    InvalidTriggeredEvent,
    answer_event,
    finished_data,
    parse_triggered,
    scope_data,
    started_id,
)
from keptn.event_types import EventKind
from keptn.events import KeptnEvent
from tests.sdk.fakes import triggered


def test_answer_envelope_references_the_triggered_event():
    event = triggered(labels={"owner": "team-a"}, configurationChange={"values": {"image": "x"}})
    now = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.UTC)
    answer = answer_event(event, EventKind.STARTED, source="helm-service", data=scope_data(event), now=now)
    uuid.UUID(answer["id"])
    assert answer["id"] != event["id"]
    assert answer["type"] == "sh.keptn.event.deployment.started"
    assert answer["triggeredid"] == event["id"]
    assert answer["shkeptncontext"] == event["shkeptncontext"]
    assert answer["gitcommitid"] == "c0ffee"
    assert answer["source"] == "helm-service"
    assert answer["time"] == "2024-05-06T07:08:09.123Z"
    assert answer["specversion"] == "1.0"
    assert answer["shkeptnspecversion"] == "0.2.4"
    assert answer["data"] == {
        "project": "sockshop",
        "stage": "dev",
        "service": "carts",
        "labels": {"owner": "team-a"},
    }
    KeptnEvent.from_wire(answer)  # a valid Keptn event


def test_answer_ids_and_no_commit_when_the_trigger_has_none():
    event = triggered()
    del event["gitcommitid"]
    first = answer_event(event, EventKind.FINISHED, source="s", data={})
    second = answer_event(event, EventKind.FINISHED, source="s", data={})
    assert first["id"] != second["id"]
    assert "gitcommitid" not in first
    # one .started per integration and task: built twice, it is the same event
    started = answer_event(event, EventKind.STARTED, source="s", data={})
    assert answer_event(event, EventKind.STARTED, source="s", data={})["id"] == started["id"]
    assert answer_event(event, EventKind.STARTED, source="other", data={})["id"] != started["id"]
    assert answer_event(triggered(), EventKind.STARTED, source="s", data={})["id"] != started["id"]
    assert started["id"] == started_id("s", event["id"]) and uuid.UUID(started["id"]).version == 5


def test_scope_copies_labels():
    event = triggered(labels={"a": "b"})
    scope = scope_data(event)
    scope["labels"]["a"] = "changed"
    assert event["data"]["labels"] == {"a": "b"}


def test_finished_defaults_and_overrides():
    event = triggered()
    assert finished_data(event, None) == {
        "project": "sockshop",
        "stage": "dev",
        "service": "carts",
        "result": "pass",
        "status": "succeeded",
    }
    mine = finished_data(event, {"result": "warning", "deployment": {"x": 1}})
    assert mine["result"] == "warning" and mine["status"] == "succeeded" and mine["deployment"] == {"x": 1}
    explicit = finished_data(event, {"result": "warning", "message": "a"}, result="fail", message="b")
    assert explicit["result"] == "fail" and explicit["message"] == "b"
    assert finished_data(event, {"result": "", "status": None})["result"] == "pass"


@pytest.mark.parametrize("bad", [["not", "a", "dict"], {"when": datetime.datetime.now()}])
def test_finished_rejects_unusable_data(bad):
    with pytest.raises(TypeError):
        finished_data(triggered(), bad)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"id": ""}, "'id'"),
        ({"type": "sh.keptn.event.deployment.finished"}, "not a task .triggered"),
        ({"type": "sh.keptn.event.dev.delivery.triggered"}, "not a task .triggered"),
        ({"shkeptncontext": None}, "'shkeptncontext'"),
        ({"data": "text"}, "'data'"),
    ],
)
def test_parse_triggered_names_the_problem(change, needle):
    event = {**triggered(), **change}
    with pytest.raises(InvalidTriggeredEvent, match=needle):
        parse_triggered(event)


def test_parse_triggered_needs_the_scope():
    event = triggered()
    del event["data"]["service"]
    with pytest.raises(InvalidTriggeredEvent, match="data.service"):
        parse_triggered(event)
