"""Each way asyncpg reports a PostgreSQL that is going or gone is a 503, never a 500.

The fault suite (``test_faults.py``) stops PostgreSQL under load and checks for 500s, but which
error a request meets depends on the moment it is cut; this pins each one seen there (and its
class) deterministically. The exceptions are asyncpg's own, raised by a route of a bare app that
has the gateway's error handlers.
"""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from api.errors import install_error_handlers

SEEN_WHEN_POSTGRES_STOPS: list[Exception] = [
    # a pool connection whose reset on release met the shutdown (tests/chaos/test_faults.py)
    asyncpg.exceptions.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.exceptions.ConnectionFailureError("connection failure"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CrashShutdownError("terminating connection because of crash of another process"),
    asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
    asyncpg.exceptions.InterfaceError("pool is closing"),
    ConnectionRefusedError(111, "Connection refused"),
    FileNotFoundError(2, "No such file or directory"),  # the Unix socket is gone
]


@pytest.mark.parametrize("error", SEEN_WHEN_POSTGRES_STOPS, ids=lambda e: type(e).__name__)
async def test_a_database_going_away_is_a_503(error: Exception) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/api/thing")
    async def thing() -> None:
        raise error

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        response = await http.get("/api/thing")
    assert response.status_code == 503, response.text
    assert response.json() == {
        "code": 503,
        "message": "the event store (PostgreSQL) is unavailable; retry later",
    }


async def test_a_real_bug_is_still_a_500() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/api/thing")
    async def thing() -> None:
        raise ZeroDivisionError

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        response = await http.get("/api/thing")
    assert response.status_code == 500
