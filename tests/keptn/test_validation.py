"""Keptn api-service validation of POST /api/v1/event (spec §2.4), and stamping."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from keptn.errors import InvalidEventError
from keptn.events import parse_incoming_event
from keptn.validation import (
    DEFAULT_EVENT_SOURCE,
    DEFAULT_SHKEPTNSPECVERSION,
    stamp_event,
    validate_incoming_event,
)
from tests.keptn_schemas import assert_matches_event_schema

SCOPE = {"project": "sockshop", "stage": "dev", "service": "carts"}
NOW = datetime(2024, 3, 1, 12, 0, 0, 987654, tzinfo=UTC)


def incoming(event_type, data=None, **attributes):
    return parse_incoming_event({"type": event_type, "data": SCOPE if data is None else data, **attributes})


def rejected(event):
    with pytest.raises(InvalidEventError) as info:
        validate_incoming_event(event)
    return info.value


# --- special types ---------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ["sh.keptn.log.error", "sh.keptn.events.problem"])
def test_special_types_are_not_validated(event_type):
    validate_incoming_event(incoming(event_type, {"project": 42, "labels": None, "Anything": [1]}))


def test_monitoring_configure_needs_project_and_type():
    validate_incoming_event(
        incoming("sh.keptn.event.monitoring.configure", {"project": "p", "type": "prometheus"})
    )
    error = rejected(incoming("sh.keptn.event.monitoring.configure", {"type": "prometheus"}))
    assert error.field == "data.project"
    assert error.message.startswith("mandatory fields(s) 'project', 'service' or 'type' missing")
    error = rejected(incoming("sh.keptn.event.monitoring.configure", {"project": "p"}))
    assert error.field == "data.type"
    assert "data.type" in error.message
    error = rejected(incoming("sh.keptn.event.monitoring.configure", {"project": "p", "type": 3}))
    assert error.field == "data.type"
    assert error.message.startswith("could not parse common event data")


# --- sequence types ----------------------------------------------------------------------------


def test_sequence_triggered_is_accepted():
    validate_incoming_event(
        incoming("sh.keptn.event.dev.delivery.triggered", {**SCOPE, "anything": {"x": 1}})
    )


@pytest.mark.parametrize("kind", ["started", "finished", "status.changed", "invalidated"])
def test_sequence_types_accept_only_triggered(kind):
    error = rejected(incoming(f"sh.keptn.event.dev.delivery.{kind}"))
    assert error.field == "type"
    assert error.message.startswith(f"unknown event type action: {kind}")


@pytest.mark.parametrize("missing", ["project", "stage", "service"])
def test_sequence_triggered_needs_the_scope(missing):
    error = rejected(incoming("sh.keptn.event.dev.delivery.triggered", {**SCOPE, missing: ""}))
    assert error.field == f"data.{missing}"
    assert error.message.startswith("mandatory field(s) 'project', 'stage' or 'service' missing")
    assert f"data.{missing}" in error.message


def test_sequence_stage_must_match_the_type():
    error = rejected(incoming("sh.keptn.event.prod.delivery.triggered", SCOPE))
    assert error.field == "data.stage"
    assert error.message.startswith("stage name in event data and in event type does not match")


# --- task types --------------------------------------------------------------------------------


def test_task_started_needs_scope_and_triggeredid():
    validate_incoming_event(incoming("sh.keptn.event.deployment.started", triggeredid="t-1"))
    error = rejected(incoming("sh.keptn.event.deployment.started"))
    assert error.field == "triggeredid"
    assert error.message == "mandatory field 'triggeredid' missing"
    error = rejected(incoming("sh.keptn.event.deployment.started", {"project": "p"}, triggeredid="t"))
    assert error.field == "data.stage"


def test_task_finished_needs_scope_result_status_and_triggeredid_in_keptns_order():
    finished = "sh.keptn.event.deployment.finished"
    full = {**SCOPE, "result": "pass", "status": "succeeded"}
    validate_incoming_event(incoming(finished, full, triggeredid="t-1"))
    error = rejected(incoming(finished, {**full, "service": None}))
    assert error.field == "data.service"
    error = rejected(incoming(finished, {**SCOPE, "status": "succeeded"}))
    assert (error.field, error.message) == ("data.result", "result field is not set (data.result)")
    error = rejected(incoming(finished, {**SCOPE, "result": "pass", "status": ""}))
    assert (error.field, error.message) == ("data.status", "status field is not set (data.status)")
    error = rejected(incoming(finished, full))
    assert error.field == "triggeredid"


def test_task_finished_accepts_any_non_empty_result_like_keptn():
    data = {**SCOPE, "result": "failed", "status": "whatever"}
    validate_incoming_event(incoming("sh.keptn.event.test.finished", data, triggeredid="t"))


def test_task_invalidated_is_accepted_without_scope():
    validate_incoming_event(incoming("sh.keptn.event.evaluation.invalidated", {}))


@pytest.mark.parametrize("kind", ["triggered", "status.changed"])
def test_task_types_reject_other_kinds(kind):
    error = rejected(incoming(f"sh.keptn.event.deployment.{kind}", triggeredid="t"))
    assert error.field == "type"
    assert error.message.startswith(f"unknown event type action: {kind}")


@pytest.mark.parametrize(
    "event_type",
    ["garbage", "", "sh.keptn.event.deployment", "a.b.c.d.started", "sh.keptn.event.a.b.c.triggered"],
)
def test_anything_else_is_an_unknown_event_type(event_type):
    error = rejected(incoming(event_type))
    assert error.field == "type"
    assert error.message.startswith("unknown event type")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**SCOPE, "project": 42}, "data.project"),
        ({**SCOPE, "labels": {"a": 1}}, "data.labels.a"),
        ({**SCOPE, "labels": "x"}, "data.labels"),
        ({**SCOPE, "message": 1}, "data.message"),
    ],
)
def test_common_data_must_have_its_json_types(data, field):
    error = rejected(incoming("sh.keptn.event.dev.delivery.triggered", data))
    assert error.field == field
    assert error.message.startswith("could not parse common event data")


# --- Capstan beyond Keptn: names -------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "data", "field"),
    [
        ("sh.keptn.event.dev.delivery.triggered", {**SCOPE, "project": "Sock.shop"}, "data.project"),
        ("sh.keptn.event.dev.delivery.triggered", {**SCOPE, "project": "p" * 201}, "data.project"),
        ("sh.keptn.event.dev.delivery.triggered", {**SCOPE, "service": "carts.db"}, "data.service"),
        ("sh.keptn.event.dev.delivery.triggered", {**SCOPE, "service": "s" * 44}, "data.service"),
        ("sh.keptn.event.Dev.delivery.triggered", {**SCOPE, "stage": "Dev"}, "data.stage"),
        ("sh.keptn.event.deployment.started", {**SCOPE, "stage": "dev.eu"}, "data.stage"),
        ("sh.keptn.event.evaluation.invalidated", {"project": "a_b"}, "data.project"),
        (
            "sh.keptn.event.monitoring.configure",
            {"project": "p", "type": "t", "service": "S"},
            "data.service",
        ),
    ],
)
def test_names_must_follow_keptns_rules(event_type, data, field):
    error = rejected(incoming(event_type, data, triggeredid="t"))
    assert error.field == field
    assert error.message.startswith(f"{field}: ")


# --- stamping ----------------------------------------------------------------------------------


def ids():
    counter = itertools.count(1)
    return lambda: str(uuid.UUID(int=next(counter)))


def test_stamp_fills_in_what_keptn_fills_in():
    event = stamp_event(incoming("sh.keptn.event.dev.delivery.triggered"), now=NOW, new_id=ids())
    assert event.id == "00000000-0000-0000-0000-000000000001"
    assert event.shkeptncontext == "00000000-0000-0000-0000-000000000002"
    assert event.time == datetime(2024, 3, 1, 12, 0, 0, 987000, tzinfo=UTC)
    assert event.source == DEFAULT_EVENT_SOURCE == "https://github.com/keptn/keptn/api"
    assert event.shkeptnspecversion == DEFAULT_SHKEPTNSPECVERSION == "0.2.4"
    assert event.datacontenttype == "application/json"
    assert event.specversion == "1.0"
    assert event.triggeredid is None and event.gitcommitid is None
    assert event.data == SCOPE
    assert_matches_event_schema(event.to_wire())


def test_stamp_keeps_the_clients_id_and_values_but_overwrites_time():
    client = incoming(
        "sh.keptn.event.deployment.finished",
        {**SCOPE, "result": "pass", "status": "succeeded"},
        id="client-id-1",
        time="2020-01-01T00:00:00Z",
        source="helm-service",
        shkeptncontext="6BA7B810-9DAD-11D1-80B4-00C04FD430C8",
        triggeredid="t-1",
        gitcommitid="abc123",
        shkeptnspecversion="0.2.3",
        contenttype="text/plain",
        traceparent="00-trace",
    )
    event = stamp_event(
        client, now=datetime(2024, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))), new_id=ids()
    )
    assert event.id == "client-id-1"
    assert event.time == datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    assert event.source == "helm-service"
    assert event.shkeptncontext == "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
    assert (event.triggeredid, event.gitcommitid, event.shkeptnspecversion) == ("t-1", "abc123", "0.2.3")
    assert event.datacontenttype == "application/json"
    assert event.extensions == {"traceparent": "00-trace"}
    assert_matches_event_schema(event.to_wire())


def test_stamp_derives_the_context_from_a_non_uuid_and_treats_empty_strings_as_absent():
    event = stamp_event(
        incoming(
            "sh.keptn.event.dev.delivery.triggered", id="", source="", shkeptncontext="abc", gitcommitid=""
        ),
        now=NOW,
        new_id=ids(),
    )
    assert event.shkeptncontext == "61626320-2020-4020-a020-202020202020"
    assert event.id == "00000000-0000-0000-0000-000000000001"
    assert event.source == DEFAULT_EVENT_SOURCE
    assert event.gitcommitid is None


def test_stamp_copies_data_deeply():
    client = incoming("sh.keptn.event.dev.delivery.triggered", {**SCOPE, "labels": {"a": "b"}})
    event = stamp_event(client, now=NOW, new_id=ids())
    client.data["labels"]["a"] = "changed"
    assert event.data["labels"] == {"a": "b"}


def test_stamp_needs_an_aware_now():
    with pytest.raises(ValueError, match="time-zone-aware"):
        stamp_event(incoming("sh.keptn.event.dev.delivery.triggered"), now=datetime(2024, 1, 1), new_id=ids())
