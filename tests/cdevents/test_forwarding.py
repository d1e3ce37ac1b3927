"""CDEvents to subscribers through the real stack: a delivery's CDEvents reach a loopback receiver,
and a subscriber that fails for a while, or events stored while no forwarder runs, lose nothing."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.cdevents import ForwardInput
from tests.cdevents.schemas import assert_valid_cdevent
from tests.fixtures.receiver import Receiver
from tests.workflows.stack import Stack, running_stack
from workflows.cdevents_models import ForwarderInput, start_forwarder

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: cd}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: release}]
"""
IMAGE = "docker.io/keptnexamples/carts:0.13.1"
FAST = ForwarderInput(
    round=ForwardInput(idle_wait_seconds=2, backoff_initial_seconds=0.2, backoff_max_seconds=0.5)
)


@pytest_asyncio.fixture
async def stack(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment, receiver: Receiver
) -> AsyncIterator[Stack]:
    port = receiver.url.split(":")[-1].split("/")[0]
    async with running_stack(
        db_url,
        pool,
        temporal_env.client,
        webhook_allow_list=f"127.0.0.1:{port}",
        cdevents_base_url="https://capstan.example.com",
    ) as running:
        await running.create_project(running.project, SHIPYARD, "carts")
        yield running


async def subscribe(stack: Stack, receiver: Receiver, **more: Any) -> str:
    body = {"url": receiver.url, "project": stack.project, **more}
    created = await stack.api.post("/api/v1/cdevents/subscriptions", json=body)
    assert created.status_code == 201, created.text
    subscription_id: str = created.json()["id"]
    return subscription_id


async def start(stack: Stack) -> None:
    await start_forwarder(stack.client, stack.task_queue, input=FAST, workflow_id=f"cdevents-{uuid.uuid4()}")


async def subscription(stack: Stack, subscription_id: str) -> dict[str, Any]:
    listed = (await stack.api.get("/api/v1/cdevents/subscriptions")).json()["subscriptions"]
    found: dict[str, Any] = next(s for s in listed if s["id"] == subscription_id)
    return found


def received(receiver: Receiver) -> list[dict[str, Any]]:
    """CloudEvents the receiver got, failed attempts included."""
    return [json.loads(r["body"]) for r in list(receiver.requests)]


async def until(check: Callable[[], Any], what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check() if asyncio.iscoroutinefunction(check) else check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within}s: {what}")


def short(envelope: dict[str, Any]) -> str:
    return str(envelope["type"]).removeprefix("dev.cdevents.").removesuffix(".0.3.0")


async def test_a_delivery_reaches_a_subscriber_as_cdevents(stack: Stack, receiver: Receiver) -> None:
    subscription_id = await subscribe(stack, receiver)
    await start(stack)
    context = await stack.trigger(
        stack.project, "dev", "delivery", "carts", configurationChange={"values": {"image": IMAGE}}
    )
    for task in ("deployment", "release"):
        await stack.answer(await stack.next_triggered(task, keptnContext=context), source="helm-service")
    await stack.finished(context, "dev", "delivery")
    expected = [
        "pipelinerun.queued",
        "taskrun.started",
        "taskrun.finished",
        "service.deployed",
        "taskrun.started",
        "taskrun.finished",
        "service.published",
        "pipelinerun.finished",
    ]
    await until(lambda: len(received(receiver)) >= len(expected), "every CDEvent of the delivery")
    envelopes = received(receiver)
    assert [short(e) for e in envelopes] == expected
    for request, envelope in zip(receiver.requests, envelopes, strict=True):
        assert request["headers"]["Content-Type"] == "application/cloudevents+json"
        assert envelope["specversion"] == "1.0"
        assert envelope["shkeptncontext"] == context
        cdevent = envelope["data"]
        assert_valid_cdevent(cdevent)
        assert envelope["id"] == cdevent["context"]["id"]
        assert envelope["subject"] == cdevent["subject"]["id"]
        assert envelope["time"] == cdevent["context"]["timestamp"]
        assert cdevent["context"]["chainId"] == context
    deployed = envelopes[3]["data"]["subject"]
    assert deployed["id"] == f"{stack.project}/dev/carts"
    assert (
        deployed["content"]["artifactId"] == "pkg:docker/keptnexamples/carts@0.13.1?repository_url=docker.io"
    )
    run = envelopes[2]["data"]["subject"]["content"]
    assert run["pipelineRun"] == {"id": f"{context}/dev/delivery"}
    assert run["uri"] == f"https://capstan.example.com/project/{stack.project}/sequence/{context}"
    assert envelopes[-1]["data"]["subject"]["content"]["outcome"] == "success"

    async def acknowledged() -> bool:
        # The receiver sees the last request a moment before the forwarder records its answer.
        state = await subscription(stack, subscription_id)
        return bool(state["delivered"] == len(expected) and state["pending"] == 0 and state["failures"] == 0)

    await until(acknowledged, "every CDEvent acknowledged")


def problem(stack: Stack, title: str) -> dict[str, Any]:
    return {
        "type": "sh.keptn.events.problem",
        "source": "prometheus",
        "data": {
            "project": stack.project,
            "stage": "dev",
            "service": "carts",
            "State": "OPEN",
            "ProblemTitle": title,
        },
    }


async def test_a_failing_subscriber_and_a_late_forwarder_lose_nothing(
    stack: Stack, receiver: Receiver
) -> None:
    receiver.status = 503
    subscription_id = await subscribe(stack, receiver, types=["dev.cdevents.incident."])
    titles = [f"problem {n}" for n in range(3)]
    # Stored before any forwarder runs: the outbox keeps them.
    for title in titles:
        response = await stack.send(problem(stack, title))
        assert response.status_code == 200, response.text
    assert (await subscription(stack, subscription_id))["pending"] == len(titles)
    await start(stack)

    async def failed_a_few_times() -> bool:
        return int((await subscription(stack, subscription_id))["failures"]) >= 3

    await until(failed_a_few_times, "three failed attempts")
    state = await subscription(stack, subscription_id)
    assert "HTTP 503" in state["lastError"] and state["pending"] == len(titles)
    failed = len(receiver.requests)
    # Every failed attempt was the oldest event: nothing is skipped, order is kept.
    assert {e["data"]["subject"]["content"]["description"] for e in received(receiver)} == {titles[0]}
    receiver.status = 200
    await until(lambda: len(receiver.requests) >= failed + len(titles), "the queued CDEvents after recovery")
    delivered = received(receiver)[failed:]
    assert [e["data"]["subject"]["content"]["description"] for e in delivered] == titles
    for envelope in delivered:
        assert short(envelope) == "incident.detected"
        assert_valid_cdevent(envelope["data"])
    # The retried CloudEvent kept its id, so a receiver can deduplicate.
    assert received(receiver)[0]["id"] == delivered[0]["id"]

    async def settled() -> bool:
        state = await subscription(stack, subscription_id)
        return bool(state["pending"] == 0 and state["failures"] == 0 and state["lastError"] is None)

    await until(settled, "the subscription to recover")
