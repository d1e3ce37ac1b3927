"""A long Keptn context: a sequence that re-triggers itself until it passes, across continue-as-new.

The shipyard's ``loop`` sequence is ``triggeredOn`` its own failure, so one Keptn context runs
``CAPSTAN_LONG_ITERATIONS`` sequences back to back (default 80, about 45 s on 2 cores; the issue
asked for 500, about 5 minutes). The integration answers through the gateway's API. This module's
dev server suggests continue-as-new after ``HISTORY_LIMIT`` events, so the context workflow
continues as new many times on the way; every run's history must stay small and replay cleanly.

    CAPSTAN_LONG_ITERATIONS=500 .venv/bin/pytest tests/workflows/test_context_long.py -s
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import WorkflowExecution, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from tests.workflows.history_env import HISTORY_LIMIT, small_history_env
from tests.workflows.stack import Stack, running_stack
from workflows.context_models import ContextResult, context_workflow_id
from workflows.registry import ALL_WORKFLOWS

ITERATIONS = int(os.environ.get("CAPSTAN_LONG_ITERATIONS", "80"))
"""Sequences the context runs: the first N-1 fail and re-trigger the loop, the last passes."""
__all__ = ["small_history_env"]  # a fixture, imported so that pytest finds it here

SECONDS_PER_ITERATION = 2.0
"""A generous bound on one iteration (trigger, answer, re-trigger) on a slow 2-core machine."""

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: long-context}
spec:
  stages:
    - name: dev
      sequences:
        - name: loop
          triggeredOn:
            - event: dev.loop.finished
              selector: {match: {result: fail}}
          tasks: [{name: attempt}]
"""


@pytest_asyncio.fixture
async def stack(
    db_url: str, pool: asyncpg.Pool, small_history_env: WorkflowEnvironment
) -> AsyncIterator[Stack]:
    async with running_stack(db_url, pool, small_history_env.client) as running:
        await running.create_project(running.project, SHIPYARD, "carts")
        yield running


async def integration(stack: Stack, iterations: int) -> list[float]:
    """Answer every ``attempt`` through the API: ``fail`` until the last one, which passes.

    Returns:
        When each answer was sent (``time.monotonic()``).
    """
    answered = []
    for iteration in range(iterations):
        triggered = await stack.next_triggered("attempt", project=stack.project)
        result = "pass" if iteration == iterations - 1 else "fail"
        await stack.answer(triggered, result=result, attempt={"iteration": iteration})
        answered.append(time.monotonic())
    return answered


async def count(stack: Stack, context: str, event_type: str) -> int:
    response = await stack.api.get(
        "/api/mongodb-datastore/event", params={"keptnContext": context, "type": event_type, "pageSize": 1}
    )
    assert response.status_code == 200, response.text
    total: int = response.json()["totalCount"]
    return total


async def closed_runs(stack: Stack, workflow_id: str) -> list[WorkflowExecution]:
    """Every run of a workflow, once visibility shows them all closed."""
    deadline = time.monotonic() + 10
    while True:
        runs = [run async for run in stack.client.list_workflows(f"WorkflowId = '{workflow_id}'")]
        if all(run.status != WorkflowExecutionStatus.RUNNING for run in runs) or time.monotonic() > deadline:
            return runs
        await asyncio.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(max(120, int(ITERATIONS * SECONDS_PER_ITERATION) + 60))
async def test_a_self_looping_sequence_runs_in_one_context_across_continue_as_new(
    stack: Stack, capsys: pytest.CaptureFixture[str]
):
    assert ITERATIONS >= 2
    started = time.monotonic()
    context = await stack.trigger(stack.project, "dev", "loop", "carts")
    answered = await integration(stack, ITERATIONS)
    handle = stack.client.get_workflow_handle(
        context_workflow_id(stack.project, context), result_type=ContextResult
    )
    result = await asyncio.wait_for(handle.result(), 30)
    elapsed = time.monotonic() - started

    # every iteration ran, in this one Keptn context, and only the last one passed
    assert result.sequences_run == ITERATIONS
    assert await count(stack, context, "sh.keptn.event.dev.loop.triggered") == ITERATIONS
    assert await count(stack, context, "sh.keptn.event.dev.loop.finished") == ITERATIONS
    assert await count(stack, context, "sh.keptn.event.attempt.triggered") == ITERATIONS
    results = await stack.pool.fetch(
        "SELECT event->'data'->>'result' AS result, count(*) FROM events"
        " WHERE shkeptncontext = $1 AND type = 'sh.keptn.event.dev.loop.finished' GROUP BY 1",
        context,
    )
    assert {row["result"]: row["count"] for row in results} == {"fail": ITERATIONS - 1, "pass": 1}

    # ... across several runs of the context workflow, each with a bounded history
    runs = await closed_runs(stack, handle.id)
    assert len(runs) >= 3, f"continued as new only {len(runs) - 1} times"
    statuses = [run.status for run in runs]
    assert statuses.count(WorkflowExecutionStatus.CONTINUED_AS_NEW) == len(runs) - 1
    assert statuses.count(WorkflowExecutionStatus.COMPLETED) == 1
    histories = [
        await stack.client.get_workflow_handle(handle.id, run_id=run.run_id).fetch_history() for run in runs
    ]
    lengths = [len(history.events) for history in histories]
    assert max(lengths) <= 1.5 * HISTORY_LIMIT, lengths

    # ... and every run replays deterministically with today's workflow code
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    for history in histories:
        await replayer.replay_workflow(history)

    tenth = max(1, ITERATIONS // 10)
    first, last = answered[tenth] - started, answered[-1] - answered[-1 - tenth]
    with capsys.disabled():
        sys.stdout.write(
            f"\nlong context: {ITERATIONS} iterations in {elapsed:.1f} s "
            f"({elapsed / ITERATIONS * 1000:.0f} ms each; first tenth {first / tenth * 1000:.0f} ms, "
            f"last tenth {last / tenth * 1000:.0f} ms), {len(runs)} runs ({len(runs) - 1} "
            f"continue-as-new), history length per run max {max(lengths)} (limit {HISTORY_LIMIT})\n"
        )
