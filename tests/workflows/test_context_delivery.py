"""Multi-stage delivery through the real stack: tasks, merge, chaining, parallel stages, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.keptn_schemas import assert_matches_event_schema
from tests.workflows.stack import Stack, running_stack
from workflows.context_models import ContextResult, context_workflow_id

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: shipyard-sockshop}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks:
            - name: deployment
              properties: {deploymentstrategy: direct}
            - name: test
              properties: {teststrategy: functional}
            - name: evaluation
    - name: staging
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}, {name: test}, {name: evaluation}, {name: release}]
        - name: rollback
          triggeredOn:
            - event: staging.delivery.finished
              selector: {match: {result: fail}}
          tasks: [{name: rollback}]
    - name: production
      sequences:
        - name: delivery
          triggeredOn: [{event: staging.delivery.finished}]
          tasks: [{name: deployment}, {name: release}]
    - name: production-eu
      sequences:
        - name: delivery
          triggeredOn: [{event: staging.delivery.finished}]
          tasks: [{name: deployment}, {name: release}]
"""

IMAGE = "docker.io/keptnexamples/carts:0.13.1"


@pytest_asyncio.fixture
async def stack(db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    async with running_stack(db_url, pool, temporal_env.client) as running:
        await running.create_project(running.project, SHIPYARD, "carts")
        yield running


async def test_a_three_stage_delivery_merges_payloads_and_chains_stages(stack: Stack):
    context = await stack.trigger(
        stack.project,
        "dev",
        "delivery",
        "carts",
        configurationChange={"values": {"image": IMAGE}},
        labels={"run": "7"},
    )

    # dev: two integrations answer the deployment; the task finishes only when both finished
    deployment = await stack.next_triggered("deployment", project=stack.project, stage="dev")
    assert deployment["shkeptncontext"] == context
    assert deployment["data"]["deployment"] == {"deploymentstrategy": "direct"}
    assert deployment["data"]["configurationChange"]["values"]["image"] == IMAGE
    assert deployment["gitcommitid"]
    await stack.answer(deployment, source="helm", finished=False)
    await stack.answer(
        deployment, source="notifier", deployment={"deploymentURIsLocal": ["http://carts.dev"]}
    )
    assert await stack.open_triggered("test", project=stack.project) == []  # helm has not finished yet
    await stack.answer(deployment, source="helm", started=False, deployment={"deploymentNames": ["carts"]})

    test = await stack.next_triggered("test", project=stack.project, stage="dev")
    # Keptn's merge: earlier task output appears in later payloads, shipyard properties under data.<task>
    assert test["data"]["deployment"]["deploymentURIsLocal"] == ["http://carts.dev"]
    assert test["data"]["deployment"]["deploymentNames"] == ["carts"]
    assert test["data"]["test"] == {"teststrategy": "functional"}
    assert test["data"]["result"] == "pass" and test["data"]["labels"] == {"run": "7"}
    await stack.answer(
        test, result="warning", test={"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T00:05:00Z"}
    )
    evaluation = await stack.next_triggered("evaluation", project=stack.project, stage="dev")
    assert evaluation["data"]["result"] == "warning"  # a warning continues the sequence
    await stack.answer(evaluation, evaluation={"score": 90})

    dev = await stack.finished(context, "dev", "delivery")
    assert dev["data"]["result"] == "pass" and dev["data"]["status"] == "succeeded"

    # staging was triggered in the same context by triggeredOn dev.delivery.finished
    for task in ("deployment", "test", "evaluation", "release"):
        triggered = await stack.next_triggered(task, project=stack.project, stage="staging")
        assert triggered["shkeptncontext"] == context
        await stack.answer(triggered)
    staging = await stack.finished(context, "staging", "delivery")
    assert staging["data"]["result"] == "pass"

    # two stages triggered by the same finished sequence run in parallel
    prod = await stack.next_triggered("deployment", project=stack.project, stage="production")
    prod_eu = await stack.next_triggered("deployment", project=stack.project, stage="production-eu")
    await stack.answer(prod_eu)
    await stack.answer(prod)
    for stage in ("production", "production-eu"):
        await stack.answer(await stack.next_triggered("release", project=stack.project, stage=stage))
        assert (await stack.finished(context, stage, "delivery"))["data"]["result"] == "pass"

    emitted = [e for e in await stack.events(context) if e["source"] == "shipyard-controller"]
    assert emitted
    for event in emitted:
        assert_matches_event_schema(event)
    # no rollback: it only runs when staging fails
    assert not await stack.events(context, "sh.keptn.event.staging.rollback.triggered")
    # with nothing left to run the context ends by itself, also after two sequences ran side by
    # side (it once waited for ever for the one that finished second)
    handle = stack.client.get_workflow_handle(
        context_workflow_id(stack.project, context), result_type=ContextResult
    )
    result = await asyncio.wait_for(handle.result(), 10)
    assert result.sequences_run == 4


async def test_a_failing_task_stops_the_sequence_and_triggers_the_rollback(stack: Stack):
    context = await stack.trigger(stack.project, "staging", "delivery", "carts")
    await stack.answer(await stack.next_triggered("deployment", project=stack.project, stage="staging"))
    test = await stack.next_triggered("test", project=stack.project, stage="staging")
    await stack.answer(test, result="fail", message="3 of 10 tests failed")

    finished = await stack.finished(context, "staging", "delivery")
    assert finished["data"]["result"] == "fail"
    assert finished["data"]["message"] == "3 of 10 tests failed"
    assert await stack.open_triggered("evaluation", project=stack.project) == []

    rollback = await stack.next_triggered("rollback", project=stack.project, stage="staging")
    assert rollback["shkeptncontext"] == context
    assert rollback["data"]["result"] == "fail"  # the failed run's merged payload
    await stack.answer(rollback)
    assert (await stack.finished(context, "staging", "rollback"))["data"]["result"] == "pass"
    assert not await stack.events(context, "sh.keptn.event.production.delivery.triggered")


async def test_an_errored_answer_ends_the_sequence_errored(stack: Stack):
    context = await stack.trigger(stack.project, "production", "delivery", "carts")
    deployment = await stack.next_triggered("deployment", project=stack.project, stage="production")
    await stack.answer(deployment, result="fail", status="errored", message="helm upgrade failed")
    finished = await stack.finished(context, "production", "delivery")
    assert (finished["data"]["result"], finished["data"]["status"]) == ("fail", "errored")


async def test_an_unknown_sequence_finishes_errored_with_keptns_message(stack: Stack):
    context = await stack.trigger(stack.project, "dev", "hotfix", "carts")
    finished = await stack.finished(context, "dev", "hotfix")
    assert (finished["data"]["result"], finished["data"]["status"]) == ("fail", "errored")
    assert finished["data"]["message"] == (
        "Unable to start sequence hotfix: no task sequence with name hotfix found in stage dev"
    )


async def test_the_builtin_evaluation_sequence_exists_in_every_stage(stack: Stack):
    context = await stack.trigger(stack.project, "production", "evaluation", "carts")
    evaluation = await stack.next_triggered("evaluation", project=stack.project, stage="production")
    await stack.answer(evaluation)
    assert (await stack.finished(context, "production", "evaluation"))["data"]["result"] == "pass"
