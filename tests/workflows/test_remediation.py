"""Closed-loop remediation through the real stack, as Keptn's shipyard writes it.

``remediation``: the built-in ``get-action`` picks the next action of ``remediation.yaml``, an
action provider (this test, through the API) runs it, and the built-in lighthouse judges the
service on a web SLI the test controls; a failed evaluation re-triggers the sequence in the same
Keptn context with the next ``actionIndex``, until the problem is gone or the actions run out.

The long loop runs ``CAPSTAN_REMEDIATION_ITERATIONS`` iterations (default 30, about 50 s on
2 cores) on a dev server that suggests continue-as-new early, so that it continues as new many
times; the 300 iterations the issue asks for take about 8 minutes, so they run on their own::

    CAPSTAN_REMEDIATION_ITERATIONS=300 .venv/bin/pytest tests/workflows/test_remediation.py -k long -s
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from tests.fixtures.json_server import JSONServer
from tests.workflows.history_env import small_history_env
from tests.workflows.stack import Stack, running_stack
from workflows.context_models import ContextResult, context_workflow_id
from workflows.registry import ALL_WORKFLOWS

ITERATIONS = int(os.environ.get("CAPSTAN_REMEDIATION_ITERATIONS", "30"))
__all__ = ["small_history_env"]  # a fixture, imported so that pytest finds it here

SECONDS_PER_ITERATION = 3.0
"""A generous bound on one iteration (three tasks and the re-trigger) on a slow 2-core machine."""

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: self-healing}
spec:
  stages:
    - name: production
      sequences:
        - name: remediation
          triggeredOn:
            - event: production.remediation.finished
              selector: {match: {evaluation.result: fail}}
          tasks:
            - name: get-action
            - name: action
            - name: evaluation
              triggeredAfter: "1s"
              properties: {timeframe: 1m}
    - name: canary
      sequences:
        - name: remediation
          triggeredOn:
            - event: canary.remediation.finished
              selector: {match: {evaluation.result: fail}}
          tasks:
            - name: get-action
            - name: action
            - name: evaluation
              properties: {timeframe: 1m}
"""

SLO = """spec_version: "1.0"
objectives:
  - sli: response_time_p95
    pass: [{criteria: ["<=500"]}]
total_score: {pass: "90%"}
"""

PROBLEM = {"problemTitle": "Response time degradation", "rootCause": "Memory leak", "state": "OPEN"}


def remediation_yaml(*actions: str, problem_type: str = "Response time degradation") -> str:
    listed = "\n".join(
        f"        - {{name: {name}, action: {name}, description: step {i}, value: {{step: {i}}}}}"
        for i, name in enumerate(actions)
    )
    return f"""apiVersion: spec.keptn.sh/0.1.4
kind: Remediation
metadata: {{name: carts-remediation}}
spec:
  remediations:
    - problemType: {problem_type}
      actionsOnOpen:
{listed}
    - problemType: default
      actionsOnOpen:
        - {{name: escalate, action: escalate}}
"""


@asynccontextmanager
async def remediation_stack(
    db_url: str, pool: asyncpg.Pool, env: WorkflowEnvironment, json_server: JSONServer
) -> AsyncIterator[Stack]:
    """A stack with the built-in services, the shipyard, SLO files and the web SLI provider."""
    async with running_stack(db_url, pool, env.client, builtin=True) as running:
        await running.create_project(running.project, SHIPYARD, "carts")
        url = json_server.url
        sli = f'spec_version: "1.0"\nindicators:\n  response_time_p95: {{url: "{url}", path: "$.p95"}}\n'
        for stage in ("production", "canary"):
            await running.add_resource(stage, "carts", "slo.yaml", SLO)
            await running.add_resource(stage, "carts", "web/sli.yaml", sli)
        configured = await running.send(
            {
                "type": "sh.keptn.event.monitoring.configure",
                "source": "tests",
                "data": {"project": running.project, "service": "carts", "type": "web"},
            }
        )
        assert configured.status_code == 200, configured.text
        yield running


@pytest_asyncio.fixture
async def stack(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment, json_server: JSONServer
) -> AsyncIterator[Stack]:
    async with remediation_stack(db_url, pool, temporal_env, json_server) as running:
        yield running


@pytest_asyncio.fixture
async def long_stack(
    db_url: str, pool: asyncpg.Pool, small_history_env: WorkflowEnvironment, json_server: JSONServer
) -> AsyncIterator[Stack]:
    async with remediation_stack(db_url, pool, small_history_env, json_server) as running:
        yield running


async def problem(stack: Stack, stage: str = "production", **extra: Any) -> str:
    """A monitoring tool reports the problem: Keptn's remediation trigger."""
    return await stack.trigger(stack.project, stage, "remediation", "carts", problem={**PROBLEM, **extra})


async def run_action(stack: Stack, before_answer: Any = None) -> dict[str, Any]:
    """Act as the action provider: take the next action.triggered, answer it, return it."""
    triggered = await stack.next_triggered("action", project=stack.project)
    if before_answer is not None:
        before_answer(triggered)
    await stack.answer(triggered, source="action-provider")
    return triggered


async def remediation_results(stack: Stack, context: str) -> list[tuple[str, str]]:
    finished = await stack.events(context, "sh.keptn.event.production.remediation.finished")
    return [(e["data"]["result"], e["data"].get("message", "")) for e in finished]


async def test_a_remediation_that_succeeds_on_the_second_action(stack: Stack, json_server: JSONServer):
    await stack.add_resource("production", "carts", "remediation.yaml", remediation_yaml("scale", "restart"))
    json_server.document["p95"] = 900  # the problem: too slow
    context = await problem(stack)

    first = await run_action(stack)
    assert first["data"]["action"] == {
        "name": "scale",
        "action": "scale",
        "description": "step 0",
        "value": {"step": 0},
    }
    assert first["data"]["problem"]["problemTitle"] == "Response time degradation"
    # the first action did not help: the evaluation fails and the loop escalates
    second = await run_action(stack, lambda _: json_server.document.update(p95=200))
    assert second["shkeptncontext"] == context
    assert second["data"]["action"]["action"] == "restart"
    assert second["data"]["get-action"]["actionIndex"] == 2

    handle = stack.client.get_workflow_handle(
        context_workflow_id(stack.project, context), result_type=ContextResult
    )
    result = await asyncio.wait_for(handle.result(), 30)
    assert result.sequences_run == 2
    assert [r for r, _ in await remediation_results(stack, context)] == ["fail", "pass"]
    get_action = await stack.events(context, "sh.keptn.event.get-action.finished")
    assert [e["source"] for e in get_action] == ["remediation-service", "remediation-service"]


async def test_a_remediation_that_exhausts_its_actions_ends_failed(stack: Stack, json_server: JSONServer):
    await stack.add_resource("production", "carts", "remediation.yaml", remediation_yaml("scale", "restart"))
    json_server.document["p95"] = 900  # and it stays so
    context = await problem(stack)
    assert [(await run_action(stack))["data"]["action"]["action"] for _ in range(2)] == ["scale", "restart"]

    handle = stack.client.get_workflow_handle(
        context_workflow_id(stack.project, context), result_type=ContextResult
    )
    assert (await asyncio.wait_for(handle.result(), 30)).sequences_run == 3
    results = await remediation_results(stack, context)
    assert [r for r, _ in results] == ["fail", "fail", "fail"]
    last = results[-1][1]
    assert "there is no action with index 2" in last, last
    assert await stack.open_triggered("action", project=stack.project) == []


async def test_an_unknown_problem_gets_the_default_actions(stack: Stack, json_server: JSONServer):
    await stack.add_resource("production", "carts", "remediation.yaml", remediation_yaml("scale"))
    json_server.document["p95"] = 100
    context = await problem(stack, problemTitle="Disk full", rootCause="Log spam")
    assert (await run_action(stack))["data"]["action"]["action"] == "escalate"
    finished = await stack.finished(context, "production", "remediation")
    assert finished["data"]["result"] == "pass"


async def test_a_missing_remediation_file_ends_the_loop_errored(stack: Stack):
    context = await problem(stack)
    finished = await stack.finished(context, "production", "remediation")
    assert (finished["data"]["result"], finished["data"]["status"]) == ("fail", "errored")
    assert "remediation.yaml" in finished["data"]["message"]


async def test_a_second_problem_for_the_service_is_queued_not_lost(stack: Stack, json_server: JSONServer):
    await stack.add_resource("production", "carts", "remediation.yaml", remediation_yaml("scale", "restart"))
    json_server.document["p95"] = 100  # every evaluation passes: each problem is one iteration
    first = await problem(stack)
    second = await problem(stack, problemTitle="Response time degradation", rootCause="Other")
    actions = [await run_action(stack) for _ in range(2)]
    assert {a["shkeptncontext"] for a in actions} == {first, second}
    for context in (first, second):
        assert (await stack.finished(context, "production", "remediation"))["data"]["result"] == "pass"


async def test_a_resolved_problem_event_ends_the_loop(stack: Stack, json_server: JSONServer):
    await stack.add_resource("production", "carts", "remediation.yaml", remediation_yaml("scale", "restart"))
    json_server.document["p95"] = 900
    context = await problem(stack)
    await stack.next_triggered("action", project=stack.project)  # running, never answered
    resolved = await stack.send(
        {
            "type": "sh.keptn.events.problem",
            "source": "monitoring",
            "data": {
                "State": "RESOLVED",
                "ProblemTitle": "Response time degradation",
                "project": stack.project,
                "stage": "production",
                "service": "carts",
            },
        }
    )
    assert resolved.status_code == 200, resolved.text
    finished = await stack.finished(context, "production", "remediation")
    assert finished["data"]["status"] == "aborted"
    assert await stack.open_triggered("action", project=stack.project) == []


@pytest.mark.slow
@pytest.mark.timeout(max(180, int(ITERATIONS * SECONDS_PER_ITERATION) + 60))
async def test_a_long_remediation_loop_continues_as_new(
    long_stack: Stack, json_server: JSONServer, capsys: pytest.CaptureFixture[str]
):
    stack = long_stack
    # stage canary: the same loop without the evaluation's triggeredAfter wait
    names = [f"action-{i}" for i in range(ITERATIONS)]
    await stack.add_resource("canary", "carts", "remediation.yaml", remediation_yaml(*names))
    json_server.document["p95"] = 900
    started = time.monotonic()
    context = await problem(stack, "canary")
    for i in range(ITERATIONS):
        # the last action heals the service (set only once its evaluation is the next one)
        heal = (lambda _: json_server.document.update(p95=100)) if i == ITERATIONS - 1 else None
        action = await run_action(stack, heal)
        assert action["data"]["action"]["action"] == names[i]
    handle = stack.client.get_workflow_handle(
        context_workflow_id(stack.project, context), result_type=ContextResult
    )
    result = await asyncio.wait_for(handle.result(), 60)
    elapsed = time.monotonic() - started
    assert result.sequences_run == ITERATIONS
    rows = await stack.pool.fetch(
        "SELECT event->'data'->>'result' AS result FROM events WHERE shkeptncontext = $1"
        " AND type = 'sh.keptn.event.canary.remediation.finished' ORDER BY time, seq",
        context,
    )  # all of them: the datastore API pages at 100
    assert [row["result"] for row in rows] == ["fail"] * (ITERATIONS - 1) + ["pass"]

    runs = [run async for run in stack.client.list_workflows(f"WorkflowId = '{handle.id}'")]
    statuses = [run.status for run in runs]
    assert statuses.count(WorkflowExecutionStatus.COMPLETED) == 1
    assert statuses.count(WorkflowExecutionStatus.CONTINUED_AS_NEW) >= min(3, ITERATIONS // 5), statuses
    histories = [
        await stack.client.get_workflow_handle(handle.id, run_id=run.run_id).fetch_history() for run in runs
    ]
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    for history in histories:
        await replayer.replay_workflow(history)
    with capsys.disabled():
        sys.stdout.write(
            f"\nremediation loop: {ITERATIONS} iterations in {elapsed:.1f} s "
            f"({elapsed / ITERATIONS * 1000:.0f} ms each), {len(runs)} runs of the context workflow, "
            f"history length per run max {max(len(h.events) for h in histories)}\n"
        )
