"""Integrations that misbehave, against the real stack: each case ends as docs/integration-contract.md says.

Slow (within and beyond the timeouts), twice (the same id re-sent, a second ``.finished`` with a
new id, two at once), late (for a task or a sequence that is over, for an unknown task) and never
(no answer; ``.started`` without ``.finished``). Every test checks that nothing hangs: the sequence
ends, in the documented state, within a bound of real time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from capstan.sdk import Backoff, Integration, TaskContext
from tests.workflows.misbehaving import (
    SLACK,
    accepted,
    answer_event,
    execution,
    patched,
    pausable_stack,
    task_events,
)
from tests.workflows.stack import TOKEN, Stack, running_stack
from workflows.context_models import context_workflow_id
from workflows.registry import ALL_WORKFLOWS

STARTED_AFTER = timedelta(seconds=2)
"""``task_started_wait_duration`` of these tests."""
FINISHED_AFTER = timedelta(seconds=4)
"""``task_finished_timeout`` of these tests."""
SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: misbehave}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}]
        - name: soak
          tasks:
            - name: soak
              properties: {timeout: 1s}
    - name: prod
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: release}]
"""
STARTED_TIMEOUT = (
    "sequence timed out while waiting for task sh.keptn.event.{task}.triggered to receive a "
    "correlating .started or .finished event"
)
FINISHED_TIMEOUT = (
    "sequence timed out after {after} while waiting for task sh.keptn.event.{task}.triggered to "
    "receive a .finished event from every integration that started it"
)

pytestmark = pytest.mark.timeout(90)


@pytest_asyncio.fixture
async def stack(db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    async with running_stack(
        db_url,
        pool,
        temporal_env.client,
        started_timeout=STARTED_AFTER,
        finished_timeout=FINISHED_AFTER,
        serve=True,
    ) as running:
        await running.create_project(running.project, SHIPYARD, "carts")
        yield running


# -- helpers -------------------------------------------------------------------------------------


async def context_ended(stack: Stack, context: str) -> None:
    """Wait for the context's workflow to close: nothing of it is left waiting."""
    handle = stack.client.get_workflow_handle(context_workflow_id(stack.project, context))
    await asyncio.wait_for(handle.result(), SLACK)


async def count(stack: Stack, context: str, event_type: str) -> int:
    return len(await stack.events(context, f"sh.keptn.event.{event_type}"))


async def assert_stays(stack: Stack, context: str, counts: dict[str, int], *, seconds: float = 0.5) -> None:
    """The stored events of these types keep these counts for a while (nothing more is emitted)."""
    await asyncio.sleep(seconds)
    assert {t: await count(stack, context, t) for t in counts} == counts


def integration(stack: Stack, name: str) -> Integration:
    assert stack.base_url is not None
    return Integration(
        name,
        api_url=f"{stack.base_url}/api",
        token=TOKEN,
        poll_interval=0.1,
        heartbeat_interval=1,
        shutdown_grace=10,
        backoff=Backoff(initial=0.1, maximum=0.5, attempts=5),
    )


# -- slow ----------------------------------------------------------------------------------------


async def test_a_slow_sdk_handler_within_the_finished_timeout_completes_the_sequence(
    stack: Stack, caplog: pytest.LogCaptureFixture
):
    # The SDK sends .started before the handler runs, so a handler slower than the started
    # timeout is fine: only the finished timeout bounds it.
    helm = integration(stack, "slow-helm")
    handled: list[str] = []

    @helm.task("deployment", projects=[stack.project])
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        handled.append(ctx.triggered_id)
        await asyncio.sleep(STARTED_AFTER.total_seconds() + 0.5)
        return {"deployment": {"deploymentURIsLocal": ["http://carts.dev"]}}

    @helm.task("test", projects=[stack.project], stages=["dev"])
    async def test(ctx: TaskContext) -> None:
        handled.append(ctx.triggered_id)
        await asyncio.sleep(0.5)

    @helm.task("release", projects=[stack.project])
    async def release(ctx: TaskContext) -> None:
        handled.append(ctx.triggered_id)

    with caplog.at_level(logging.WARNING, logger="capstan.sdk"):
        async with helm.running():
            context = await stack.trigger(stack.project, "dev", "delivery", "carts")
            dev = await stack.finished(context, "dev", "delivery", within=SLACK)
            prod = await stack.finished(context, "prod", "delivery", within=SLACK)

    assert (dev["data"]["result"], dev["data"]["status"]) == ("pass", "succeeded")
    assert (prod["data"]["result"], prod["data"]["status"]) == ("pass", "succeeded")
    assert len(handled) == len(set(handled)) == 3  # each task handled once, under one id
    for task in ("deployment", "test", "release"):
        assert [await count(stack, context, f"{task}.{kind}") for kind in ("started", "finished")] == [1, 1]
    assert [r.getMessage() for r in caplog.records] == []  # every answer was accepted first time


async def test_a_sdk_handler_slower_than_the_task_timeout_ends_the_sequence_and_its_late_finished_is_ignored(
    stack: Stack, caplog: pytest.LogCaptureFixture
):
    soaker = integration(stack, "soaker")
    done = asyncio.Event()

    @soaker.task("soak", projects=[stack.project])
    async def soak(ctx: TaskContext) -> dict[str, Any]:
        await asyncio.sleep(2.5)  # the task's properties.timeout is 1s
        done.set()
        return {"soak": {"verdict": "too late"}}

    with caplog.at_level(logging.WARNING, logger="capstan.sdk"):
        async with soaker.running():
            context = await stack.trigger(stack.project, "dev", "soak", "carts")
            finished = await stack.finished(context, "dev", "soak", within=SLACK)
            assert not done.is_set()  # the sequence did not wait for the handler
            await asyncio.wait_for(done.wait(), SLACK)
    # running() returned after the handler's .finished was sent and accepted

    assert (finished["data"]["result"], finished["data"]["status"]) == ("fail", "errored")
    assert finished["data"]["message"] == FINISHED_TIMEOUT.format(after="1s", task="soak")
    await execution(stack, context, "timedOut")
    [late] = await stack.events(context, "sh.keptn.event.soak.finished")  # stored, once
    assert late["source"] == "soaker" and late["data"]["soak"] == {"verdict": "too late"}
    assert await count(stack, context, "dev.soak.finished") == 1  # not resurrected
    assert [r.getMessage() for r in caplog.records] == []  # the late .finished got a 200


# -- twice ---------------------------------------------------------------------------------------


async def test_an_answer_resent_with_the_same_id_is_stored_and_counted_once(stack: Stack):
    context = await stack.trigger(stack.project, "dev", "delivery", "carts")
    deployment = await stack.next_triggered("deployment", project=stack.project)
    started = answer_event(deployment, "started")
    finished = answer_event(deployment, "finished")
    for event in (started, started, finished, finished):  # a client retrying after a lost response
        await accepted(stack, event)
    # a retry whose body changed: the first stored version stands
    await accepted(stack, {**finished, "data": {**finished["data"], "result": "fail"}})
    # the id taken by a different event: refused, naming the field
    response = await stack.send({**finished, "type": "sh.keptn.event.deployment.started"})
    assert response.status_code == 409, response.text
    assert "id" in response.json()["message"]

    test = await stack.next_triggered("test", project=stack.project)
    await stack.answer(test)
    dev = await stack.finished(context, "dev", "delivery")
    assert (dev["data"]["result"], dev["data"]["status"]) == ("pass", "succeeded")
    [stored_started] = await stack.events(context, "sh.keptn.event.deployment.started")
    assert stored_started["id"] == started["id"]
    [stored] = await stack.events(context, "sh.keptn.event.deployment.finished")
    assert (stored["id"], stored["data"]["result"]) == (finished["id"], "pass")
    assert await count(stack, context, "test.triggered") == 1


async def test_a_second_finished_with_a_new_id_is_stored_but_ignored(stack: Stack):
    context = await stack.trigger(stack.project, "dev", "delivery", "carts")
    deployment = await stack.next_triggered("deployment", project=stack.project)
    await accepted(stack, answer_event(deployment, "started"))
    await accepted(stack, answer_event(deployment, "finished"))
    test = await stack.next_triggered("test", project=stack.project)
    # the integration answers again, with a new id and another verdict: the task is over
    await accepted(stack, answer_event(deployment, "finished", result="fail", status="errored"))

    await assert_stays(stack, context, {"deployment.finished": 2, "test.triggered": 1})
    await stack.answer(test)
    dev = await stack.finished(context, "dev", "delivery")
    assert (dev["data"]["result"], dev["data"]["status"]) == ("pass", "succeeded")
    [done] = (await execution(stack, context, "finished"))["status"]["previousTasks"][:1]
    assert (done["name"], done["result"], done["status"]) == ("deployment", "pass", "succeeded")


async def test_two_finished_at_once_complete_the_task_once(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
):
    # Keptn's rule #finished == #started: if both arrive before the workflow looks, 2 != 1 must
    # not wedge the task; the first completes it and the second comes too late (as in Keptn).
    async with pausable_stack(
        db_url, pool, temporal_env.client, started_timeout=STARTED_AFTER, finished_timeout=FINISHED_AFTER
    ) as (stack, worker):
        await stack.create_project(stack.project, SHIPYARD, "carts")
        context = await stack.trigger(stack.project, "dev", "delivery", "carts")
        deployment = await stack.next_triggered("deployment", project=stack.project)
        await accepted(stack, answer_event(deployment, "started"))
        await task_events(stack, context, 1)  # the workflow has counted the .started
        await worker.stop()  # the server now keeps the signals for the next worker's first task
        await accepted(stack, answer_event(deployment, "finished"))
        await accepted(stack, answer_event(deployment, "finished", result="fail", status="errored"))
        await worker.start()

        test = await stack.next_triggered("test", project=stack.project, within=SLACK)
        await assert_stays(stack, context, {"deployment.finished": 2, "test.triggered": 1})
        await stack.answer(test)
        dev = await stack.finished(context, "dev", "delivery", within=SLACK)
        assert (dev["data"]["result"], dev["data"]["status"]) == ("pass", "succeeded")  # the first won
        await stack.answer(await stack.next_triggered("release", project=stack.project))
        await context_ended(stack, context)
        # the second .finished took the new path, and the history replays with today's code
        handle = stack.client.get_workflow_handle(context_workflow_id(stack.project, context))
        history = await handle.fetch_history()
        assert patched(history)
        await Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
            history
        )


# -- late ----------------------------------------------------------------------------------------


async def test_answers_for_a_task_or_sequence_that_is_over_are_stored_and_ignored(stack: Stack):
    context = await stack.trigger(stack.project, "dev", "delivery", "carts")
    deployment = await stack.next_triggered("deployment", project=stack.project)
    await stack.answer(deployment)
    test = await stack.next_triggered("test", project=stack.project)

    # while the sequence runs its next task: a late answer to the finished task, one to an
    # unknown task, one naming the sequence's own trigger
    [trigger] = await stack.events(context, "sh.keptn.event.dev.delivery.triggered")
    late = [
        answer_event(deployment, "started", source="late"),
        answer_event(deployment, "finished", source="late", result="fail", status="errored"),
        answer_event({**deployment, "id": str(uuid.uuid4())}, "finished", source="lost"),
        answer_event({**deployment, "id": trigger["id"]}, "finished", source="confused"),
    ]
    for event in late:
        await accepted(stack, event)
    await assert_stays(stack, context, {"test.triggered": 1, "dev.delivery.finished": 0})
    await stack.answer(test)
    dev = await stack.finished(context, "dev", "delivery")
    assert (dev["data"]["result"], dev["data"]["status"]) == ("pass", "succeeded")
    release = await stack.next_triggered("release", project=stack.project)
    await stack.answer(release)
    await stack.finished(context, "prod", "delivery")
    await context_ended(stack, context)

    # after the context's workflow has closed: still stored and answered 200, nothing restarts
    after = [answer_event(test, "finished", source="late"), answer_event(release, "started", source="late")]
    for event in after:
        await accepted(stack, event)
    stored = {e["id"] for e in await stack.events(context)}
    assert {e["id"] for e in late + after} <= stored
    await assert_stays(
        stack, context, {"test.triggered": 1, "release.triggered": 1, "dev.delivery.finished": 1}
    )
    assert await stack.open_triggered("test", project=stack.project) == []


# -- never ---------------------------------------------------------------------------------------


async def test_an_integration_that_never_answers_times_the_sequence_out(stack: Stack):
    begun = time.monotonic()
    context = await stack.trigger(stack.project, "dev", "delivery", "carts")
    deployment = await stack.next_triggered("deployment", project=stack.project)

    finished = await stack.finished(context, "dev", "delivery", within=SLACK)
    took = time.monotonic() - begun
    assert STARTED_AFTER.total_seconds() <= took < STARTED_AFTER.total_seconds() + SLACK
    data = finished["data"]
    assert (data["result"], data["status"]) == ("fail", "errored")
    assert data["message"] == STARTED_TIMEOUT.format(task="deployment")
    await execution(stack, context, "timedOut")
    assert await stack.open_triggered("deployment", project=stack.project) == []
    await context_ended(stack, context)  # no follow-up after a timeout, nothing left waiting
    assert await count(stack, context, "prod.delivery.triggered") == 0

    # the integration wakes up: its answers are stored and answered 200, the verdict stands
    await accepted(stack, answer_event(deployment, "started"))
    await accepted(stack, answer_event(deployment, "finished"))
    await assert_stays(
        stack, context, {"deployment.finished": 1, "test.triggered": 0, "dev.delivery.finished": 1}
    )


async def test_an_integration_that_starts_and_never_finishes_times_out_after_the_finished_timeout(
    stack: Stack,
):
    context = await stack.trigger(stack.project, "dev", "delivery", "carts")
    deployment = await stack.next_triggered("deployment", project=stack.project)
    began = time.monotonic()
    await accepted(stack, answer_event(deployment, "started"))

    finished = await stack.finished(context, "dev", "delivery", within=SLACK)
    took = time.monotonic() - began
    assert FINISHED_AFTER.total_seconds() <= took < FINISHED_AFTER.total_seconds() + SLACK
    data = finished["data"]
    assert (data["result"], data["status"]) == ("fail", "errored")
    assert data["message"] == FINISHED_TIMEOUT.format(after="4s", task="deployment")
    await execution(stack, context, "timedOut")
    await context_ended(stack, context)
    # the queue slot was freed: the next sequence of the service runs at once
    again = await stack.trigger(stack.project, "dev", "soak", "carts")
    soak = await stack.next_triggered("soak", project=stack.project)
    assert soak["shkeptncontext"] == again
    await stack.answer(soak)
    assert (await stack.finished(again, "dev", "soak"))["data"]["result"] == "pass"
