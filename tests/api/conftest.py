"""The gateway app on a fresh database, driven in process through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.fixtures.app_client import app_client


@pytest_asyncio.fixture
async def api(db_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of the real app (lifespan run, x-token set) on the test's own database."""
    async with app_client(db_url, temporal_env) as client:
        yield client
