"""Health, and what the gateway does while Temporal is down."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from temporalio.testing import WorkflowEnvironment

from capstan.settings import Settings
from tests.api.helpers import assert_error, create_project
from tests.fixtures.app_client import settings_client
from workflows.context_models import context_workflow_id

TOKEN = "t"


@asynccontextmanager
async def gateway(
    db_url: str, temporal_address: str, task_queue: str = "q"
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=db_url,
        api_token=TOKEN,
        temporal_address=temporal_address,
        temporal_task_queue=task_queue,
    )
    async with settings_client(settings, TOKEN) as client:
        yield client


async def test_health_is_ok_when_postgres_and_temporal_are_up(db_url: str, temporal_env: WorkflowEnvironment):
    async with gateway(db_url, temporal_env.client.service_client.config.target_host) as client:
        response = await client.get("/api/health", headers={"x-token": ""})
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "database": "ok", "temporal": "ok"}


async def test_health_reports_a_missing_temporal_as_503(db_url: str):
    async with gateway(db_url, "127.0.0.1:1") as client:
        response = await client.get("/api/health", headers={"x-token": ""})
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "temporal": "unavailable"}


async def test_a_trigger_while_temporal_is_down_is_kept_and_a_retry_starts_the_sequence(
    db_url: str, temporal_env: WorkflowEnvironment
):
    event_id = str(uuid.uuid4())
    trigger = {
        "id": event_id,
        "type": "sh.keptn.event.dev.delivery.triggered",
        "source": "tests",
        "data": {"project": "sockshop", "stage": "dev", "service": "carts"},
    }
    async with gateway(db_url, "127.0.0.1:1") as down:
        await create_project(down, "sockshop", "carts")
        assert_error(await down.post("/api/v1/event", json=trigger), 503, "Temporal")
        stored = await down.get(
            "/api/mongodb-datastore/event", params={"project": "sockshop", "eventID": event_id}
        )
        assert stored.json()["totalCount"] == 1  # accepted events are never lost
    queue = f"q-{uuid.uuid4()}"
    async with gateway(db_url, temporal_env.client.service_client.config.target_host, queue) as up:
        retry = await up.post("/api/v1/event", json=trigger)
        assert retry.status_code == 200, retry.text
        context = retry.json()["keptnContext"]
        stored = await up.get(
            "/api/mongodb-datastore/event", params={"project": "sockshop", "eventID": event_id}
        )
        assert stored.json()["totalCount"] == 1
    description = await temporal_env.client.get_workflow_handle(
        context_workflow_id("sockshop", context)
    ).describe()
    assert description.task_queue == queue
