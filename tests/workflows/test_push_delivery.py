"""Every stored event reaches matching push subscriptions, with or without a running sequence."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.fixtures.receiver import Receiver
from tests.workflows.stack import Stack, running_stack

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: push}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}]
"""


@pytest_asyncio.fixture
async def stack(db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    async with running_stack(db_url, pool, temporal_env.client) as running:
        await running.create_project(running.project, SHIPYARD, "carts")
        yield running


def received_ids(receiver: Receiver) -> dict[str, str]:
    events = [json.loads(request["body"]) for request in receiver.requests]
    return {event["id"]: event["type"] for event in events}


async def wait_for(receiver: Receiver, ids: set[str], within: float = 20) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if ids <= set(received_ids(receiver)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never pushed: {ids - set(received_ids(receiver))}")


async def test_sequence_events_answers_and_events_without_a_sequence_are_pushed(
    stack: Stack, receiver: Receiver
):
    registration = {
        "name": "notifier",
        "subscriptions": [
            {"event": "sh.keptn.>", "filter": {"projects": [stack.project]}, "url": receiver.url}
        ],
    }
    response = await stack.api.post("/api/controlPlane/v1/uniform/registration", json=registration)
    assert response.status_code in (200, 201), response.text

    context = await stack.trigger(stack.project, "dev", "delivery", "carts")
    deployment = await stack.next_triggered("deployment", project=stack.project)
    await stack.answer(deployment, source="helm")
    await stack.finished(context, "dev", "delivery")
    error_log = await stack.send(
        {
            "type": "sh.keptn.log.error",
            "source": "helm",
            "data": {"project": stack.project, "message": "oops"},
        }
    )
    assert error_log.status_code == 200, error_log.text

    stored = {event["id"]: event["type"] for event in await stack.events(context)}
    assert len(stored) == 5  # trigger, deployment.triggered/started/finished, dev.delivery.finished
    await wait_for(receiver, set(stored))
    await asyncio.sleep(0.5)
    log_events = [t for t in received_ids(receiver).values() if t == "sh.keptn.log.error"]
    assert log_events == ["sh.keptn.log.error"]
    # each event reaches the subscriber once (deliveries are at least once; here nothing failed)
    assert len(receiver.requests) == len(received_ids(receiver))
