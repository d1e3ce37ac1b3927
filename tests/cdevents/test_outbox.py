"""The outbox and one forwarding round, without Temporal: what an interrupted round leaves behind.

A worker killed mid-round is, for the outbox, a round cancelled while it waits for a subscriber:
nothing it had not acknowledged may be lost, and the next round (Temporal's retry) sends it again
with the same CloudEvent id. Real PostgreSQL, a real HTTP subscriber on loopback that hangs on its
first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from activities.cdevents import CDEventActivities, ForwardInput
from capstan.settings import Settings
from store import cdevents as cdevent_store
from store.events import insert_event
from tests.fixtures.ports import free_port

ROUND = ForwardInput(idle_wait_seconds=0.5, backoff_initial_seconds=0.1, backoff_max_seconds=0.2)


class HangingSubscriber:
    """Answers 200, except that it never answers while ``hang`` is set."""

    def __init__(self) -> None:
        self.port = free_port()
        self.hang = True
        self.bodies: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        self.bodies.append(json.loads(await reader.readexactly(length)))
        self.arrived.set()
        if self.hang:
            await self.release.wait()  # set when the test ends
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest_asyncio.fixture
async def subscriber() -> AsyncIterator[HangingSubscriber]:
    state = HangingSubscriber()
    server = await asyncio.start_server(state.handle, "127.0.0.1", state.port)
    try:
        yield state
    finally:
        state.release.set()
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 5)


def problem(n: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "prometheus",
        "type": "sh.keptn.events.problem",
        "time": "2026-11-26T10:00:00.000Z",
        "shkeptncontext": str(uuid.uuid4()),
        "datacontenttype": "application/json",
        "data": {
            "project": "sockshop",
            "stage": "dev",
            "service": "carts",
            "State": "OPEN",
            "ProblemTitle": f"p{n}",
        },
    }


async def test_an_interrupted_round_loses_nothing(pool: asyncpg.Pool, subscriber: HangingSubscriber) -> None:
    settings = Settings(webhook_allow_list=f"127.0.0.1:{subscriber.port}")
    url = f"http://127.0.0.1:{subscriber.port}/cdevents"
    subscription = await cdevent_store.create_subscription(pool, url=url, project="sockshop", types=[])
    other = await cdevent_store.create_subscription(pool, url=url, project="elsewhere", types=[])
    for n in range(2):
        assert await insert_event(pool, problem(n))
    assert await insert_event(pool, {**problem(9), "type": "sh.keptn.event.get-sli.triggered"})  # not queued
    listed = {s.id: s for s in await cdevent_store.list_subscriptions(pool)}
    assert listed[subscription.id].pending == 2 and listed[other.id].pending == 0

    activities = CDEventActivities(pool, settings)
    interrupted = ActivityEnvironment()
    running = asyncio.create_task(interrupted.run(activities.forward_cdevents, ROUND))
    await asyncio.wait_for(subscriber.arrived.wait(), 10)
    interrupted.cancel()  # what a killed worker's round amounts to
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(running, 10)
    assert (await cdevent_store.list_subscriptions(pool, subscription_id=subscription.id))[0].pending == 2

    subscriber.hang = False
    result = await ActivityEnvironment().run(activities.forward_cdevents, ROUND)
    assert result.delivered == 2 and result.items == 2
    first, *resent = subscriber.bodies
    assert [body["data"]["subject"]["content"]["description"] for body in resent] == ["p0", "p1"]
    assert resent[0]["id"] == first["id"]  # the same CloudEvent again: receivers deduplicate
    after = (await cdevent_store.list_subscriptions(pool, subscription_id=subscription.id))[0]
    assert after.pending == 0 and after.delivered == 2
