"""The gateway app on a fresh database, driven in process through httpx."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from capstan.settings import Settings

TOKEN = "test-token"


@pytest_asyncio.fixture
async def api(db_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of the real app (lifespan run, x-token set) on the test's own database.

    Temporal is the session's dev server, with a task queue of the test's own and no worker: a
    trigger starts its context workflow, which waits there untouched.
    """
    settings = Settings(
        database_url=db_url,
        api_token=TOKEN,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"api-test-{uuid.uuid4()}",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers={"x-token": TOKEN}
        ) as client:
            yield client
