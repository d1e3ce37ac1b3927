"""A running control plane for the Bridge's sequence pages: a project, a browser, waiting for the view."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
from temporalio.client import Client

from tests.bridge.helpers import browser, login, testids
from tests.workflows.stack import TOKEN, Stack, running_stack

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: bridge}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: evaluation}]
        - name: gated
          tasks: [{name: approval, properties: {pass: manual, warning: manual}}, {name: release}]
    - name: prod
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}]
"""


@asynccontextmanager
async def bridge_stack(
    db_url: str, pool: asyncpg.Pool, client: Client, **options: Any
) -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    """A running stack with a project (service ``carts``) and a browser logged in as admin."""
    async with running_stack(db_url, pool, client, **options) as stack:
        await stack.create_project(stack.project, SHIPYARD, "carts")
        async with browser(stack.api) as page:
            await login(page, TOKEN)
            yield stack, page


async def wait_for_page(
    page: httpx.AsyncClient, url: str, ready: Callable[[str], bool], *, within: float = 20
) -> str:
    """GET ``url`` until ``ready(html)``; the last HTML."""
    deadline = time.monotonic() + within
    while True:
        response = await page.get(url)
        assert response.status_code == 200, response.text
        if ready(response.text):
            return response.text
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} not ready within {within}s:\n{response.text}")
        await asyncio.sleep(0.1)


def sequence_state(html: str) -> str:
    """The overall state a timeline page shows."""
    (found,) = testids(html, "sequence-state")
    return found["text"]
