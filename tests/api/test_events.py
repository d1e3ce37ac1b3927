"""POST /api/v1/event: Keptn's api-service contract, the three HTTP modes, idempotent retries."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from keptn.events import keptn_context_from, parse_keptn_time
from tests.api.helpers import assert_error, create_project
from tests.keptn_schemas import assert_matches_event_schema

EVENTS = "/api/v1/event"
DATASTORE = "/api/mongodb-datastore/event"


def trigger(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "sh.keptn.event.dev.delivery.triggered",
        "source": "tests",
        "specversion": "1.0",
        "data": {
            "project": "sockshop",
            "stage": "dev",
            "service": "carts",
            "configurationChange": {"values": {"image": "docker.io/keptnexamples/carts:0.13.1"}},
        },
    }
    event.update(overrides)
    return event


async def stored_events(api: httpx.AsyncClient, context: str) -> list[dict[str, Any]]:
    response = await api.get(DATASTORE, params={"keptnContext": context})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


@pytest.fixture
async def project(api: httpx.AsyncClient) -> None:
    await create_project(api, "sockshop", "carts")


async def test_a_sequence_trigger_is_stamped_stored_and_readable(api, project):
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = await api.post(EVENTS, json=trigger(time="2001-01-01T00:00:00Z"))
    assert response.status_code == 200, response.text
    context = response.json()["keptnContext"]
    assert str(uuid.UUID(context)) == context

    [event] = await stored_events(api, context)
    assert event["type"] == "sh.keptn.event.dev.delivery.triggered"
    assert event["shkeptncontext"] == context
    assert event["source"] == "tests"
    assert event["datacontenttype"] == "application/json"
    uuid.UUID(event["id"])
    # Keptn overwrites the client's time with the time of acceptance
    assert parse_keptn_time(event["time"]) >= before
    assert event["data"]["configurationChange"]["values"]["image"].endswith("carts:0.13.1")
    assert_matches_event_schema(event)


async def test_a_client_context_is_kept_and_a_non_uuid_one_derived_as_keptn_does(api, project):
    fixed = str(uuid.uuid4())
    response = await api.post(EVENTS, json=trigger(shkeptncontext=fixed))
    assert response.json() == {"keptnContext": fixed}
    response = await api.post(EVENTS, json=trigger(shkeptncontext="my-pipeline-run-42"))
    assert response.json() == {"keptnContext": keptn_context_from("my-pipeline-run-42")}


async def test_a_retry_with_the_same_id_is_answered_alike_and_stored_once(api, project):
    event_id = str(uuid.uuid4())
    first = await api.post(EVENTS, json=trigger(id=event_id))
    second = await api.post(EVENTS, json=trigger(id=event_id))
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert len(await stored_events(api, first.json()["keptnContext"])) == 1


async def test_reusing_an_id_for_another_event_is_a_conflict(api, project):
    event_id = str(uuid.uuid4())
    await api.post(EVENTS, json=trigger(id=event_id))
    other = trigger(id=event_id, type="sh.keptn.event.staging.delivery.triggered")
    other["data"]["stage"] = "staging"
    assert_error(await api.post(EVENTS, json=other), 409, event_id)


@pytest.mark.parametrize(
    ("change", "status", "needles"),
    [
        ({"data": {"project": "nope", "stage": "dev", "service": "carts"}}, 404, ("data.project", "nope")),
        ({"data": {"project": "sockshop", "stage": "dev", "service": "nope"}}, 404, ("data.service", "nope")),
        ({"data": {"project": "sockshop", "stage": "prod", "service": "carts"}}, 400, ("stage",)),
        ({"data": {"project": "sockshop", "stage": "dev"}}, 400, ("service",)),
        ({"type": "sh.keptn.event.dev.delivery.finished"}, 400, ("type",)),
        ({"type": "sh.keptn.event.deployment.triggered"}, 400, ("type",)),
        ({"type": "com.example.unknown"}, 400, ("type",)),
        ({"type": 42}, 400, ("type",)),
        ({"data": "not an object"}, 400, ("data",)),
        ({"specversion": "0.3"}, 400, ("specversion",)),
        ({"time": 0}, 400, ("time",)),
    ],
)
async def test_bad_triggers_get_a_clear_error_naming_the_field(api, project, change, status, needles):
    assert_error(await api.post(EVENTS, json=trigger(**change)), status, *needles)


async def test_task_answers_need_triggeredid_result_and_status(api, project):
    started = {
        "type": "sh.keptn.event.deployment.started",
        "source": "helm",
        "data": {"project": "sockshop", "stage": "dev", "service": "carts"},
    }
    assert_error(await api.post(EVENTS, json=started), 400, "triggeredid")
    finished: dict[str, Any] = {
        **started,
        "type": "sh.keptn.event.deployment.finished",
        "triggeredid": str(uuid.uuid4()),
    }
    assert_error(await api.post(EVENTS, json=finished), 400, "result")
    finished["data"] = {**finished["data"], "result": "pass", "status": "succeeded"}
    response = await api.post(EVENTS, json=finished)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "event",
    [
        {"type": "sh.keptn.log.error", "data": {"message": "integration broke"}},
        {"type": "sh.keptn.events.problem", "data": {"State": "OPEN", "ProblemTitle": "cpu"}},
        {
            "type": "sh.keptn.event.monitoring.configure",
            "data": {"project": "sockshop", "type": "prometheus"},
        },
    ],
)
async def test_special_event_types_are_accepted(api, project, event):
    response = await api.post(EVENTS, json=event)
    assert response.status_code == 200, response.text


async def test_structured_mode_needs_the_whole_envelope(api, project):
    headers = {"content-type": "application/cloudevents+json"}
    body = trigger()
    assert_error(await api.post(EVENTS, content=json.dumps(body), headers=headers), 400, "id")
    body.update(id=str(uuid.uuid4()))
    response = await api.post(EVENTS, content=json.dumps(body), headers=headers)
    assert response.status_code == 200, response.text


def binary_headers(**overrides: str) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": str(uuid.uuid4()),
        "ce-source": "binary%20client",
        "ce-type": "sh.keptn.event.dev.delivery.triggered",
    }
    headers.update(overrides)
    return headers


async def test_binary_mode_reads_percent_encoded_headers_and_the_data_body(api, project):
    context = str(uuid.uuid4())
    data = trigger()["data"]
    response = await api.post(
        EVENTS, content=json.dumps(data), headers=binary_headers(**{"ce-shkeptncontext": context})
    )
    assert response.json() == {"keptnContext": context}
    [event] = await stored_events(api, context)
    assert event["source"] == "binary client"
    assert event["data"]["service"] == "carts"


@pytest.mark.parametrize(
    ("headers", "status", "needle"),
    [
        (binary_headers(**{"ce-id": ""}), 400, "ce-id"),
        (binary_headers(**{"ce-datacontenttype": "application/json"}), 400, "ce-datacontenttype"),
        (binary_headers(**{"ce-source": "%C0%A0"}), 400, "ce-source"),
        (binary_headers(**{"content-type": "application/xml"}), 415, "application/xml"),
    ],
)
async def test_bad_binary_events_are_refused(api, project, headers, status, needle):
    headers = {k: v for k, v in headers.items() if v != ""}
    data = json.dumps(trigger()["data"])
    assert_error(await api.post(EVENTS, content=data, headers=headers), status, needle)


@pytest.mark.parametrize(
    ("content", "content_type", "status", "needle"),
    [
        ("[]", "application/cloudevents-batch+json", 415, "batch"),
        ("type=x", "application/x-www-form-urlencoded", 415, "not supported"),
        ("{not json", "application/json", 400, "JSON"),
        ("[1, 2]", "application/json", 400, "object"),
        ("", "application/json", 400, "JSON"),
    ],
)
async def test_unusable_bodies_are_refused(api, content, content_type, status, needle):
    response = await api.post(EVENTS, content=content, headers={"content-type": content_type})
    assert_error(response, status, needle)


async def test_an_oversized_event_is_refused(api, project):
    body = trigger()
    body["data"]["blob"] = "x" * (1024 * 1024)
    assert_error(await api.post(EVENTS, json=body), 413, "larger")


async def test_every_api_route_needs_the_token(api):
    for headers in ({"x-token": ""}, {"x-token": "wrong"}):
        response = await api.post("/api/v1/auth", headers=headers)
        assert_error(response, 401, "x-token")
    response = await api.get("/api/controlPlane/v1/project", headers={"x-token": "wrong"})
    assert_error(response, 401, "token")
    assert (await api.post("/api/v1/auth")).status_code == 200


async def test_metadata_reports_the_keptn_api_level(api):
    response = await api.get("/api/v1/metadata")
    assert response.status_code == 200
    assert response.json()["keptnversion"] == "1.4.5"


async def test_unknown_routes_and_methods_get_keptn_error_bodies(api):
    assert_error(await api.get("/api/nothing-here"), 404, "Not Found")
    assert_error(await api.delete(EVENTS), 405, "Method Not Allowed")


async def test_a_nul_byte_anywhere_is_a_client_error(api):
    response = await api.get("/api/mongodb-datastore/event", params={"project": "a\x00b"})
    assert_error(response, 400, "NUL")
