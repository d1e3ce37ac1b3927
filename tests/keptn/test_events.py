"""Event models, Keptn's time format, and Keptn's shkeptncontext derivation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from keptn.errors import InvalidEventError, InvalidInputError
from keptn.event_types import EventKind, TaskEventType
from keptn.events import (
    EventData,
    IncomingEvent,
    KeptnEvent,
    ResultType,
    StatusType,
    format_keptn_time,
    keptn_context_from,
    parse_incoming_event,
    parse_keptn_time,
)

CONTEXT = "a3e5f16d-8888-4720-82c7-6995062905c1"


def wire_event(**changes):
    event: dict[str, object] = {
        "specversion": "1.0",
        "id": "c4d3a334-6cb9-4e8c-a372-7e0b45942f53",
        "source": "shipyard-controller",
        "type": "sh.keptn.event.deployment.triggered",
        "time": "2021-05-10T09:51:00.123Z",
        "datacontenttype": "application/json",
        "shkeptncontext": CONTEXT,
        "data": {"project": "sockshop", "stage": "dev", "service": "carts"},
    }
    event.update(changes)
    return {key: value for key, value in event.items() if value is not ...}


# --- time -----------------------------------------------------------------------------------


def test_format_keptn_time_is_utc_milliseconds_with_z_and_truncates():
    moment = datetime(2021, 5, 10, 11, 51, 0, 123999, tzinfo=timezone(timedelta(hours=2)))
    assert format_keptn_time(moment) == "2021-05-10T09:51:00.123Z"
    assert format_keptn_time(datetime(2021, 1, 1, tzinfo=UTC)) == "2021-01-01T00:00:00.000Z"
    with pytest.raises(ValueError, match="time-zone-aware"):
        format_keptn_time(datetime(2021, 1, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-05-10T09:51:00Z", datetime(2021, 5, 10, 9, 51, tzinfo=UTC)),
        ("2021-05-10T09:51:00.123Z", datetime(2021, 5, 10, 9, 51, 0, 123000, tzinfo=UTC)),
        ("2021-05-10T09:51:00.123456789Z", datetime(2021, 5, 10, 9, 51, 0, 123456, tzinfo=UTC)),
        ("2021-05-10T11:51:00.5+02:00", datetime(2021, 5, 10, 9, 51, 0, 500000, tzinfo=UTC)),
        ("2021-05-10t09:51:00z", datetime(2021, 5, 10, 9, 51, tzinfo=UTC)),
        ("2021-05-10T00:30:00-01:30", datetime(2021, 5, 10, 2, 0, tzinfo=UTC)),
    ],
)
def test_parse_keptn_time(text, expected):
    parsed = parse_keptn_time(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2021-05-10T09:51:00",  # naive
        "2021-05-10 09:51:00Z",
        "2021-05-10",
        "2021-02-30T00:00:00Z",
        "2021-05-10T23:59:60Z",
        "2021-05-10T09:51:00+24:00",
        "1620640260",
        "",
    ],
)
def test_parse_keptn_time_rejects(text):
    with pytest.raises(InvalidInputError) as info:
        parse_keptn_time(text, field="data.evaluation.start")
    assert info.value.field == "data.evaluation.start"
    assert info.value.message.startswith("data.evaluation.start: ")


def test_parse_keptn_time_rejects_numbers():
    with pytest.raises(InvalidInputError, match="RFC 3339"):
        parse_keptn_time(0)  # type: ignore[arg-type]


# --- shkeptncontext ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # Go: fmt.Sprintf("%-16v", "abc") = "abc" + 13 spaces; bytes 61 62 63 20..; byte 6 -> 0x40,
        # byte 8 -> 0xa0 (version 4, RFC 4122 variant).
        ("abc", "61626320-2020-4020-a020-202020202020"),
        # >= 16 bytes: the first 16 bytes "my-pipeline-run-"; 0x65 -> 0x45, 0x69 -> 0xa9.
        ("my-pipeline-run-42", "6d792d70-6970-456c-a96e-652d72756e2d"),
        # 16 bytes of two-byte runes: taken as they are; 0xc3 -> 0x43 and 0x83.
        ("ääääääää", "c3a4c3a4-c3a4-43a4-83a4-c3a4c3a4c3a4"),
        # 14 bytes (7 runes): padded to 16 runes, then the first 16 bytes are read.
        ("äääääää", "c3a4c3a4-c3a4-43a4-83a4-c3a4c3a42020"),
        # Go's JSON decoder turns a lone surrogate into U+FFFD (ef bf bd).
        ("\ud800", "efbfbd20-2020-4020-a020-202020202020"),
    ],
)
def test_context_derived_like_go(given, expected):
    assert keptn_context_from(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "6BA7B810-9DAD-11D1-80B4-00C04FD430C8",
        "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "URN:UUID:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
        "x6ba7b810-9dad-11d1-80b4-00c04fd430c8y",  # Go drops the first character, ignores the last
        "6ba7b8109dad11d180b400c04fd430c8",
    ],
)
def test_uuid_contexts_are_kept_in_canonical_form(given):
    assert keptn_context_from(given) == "6ba7b810-9dad-11d1-80b4-00c04fd430c8"


@pytest.mark.parametrize(
    "given",
    [
        "6ba7b810-9dad-11d1-80b4-00c04fd430cg",  # not hex
        "6ba7b8109dad-11d1-80b4-00c04fd430c8-",  # hyphens in the wrong places
        "urx:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c",  # 35 characters
    ],
)
def test_near_uuids_are_seeds(given):
    derived = keptn_context_from(given)
    assert derived != "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
    assert derived == keptn_context_from(given)


@pytest.mark.parametrize("given", ["a", "run 7", "my-pipeline-run-42", "x" * 100, "ääääääääää", "🚀"])
def test_derived_contexts_are_deterministic_version_4_rfc4122(given):
    derived = keptn_context_from(given)
    parsed = uuid.UUID(derived)
    assert str(parsed) == derived
    assert parsed.version == 4
    assert parsed.variant == uuid.RFC_4122
    assert keptn_context_from(given) == derived


def test_short_contexts_are_space_padded_and_long_ones_cut_to_16_bytes():
    assert keptn_context_from("a") == keptn_context_from("a ") == keptn_context_from("a" + " " * 15)
    assert keptn_context_from("x" * 16 + "A") == keptn_context_from("x" * 16 + "B")
    assert keptn_context_from("x" * 15 + "A") != keptn_context_from("x" * 15 + "B")


def test_missing_context_gets_a_new_random_uuid():
    first, second = keptn_context_from(None), keptn_context_from("")
    assert first != second
    assert uuid.UUID(first).version == 4
    assert keptn_context_from(None, new_uuid=lambda: "11111111-1111-4111-8111-111111111111") == (
        "11111111-1111-4111-8111-111111111111"
    )


# --- KeptnEvent -------------------------------------------------------------------------------


def test_keptn_event_round_trips_through_the_wire():
    wire = wire_event(triggeredid="t-1", gitcommitid="abc", shkeptnspecversion="0.2.4", traceparent="00-x")
    event = KeptnEvent.from_wire(wire)
    assert event.to_wire() == wire
    assert KeptnEvent.from_wire(event.to_wire()) == event
    assert event.extensions == {"traceparent": "00-x"}
    assert event.event_type() == TaskEventType("deployment", EventKind.TRIGGERED)


def test_pydantic_json_dump_agrees_with_the_wire_format():
    event = KeptnEvent.from_wire(wire_event(ext="x"))
    dumped = event.model_dump(mode="json", exclude_none=True)
    assert dumped == event.to_wire()
    assert KeptnEvent.model_validate_json(event.model_dump_json()) == event


def test_to_wire_omits_none_and_copies_data():
    event = KeptnEvent.from_wire(wire_event(data={"deployment": {"uris": ["a"]}}))
    wire = event.to_wire()
    assert "triggeredid" not in wire and "gitcommitid" not in wire and "shkeptnspecversion" not in wire
    wire["data"]["deployment"]["uris"].append("b")
    assert event.data == {"deployment": {"uris": ["a"]}}


def test_time_is_normalised_to_utc_milliseconds():
    local = datetime(2021, 5, 10, 11, 51, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    event = KeptnEvent.from_wire(wire_event()).model_copy()
    event = KeptnEvent(**{**event.model_dump(), "time": local})
    assert event.time == datetime(2021, 5, 10, 9, 51, 0, 123000, tzinfo=UTC)
    assert event.to_wire()["time"] == "2021-05-10T09:51:00.123Z"
    assert KeptnEvent.from_wire(wire_event(time="2021-05-10T09:51:00.123456789Z")).time.microsecond == 123000


def test_defaults_and_legacy_contenttype():
    wire = wire_event(specversion=..., datacontenttype=...)
    event = KeptnEvent.from_wire(wire)
    assert event.specversion == "1.0"
    assert event.datacontenttype == "application/json"
    legacy = KeptnEvent.from_wire(wire_event(datacontenttype=..., contenttype="application/json"))
    assert legacy.datacontenttype == "application/json"
    assert "contenttype" not in legacy.to_wire()


def test_null_extensions_are_absent():
    event = KeptnEvent.from_wire(wire_event(traceparent=None, triggeredid=None))
    assert event.extensions == {}
    assert "traceparent" not in event.to_wire()


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"id": ""}, "id", "must be a non-empty string"),
        ({"id": 5}, "id", "must be a string"),
        ({"source": ...}, "source", "required attribute is missing"),
        ({"type": ""}, "type", "non-empty"),
        ({"time": ...}, "time", "required attribute is missing"),
        ({"time": 0}, "time", "RFC 3339"),
        ({"time": "2021-05-10T09:51:00"}, "time", "time zone"),
        ({"shkeptncontext": ...}, "shkeptncontext", "required attribute is missing"),
        ({"specversion": "0.2"}, "specversion", "must be '1.0'"),
        ({"data": ...}, "data", "required attribute is missing"),
        ({"data": None}, "data", "must be a JSON object"),
        ({"data": "text"}, "data", "must be a JSON object"),
        ({"triggeredid": 7}, "triggeredid", "must be a string"),
        ({"Trace": "x"}, "Trace", "attribute names must match"),
        ({"averyveryverylongname1": "x"}, "averyveryverylongname1", "at most 20"),
        ({"my_ext": "x"}, "my_ext", "attribute names must match"),
        ({"ext": 1.5}, "ext", "string, an integer or a boolean"),
        ({"ext": {"a": 1}}, "ext", "string, an integer or a boolean"),
        ({"ext": [1]}, "ext", "string, an integer or a boolean"),
    ],
)
def test_keptn_event_rejects_with_the_attribute_named(changes, field, reason):
    with pytest.raises(InvalidEventError) as info:
        KeptnEvent.from_wire(wire_event(**changes))
    assert info.value.field == field
    assert reason in info.value.message
    assert field in info.value.message


def test_extension_values_of_allowed_types():
    event = KeptnEvent.from_wire(wire_event(a1="s", b2=3, c3=True))
    assert event.extensions == {"a1": "s", "b2": 3, "c3": True}


def test_direct_construction_raises_pydantic_errors_naming_the_attribute():
    with pytest.raises(ValidationError, match="extension attribute 'Bad'"):
        KeptnEvent(**wire_event(Bad="x"))


def test_from_wire_needs_a_mapping():
    with pytest.raises(InvalidEventError) as info:
        KeptnEvent.from_wire(["not", "an", "object"])  # type: ignore[arg-type]
    assert info.value.field == "body"


# --- IncomingEvent ----------------------------------------------------------------------------


def test_incoming_event_needs_only_type_and_data():
    event = parse_incoming_event({"type": "sh.keptn.event.dev.delivery.triggered", "data": {}})
    assert event.id is None and event.time is None and event.shkeptncontext is None
    assert event.extensions == {}


def test_incoming_event_reads_every_optional_attribute():
    event = parse_incoming_event(
        {
            "type": "sh.keptn.event.test.finished",
            "data": {"project": "p"},
            "specversion": "1.0",
            "id": "my-id",
            "source": "jmeter",
            "time": "2021-05-10T11:51:00+02:00",
            "datacontenttype": "application/json",
            "contenttype": "application/json",
            "shkeptncontext": "ctx",
            "triggeredid": "t",
            "gitcommitid": "g",
            "shkeptnspecversion": "0.2.3",
            "traceparent": "00-abc",
        }
    )
    assert event.time == datetime(2021, 5, 10, 9, 51, tzinfo=UTC)
    assert event.contenttype == "application/json"
    assert event.extensions == {"traceparent": "00-abc"}


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"data": {}}, "type", "required attribute is missing"),
        ({"type": 5, "data": {}}, "type", "must be a string"),
        ({"type": "x"}, "data", "required attribute is missing"),
        ({"type": "x", "data": []}, "data", "must be a JSON object"),
        ({"type": "x", "data": None}, "data", "must be a JSON object"),
        ({"type": "x", "data": {}, "id": 12}, "id", "must be a string"),
        ({"type": "x", "data": {}, "shkeptncontext": 12}, "shkeptncontext", "must be a string"),
        ({"type": "x", "data": {}, "time": 0}, "time", "RFC 3339"),
        ({"type": "x", "data": {}, "time": 1620640260.5}, "time", "RFC 3339"),
        ({"type": "x", "data": {}, "time": "2021-05-10T09:51:00"}, "time", "time zone"),
        ({"type": "x", "data": {}, "specversion": "0.3"}, "specversion", "'1.0'"),
        ({"type": "x", "data": {}, "specversion": 1.0}, "specversion", "'1.0'"),
        ({"type": "x", "data": {}, "Ext": "a"}, "Ext", "attribute names must match"),
        ({"type": "x", "data": {}, "ext": 0.5}, "ext", "string, an integer or a boolean"),
    ],
)
def test_incoming_event_rejects_with_the_attribute_named(body, field, reason):
    with pytest.raises(InvalidEventError) as info:
        parse_incoming_event(body)
    assert info.value.field == field
    assert reason in info.value.message


def test_incoming_event_nulls_are_absent_and_body_must_be_an_object():
    event = parse_incoming_event({"type": "x", "data": {}, "id": None, "time": None, "ext": None})
    assert event.id is None and event.time is None and event.extensions == {}
    with pytest.raises(InvalidEventError) as info:
        parse_incoming_event("[]")
    assert info.value.field == "body"


def test_incoming_event_model_accepts_python_datetimes():
    aware = datetime(2021, 1, 1, tzinfo=UTC)
    assert IncomingEvent(type="x", data={}, time=aware).time == aware
    with pytest.raises(ValidationError):
        IncomingEvent(type="x", data={}, time=datetime(2021, 1, 1))


# --- EventData --------------------------------------------------------------------------------


def test_event_data_reads_common_fields_and_keeps_the_rest():
    data = EventData.from_data(
        {
            "project": "sockshop",
            "stage": "dev",
            "service": "carts",
            "labels": {"buildId": "7"},
            "status": "succeeded",
            "result": "pass",
            "message": "ok",
            "deployment": {"deploymentstrategy": "direct"},
        }
    )
    assert (data.project, data.stage, data.service) == ("sockshop", "dev", "carts")
    assert data.labels == {"buildId": "7"}
    assert data.result == ResultType.PASS and data.status == StatusType.SUCCEEDED
    assert data.model_extra == {"deployment": {"deploymentstrategy": "direct"}}


def test_event_data_tolerates_nulls_and_unknown_result_values():
    data = EventData.from_event(KeptnEvent.from_wire(wire_event(data={"labels": None, "result": "failed"})))
    assert data.labels is None and data.project is None
    assert data.result == "failed"  # Keptn accepted it and counted it as fail


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"project": 1}, "data.project"),
        ({"labels": {"a": 1}}, "data.labels.a"),
        ({"labels": ["a"]}, "data.labels"),
        ({"status": True}, "data.status"),
        ({"message": {"text": "x"}}, "data.message"),
    ],
)
def test_event_data_rejects_wrong_json_types(data, field):
    with pytest.raises(InvalidEventError) as info:
        EventData.from_data(data)
    assert info.value.field == field
    assert info.value.message.startswith(field)
