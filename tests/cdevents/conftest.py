"""One migrated database per test module here: the API tests share it (creating a database per
test costs seconds on a loaded machine), each test using ids of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio

from store.db import create_pool
from tests.fixtures.database import fresh_database


@pytest_asyncio.fixture(scope="module")
async def module_db_url(database_url: str) -> AsyncIterator[str]:
    """URL of a fresh, migrated database for the module; dropped afterwards."""
    async with fresh_database(database_url, "capstan_cdevents") as url:
        yield url


@pytest_asyncio.fixture(scope="module")
async def module_pool(module_db_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the module's database."""
    opened = await create_pool(module_db_url, min_size=1, max_size=5)
    try:
        yield opened
    finally:
        await opened.close()
