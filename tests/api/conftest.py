"""The gateway app on a fresh database, driven in process through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from api.main import create_app
from capstan.settings import Settings

TOKEN = "test-token"


@pytest_asyncio.fixture
async def api(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of the real app (lifespan run, x-token set) on the test's own database."""
    app = create_app(Settings(database_url=db_url, api_token=TOKEN, temporal_address="127.0.0.1:1"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers={"x-token": TOKEN}
        ) as client:
            yield client
