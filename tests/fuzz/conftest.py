"""The gateway app for the fuzz tests: in process over ASGI, on the test's own database.

Hypothesis drives synchronous test functions, so the app runs on an event loop of its own in a
thread (:class:`Gateway`), served through httpx's ASGI transport as in ``tests/api``; its lifespan
runs, so the pool, the migrations and the lazy Temporal client are real. Temporal is the
session's dev server with a task queue of the test's own and no worker, as in ``tests/api``: a
sequence trigger the fuzzer gets through starts a context workflow that just waits.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from capstan.secret_box import generate_secret_key
from capstan.settings import Settings
from tests.fixtures.app_client import TOKEN
from tests.store.factories import SHIPYARD

PROJECT = "sockshop"
STAGES = ("dev", "staging")
SERVICE = "carts"
REQUEST_TIMEOUT = 60.0


class Gateway:
    """A synchronous client of an app served on its own event loop in a background thread.

    Server exceptions are re-raised (httpx's ASGI transport does so): a bug shows as its
    traceback, not only as a 500.
    """

    def __init__(self, app: FastAPI) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fuzz-gateway", daemon=True)
        self._thread.start()
        self._client: httpx.AsyncClient | None = None
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._stop = asyncio.Event()
        self._served = asyncio.run_coroutine_threadsafe(self._serve(app), self._loop)
        self._ready.result(timeout=REQUEST_TIMEOUT)

    async def _serve(self, app: FastAPI) -> None:
        # One task enters and leaves the lifespan: its context may hold task-bound state.
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://test", headers={"x-token": TOKEN}
                ) as client:
                    self._client = client
                    self._ready.set_result(None)
                    await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request and wait for the answer."""
        assert self._client is not None
        call = self._client.request(method, url, **kwargs)
        return asyncio.run_coroutine_threadsafe(call, self._loop).result(timeout=REQUEST_TIMEOUT)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        """``GET url``."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        """``POST url``."""
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        """End the lifespan, then the loop and its thread."""
        self._loop.call_soon_threadsafe(self._stop.set)
        try:
            self._served.result(timeout=REQUEST_TIMEOUT)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=REQUEST_TIMEOUT)
            if not self._thread.is_alive():  # else a request hangs in it: leave the loop to it
                self._loop.close()


@pytest.fixture
def gateway(db_url: str, temporal_env: WorkflowEnvironment) -> Iterator[Gateway]:
    """A client of the real app with project ``sockshop`` (stages dev, staging; service carts)."""
    settings = Settings(
        database_url=db_url,
        api_token=TOKEN,
        secret_key=generate_secret_key(),
        # Every example comes from one client address, and some carry no valid token: at the
        # default limit the address would get nothing but 429 within seconds.
        auth_failures_per_minute=1_000_000,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"fuzz-{uuid.uuid4()}",
    )
    client = Gateway(create_app(settings))
    try:
        created = client.post(
            "/api/controlPlane/v1/project",
            json={"name": PROJECT, "shipyard": base64.b64encode(SHIPYARD.encode()).decode()},
        )
        assert created.status_code == 201, created.text
        added = client.post(f"/api/controlPlane/v1/project/{PROJECT}/service", json={"serviceName": SERVICE})
        assert added.status_code == 200, added.text
        yield client
    finally:
        client.close()


def assert_error_body(response: httpx.Response, *, names: tuple[str, ...] = ()) -> str:
    """A 4xx with Keptn's ``{code, message}`` body; the message names one of ``names`` if given.

    Returns:
        The message.
    """
    assert response.status_code < 500, f"{response.status_code}: {response.text}"
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] == response.status_code, body
    message = body["message"]
    assert isinstance(message, str) and message.strip(), body
    if names:
        assert any(name in message for name in names), f"message names none of {names}: {message!r}"
    return message
