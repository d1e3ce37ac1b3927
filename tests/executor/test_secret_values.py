"""``GET /api/secrets/v1/secret/values``: the executor's secrets, one scope, ``secrets:use`` only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from cryptography.fernet import Fernet
from temporalio.testing import WorkflowEnvironment

from capstan.settings import Settings
from tests.api.helpers import assert_error
from tests.fixtures.app_client import settings_client

ADMIN = "values-admin-token"
SECRETS = "/api/secrets/v1/secret"
VALUES = "/api/secrets/v1/secret/values"


@pytest_asyncio.fixture
async def admin(db_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=db_url,
        api_token=ADMIN,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"values-{uuid.uuid4()}",
        secret_key=Fernet.generate_key().decode(),
    )
    async with settings_client(settings, ADMIN) as client:
        yield client


async def _token(admin: httpx.AsyncClient, *scopes: str) -> dict[str, str]:
    response = await admin.post("/api/v1/tokens", json={"name": "executor", "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    return {"x-token": response.json()["token"]}


async def test_values_of_the_executor_scope_need_secrets_use(admin: httpx.AsyncClient):
    for scope in ("keptn-job-executor-service", "keptn-webhook-service"):
        body = {"name": "creds", "scope": scope, "data": {"USER": "u", "PASSWORD": "p4ss"}}
        assert (await admin.post(SECRETS, json=body)).status_code == 201

    executor = await _token(admin, "secrets:use")
    answer = await admin.get(VALUES, params={"name": "creds"}, headers=executor)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "name": "creds",
        "scope": "keptn-job-executor-service",
        "data": {"USER": "u", "PASSWORD": "p4ss"},
    }
    # no other scope's values ever leave the gateway, not even for the admin token
    other = await admin.get(VALUES, params={"name": "creds", "scope": "keptn-webhook-service"})
    assert_error(other, 403, "only secrets of scope 'keptn-job-executor-service'")
    assert_error(await admin.get(VALUES, params={"name": "nope"}), 404, "secret 'nope' not found")
    assert_error(await admin.get(VALUES, params={"name": "Bad_Name"}), 400, "name")
    reader = await _token(admin, "secrets:read", "secrets:write")
    assert_error(await admin.get(VALUES, params={"name": "creds"}, headers=reader), 403, "'secrets:use'")
    # listing still shows keys only
    listed = await admin.get(SECRETS, params={"name": "creds"})
    assert "p4ss" not in listed.text
