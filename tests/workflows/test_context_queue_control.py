"""Queueing per project/stage/service, and pause/resume/abort, through the real stack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.workflows.stack import Stack, running_stack

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: queueing}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}]
        - name: gated
          tasks: [{name: deployment}, {name: approval}, {name: release}]
    - name: prod
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}]
"""

QUIET = 1.0
"""How long a test watches for something that must not happen."""


@pytest_asyncio.fixture
async def stack(db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    async with running_stack(db_url, pool, temporal_env.client) as running:
        await running.create_project(running.project, SHIPYARD, "carts", "orders")
        yield running


async def control(stack: Stack, context: str, state: str, stage: str | None = None) -> None:
    body = {"state": state, **({"stage": stage} if stage else {})}
    response = await stack.api.post(
        f"/api/controlPlane/v1/sequence/{stack.project}/{context}/control", json=body
    )
    assert response.status_code == 200, response.text


async def nothing_triggered(stack: Stack, task: str, **filters: str) -> bool:
    await asyncio.sleep(QUIET)
    return [e for e in await stack.open_triggered(task, **filters) if e["id"] not in stack.seen] == []


async def test_one_started_sequence_per_service_fifo_and_other_services_in_parallel(stack: Stack):
    first = await stack.trigger(stack.project, "dev", "delivery", "carts")
    first_deployment = await stack.next_triggered("deployment", project=stack.project, service="carts")
    second = await stack.trigger(stack.project, "dev", "delivery", "carts")
    other = await stack.trigger(stack.project, "dev", "delivery", "orders")

    # orders is another service: it runs at once
    orders = await stack.next_triggered("deployment", project=stack.project, service="orders")
    assert orders["shkeptncontext"] == other
    # the second carts sequence waits for the first, which holds the slot between its tasks too
    assert await nothing_triggered(stack, "deployment", project=stack.project, service="carts")
    await stack.answer(first_deployment)
    first_test = await stack.next_triggered("test", project=stack.project, service="carts")
    assert first_test["shkeptncontext"] == first
    assert await nothing_triggered(stack, "deployment", project=stack.project, service="carts")

    await stack.answer(first_test)
    await stack.finished(first, "dev", "delivery")
    second_deployment = await stack.next_triggered(
        "deployment", project=stack.project, stage="dev", service="carts"
    )
    assert second_deployment["shkeptncontext"] == second


async def test_a_sequence_waiting_for_approval_does_not_hold_the_slot(stack: Stack):
    gated = await stack.trigger(stack.project, "dev", "gated", "carts")
    await stack.answer(await stack.next_triggered("deployment", project=stack.project, service="carts"))
    approval = await stack.next_triggered("approval", project=stack.project, service="carts")
    assert approval["shkeptncontext"] == gated

    other = await stack.trigger(stack.project, "dev", "delivery", "carts")
    deployment = await stack.next_triggered("deployment", project=stack.project, service="carts")
    assert deployment["shkeptncontext"] == other

    # approved while the other holds the slot: the release waits for it (Keptn's task-level check)
    await stack.answer(approval)
    assert await nothing_triggered(stack, "release", project=stack.project)
    await stack.answer(deployment)
    await stack.answer(await stack.next_triggered("test", project=stack.project, service="carts"))
    release = await stack.next_triggered("release", project=stack.project, service="carts")
    assert release["shkeptncontext"] == gated
    await stack.answer(release)
    assert (await stack.finished(gated, "dev", "gated"))["data"]["result"] == "pass"


async def test_pause_holds_the_next_task_and_resume_continues(stack: Stack):
    context = await stack.trigger(stack.project, "dev", "delivery", "carts")
    deployment = await stack.next_triggered("deployment", project=stack.project)
    await control(stack, context, "pause")
    await stack.answer(deployment)  # the running task's answer is still taken
    assert await nothing_triggered(stack, "test", project=stack.project)

    # paused, it does not block the service: another sequence runs meanwhile
    other = await stack.trigger(stack.project, "dev", "delivery", "carts")
    other_deployment = await stack.next_triggered("deployment", project=stack.project)
    assert other_deployment["shkeptncontext"] == other
    await stack.answer(other_deployment)
    await stack.answer(await stack.next_triggered("test", project=stack.project))
    await stack.finished(other, "dev", "delivery")

    await control(stack, context, "resume")
    test = await stack.next_triggered("test", project=stack.project)
    assert test["shkeptncontext"] == context
    await stack.answer(test)
    assert (await stack.finished(context, "dev", "delivery"))["data"]["result"] == "pass"


async def test_abort_ends_aborted_with_pass_frees_the_queue_and_triggers_nothing(stack: Stack):
    context = await stack.trigger(stack.project, "dev", "delivery", "carts")
    deployment = await stack.next_triggered("deployment", project=stack.project)
    waiting = await stack.trigger(stack.project, "dev", "delivery", "carts")
    assert await nothing_triggered(stack, "deployment", project=stack.project)

    await control(stack, context, "abort")
    finished = await stack.finished(context, "dev", "delivery")
    assert (finished["data"]["status"], finished["data"]["result"]) == ("aborted", "pass")
    assert await stack.open_triggered("deployment", project=stack.project) != [deployment]
    # the queue moved on, and an answer for the aborted task is accepted and ignored
    nxt = await stack.next_triggered("deployment", project=stack.project)
    assert nxt["shkeptncontext"] == waiting
    await stack.answer(deployment)
    assert await nothing_triggered(stack, "test", project=stack.project)
    # no follow-up after an abort, even though prod is triggeredOn dev.delivery.finished
    assert not await stack.events(context, "sh.keptn.event.prod.delivery.triggered")


async def test_control_of_an_unknown_context_or_project_is_404(stack: Stack):
    response = await stack.api.post(
        f"/api/controlPlane/v1/sequence/{stack.project}/0f1e2d3c-0000-4000-8000-000000000000/control",
        json={"state": "pause"},
    )
    assert response.status_code == 404 and "keptnContext" in response.json()["message"]
    response = await stack.api.post(
        "/api/controlPlane/v1/sequence/nope/0f1e2d3c-0000-4000-8000-000000000000/control",
        json={"state": "pause"},
    )
    assert response.status_code == 404 and "nope" in response.json()["message"]
    response = await stack.api.post(
        f"/api/controlPlane/v1/sequence/{stack.project}/x/control", json={"state": "stop"}
    )
    assert response.status_code == 400 and "state" in response.json()["message"]
