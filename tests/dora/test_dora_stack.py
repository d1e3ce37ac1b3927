"""DORA metrics over the events real sequences leave: deliveries through two stages, a failed
evaluation with its rollback, a failed test, an image delivered again, and a remediation.

The test is every integration (it answers each task through the API, pass or fail as the story
needs); the expected numbers are computed from the stored events' own times.
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.capstan.cli_runner import run_capstan
from tests.workflows.stack import TOKEN, Stack, running_stack

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: dora}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}]
    - name: prod
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}, {name: evaluation}]
        - name: rollback
          triggeredOn: [{event: prod.delivery.finished, selector: {match: {result: fail}}}]
          tasks: [{name: rollback}]
        - name: remediation
          tasks: [{name: action}]
"""


@pytest_asyncio.fixture
async def stack(db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    async with running_stack(db_url, pool, temporal_env.client, serve=True) as running:
        await running.create_project(running.project, SHIPYARD, "carts")
        yield running


def moment(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["time"])


async def deliver(
    stack: Stack, image: str, *, test: str = "pass", evaluation: str = "pass", deploy: str = "pass"
) -> str:
    """Trigger a delivery of ``image`` in dev and answer its tasks; wait until it has ended."""
    context = await stack.trigger(
        stack.project, "dev", "delivery", "carts", configurationChange={"values": {"image": image}}
    )
    await stack.answer(await stack.next_triggered("deployment", project=stack.project, stage="dev"))
    await stack.answer(await stack.next_triggered("test", project=stack.project, stage="dev"), result=test)
    await stack.finished(context, "dev", "delivery")
    if test == "fail":
        return context
    await stack.answer(
        await stack.next_triggered("deployment", project=stack.project, stage="prod"), result=deploy
    )
    await stack.answer(
        await stack.next_triggered("evaluation", project=stack.project, stage="prod"), result=evaluation
    )
    await stack.finished(context, "prod", "delivery")
    if evaluation == "fail":
        await stack.answer(await stack.next_triggered("rollback", project=stack.project, stage="prod"))
        await stack.finished(context, "prod", "rollback")
    return context


async def first(stack: Stack, context: str, event_type: str) -> dict[str, Any]:
    found = await stack.events(context, f"sh.keptn.event.{event_type}")
    assert found, (context, event_type)
    return found[0]


async def test_metrics_of_real_deliveries_rollbacks_and_a_remediation(stack: Stack):
    good = await deliver(stack, "carts:1")
    rolled_back = await deliver(stack, "carts:2", evaluation="fail")
    tried = await deliver(stack, "carts:3", test="fail")  # never reaches prod
    again = await deliver(stack, "carts:3", deploy="warning")  # the same image, a new context
    incident = await stack.trigger(
        stack.project, "prod", "remediation", "carts", problem={"problemTitle": "cpu"}
    )
    await stack.answer(await stack.next_triggered("action", project=stack.project, stage="prod"))
    await stack.finished(incident, "prod", "remediation")

    response = await stack.api.get("/api/v1/metrics/dora", params={"project": stack.project})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stage"] == "prod"
    m = body["metrics"]

    deployed = {}
    for context in (good, rolled_back, again):
        finished = await stack.events(context, "sh.keptn.event.deployment.finished")
        deployed[context] = moment(next(e for e in finished if e["data"]["stage"] == "prod"))
    assert m["deployments"] == 3
    assert sum(d["deployments"] for d in m["deploymentsByDay"]) == 3

    # lead time: from the dev trigger of the context; for carts:3 from its first (failed) attempt
    starts = {
        good: moment(await first(stack, good, "dev.delivery.triggered")),
        rolled_back: moment(await first(stack, rolled_back, "dev.delivery.triggered")),
        again: moment(await first(stack, tried, "dev.delivery.triggered")),
    }
    leads = sorted((deployed[c] - starts[c]).total_seconds() for c in deployed)
    assert m["leadTimes"] == 3
    assert m["leadTimeMedianSeconds"] == statistics.median(leads)
    assert m["leadTimeP90Seconds"] == leads[-1]

    # the rolled-back delivery failed; the remediation is blamed on the newest deployment
    assert (m["failedDeployments"], m["changeFailureRate"]) == (2, 2 / 3)

    opened = moment(await first(stack, incident, "prod.remediation.triggered"))
    restored = moment(await first(stack, incident, "prod.remediation.finished"))
    assert (m["incidents"], m["restoredIncidents"], m["openIncidents"]) == (1, 1, 0)
    assert m["timeToRestoreMedianSeconds"] == (restored - opened).total_seconds()

    # the same numbers through `capstan get dora`
    api_url = f"{stack.base_url}/api"
    as_json = await run_capstan(
        "get", "dora", "--project", stack.project, "-o", "json", api_url=api_url, token=TOKEN
    )
    assert as_json.code == 0, as_json.stderr
    stable = [k for k in m if k != "deploymentsByDay"]  # days may roll over between the calls
    assert {k: as_json.json()["metrics"][k] for k in stable} == {k: m[k] for k in stable}
    table = await run_capstan(
        "get", "dora", "--project", stack.project, api_url=api_url, token=TOKEN, COLUMNS="200"
    )
    assert table.code == 0, table.stderr
    assert f"project {stack.project}" in table.stdout and "67%" in table.stdout, table.stdout
    missing = await run_capstan(
        "get", "dora", "--project", stack.project, "--stage", "qa", api_url=api_url, token=TOKEN
    )
    assert missing.code == 1 and "stage 'qa'" in missing.stderr, missing.stderr

    # the first stage, where the failed test counts against nothing: it is no deployment failure
    dev = (
        await stack.api.get("/api/v1/metrics/dora", params={"project": stack.project, "stage": "dev"})
    ).json()
    assert (dev["metrics"]["deployments"], dev["metrics"]["failedDeployments"]) == (4, 1)
