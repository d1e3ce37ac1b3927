"""``POST /api/v1/cdevent`` and the subscription API through the real gateway (PostgreSQL, Temporal).

No worker runs here: a trigger starts its context workflow, which waits untouched; what matters is
what the gateway stored and answered.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from keptn.cdevents_inbound import ACCEPTED_TYPES
from tests.cdevents.schemas import conformance_examples
from tests.fixtures.app_client import app_client

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: cd}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}]
    - name: production
      sequences:
        - name: remediation
          tasks: [{name: get-action}, {name: action}]
"""
EXAMPLES = conformance_examples()
PURL = "pkg:docker/keptnexamples/carts@0.13.1?repository_url=docker.io"


@pytest_asyncio.fixture(scope="module")
async def api(module_db_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(module_db_url, temporal_env, "cdevents-api") as client:
        body = {"name": "sockshop", "shipyard": base64.b64encode(SHIPYARD.encode()).decode()}
        assert (await client.post("/api/controlPlane/v1/project", json=body)).status_code == 201
        service = {"serviceName": "carts"}
        created = await client.post("/api/controlPlane/v1/project/sockshop/service", json=service)
        assert created.status_code == 200, created.text
        yield client


@pytest.fixture
def pool(module_pool: asyncpg.Pool) -> asyncpg.Pool:
    return module_pool


def published(**keptn: Any) -> dict[str, Any]:
    document = copy.deepcopy(EXAMPLES["artifact_published.json"])
    document["context"]["id"] = str(uuid.uuid4())
    document["subject"]["id"] = PURL
    document["customData"] = {"keptn": {"project": "sockshop", "service": "carts", **keptn}}
    return document


async def stored(pool: asyncpg.Pool, event_id: str) -> dict[str, Any]:
    event: dict[str, Any] = await pool.fetchval("SELECT event FROM events WHERE id = $1", event_id)
    return event


async def test_an_artifact_published_triggers_delivery_in_the_first_stage(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    document = published()
    response = await api.post("/api/v1/cdevent", json=document)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "sh.keptn.event.dev.delivery.triggered"
    assert answer["keptnContext"] == document["context"]["chainId"]
    event = await stored(pool, answer["id"])
    assert event["type"] == "sh.keptn.event.dev.delivery.triggered"
    assert event["data"]["configurationChange"]["values"]["image"] == "docker.io/keptnexamples/carts:0.13.1"
    assert event["source"] == document["context"]["source"]
    # Redelivered: the same Keptn event, stored once.
    again = await api.post("/api/v1/cdevent", json=document)
    assert again.status_code == 200 and again.json() == answer
    count = await pool.fetchval("SELECT count(*) FROM events WHERE id = $1", answer["id"])
    assert count == 1


async def test_structured_and_binary_cloudevents(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    document = published(stage="production", sequence="remediation")
    envelope = {
        "specversion": "1.0",
        "id": document["context"]["id"],
        "source": document["context"]["source"],
        "type": document["context"]["type"],
        "data": document,
    }
    structured = await api.post(
        "/api/v1/cdevent",
        content=json.dumps(envelope),
        headers={"content-type": "application/cloudevents+json"},
    )
    assert structured.status_code == 200, structured.text
    assert structured.json()["type"] == "sh.keptn.event.production.remediation.triggered"
    binary_doc = published()
    binary = await api.post(
        "/api/v1/cdevent",
        content=json.dumps(binary_doc),
        headers={
            "content-type": "application/json",
            "ce-specversion": "1.0",
            "ce-id": binary_doc["context"]["id"],
            "ce-source": "/event/source/123",
            "ce-type": binary_doc["context"]["type"],
        },
    )
    assert binary.status_code == 200, binary.text


@pytest.mark.parametrize(
    "name", sorted(n for n, d in EXAMPLES.items() if d["context"]["type"] in ACCEPTED_TYPES)
)
async def test_accepted_conformance_examples_through_http(
    api: httpx.AsyncClient, pool: asyncpg.Pool, name: str
) -> None:
    document = copy.deepcopy(EXAMPLES[name])
    document.setdefault("customData", {})["keptn"] = {"project": "sockshop", "service": "carts"}
    response = await api.post("/api/v1/cdevent", json=document)
    assert response.status_code == 200, response.text
    event = await stored(pool, response.json()["id"])
    assert event["data"]["cdevent"]["type"] == document["context"]["type"]


async def test_an_incident_resolved_is_a_problem_event(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    document = copy.deepcopy(EXAMPLES["incident_resolved.json"])
    document["customData"] = {"keptn": {"project": "sockshop", "service": "carts"}}
    response = await api.post("/api/v1/cdevent", json=document)
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "sh.keptn.events.problem"


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        (lambda d: d["subject"].pop("content"), 400, "subject.content"),
        (lambda d: d["customData"].pop("keptn"), 400, "customData.keptn"),
        (lambda d: d["customData"]["keptn"].__setitem__("project", "nope"), 404, "customData.keptn.project"),
        (lambda d: d["customData"]["keptn"].__setitem__("service", "nope"), 404, "data.service"),
    ],
)
async def test_errors_name_the_field(
    api: httpx.AsyncClient, change: Any, status: int, field: str | None
) -> None:
    document = published()
    change(document)
    response = await api.post("/api/v1/cdevent", json=document)
    assert response.status_code == status, response.text
    if field:
        assert field in response.json()["message"]


async def test_not_json_and_wrong_envelope(api: httpx.AsyncClient) -> None:
    assert (await api.post("/api/v1/cdevent", content=b"{")).status_code == 400
    envelope = {"specversion": "1.0", "id": "x", "source": "s", "type": "t", "data": "nope"}
    response = await api.post(
        "/api/v1/cdevent",
        content=json.dumps(envelope),
        headers={"content-type": "application/cloudevents+json"},
    )
    assert response.status_code == 400 and "data" in response.json()["message"]


async def test_scopes(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/tokens", json={"name": "reader", "scopes": ["integrations:read"]})
    assert created.status_code == 201, created.text
    headers = {"x-token": created.json()["token"]}
    assert (await api.post("/api/v1/cdevent", json=published(), headers=headers)).status_code == 403
    body = {"url": "http://example.com/hook"}
    assert (await api.post("/api/v1/cdevents/subscriptions", json=body, headers=headers)).status_code == 403
    assert (await api.get("/api/v1/cdevents/subscriptions", headers=headers)).status_code == 200


async def test_subscriptions_create_list_delete(api: httpx.AsyncClient) -> None:
    body = {"url": "https://cd.example.com/events", "project": "sockshop", "types": ["dev.cdevents.service."]}
    created = await api.post("/api/v1/cdevents/subscriptions", json=body)
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert subscription["types"] == ["dev.cdevents.service."]
    assert subscription["pending"] == 0 and subscription["failures"] == 0
    listed = (await api.get("/api/v1/cdevents/subscriptions")).json()["subscriptions"]
    assert [s["id"] for s in listed] == [subscription["id"]]
    deleted = await api.delete(f"/api/v1/cdevents/subscriptions/{subscription['id']}")
    assert deleted.status_code == 200
    assert (await api.delete(f"/api/v1/cdevents/subscriptions/{subscription['id']}")).status_code == 404
    assert (await api.get("/api/v1/cdevents/subscriptions")).json()["subscriptions"] == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"url": "ftp://x"}, 400, "url"),
        ({"url": "http://x", "types": ["service."]}, 400, "types[0]"),
        ({"url": "http://x", "project": "nope"}, 404, "project"),
        ({"url": "http://x", "colour": "red"}, 400, "colour"),
    ],
)
async def test_invalid_subscriptions(
    api: httpx.AsyncClient, body: dict[str, Any], status: int, field: str
) -> None:
    response = await api.post("/api/v1/cdevents/subscriptions", json=body)
    assert response.status_code == status, response.text
    assert field in response.json()["message"]
