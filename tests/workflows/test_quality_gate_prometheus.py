"""Quality gates end to end: deliveries judged on a real Prometheus by the built-in SLI provider.

Prometheus scrapes a small app with fixed metrics (``tests/fixtures/prometheus.py``); the built-in
``prometheus`` provider substitutes the placeholders of ``prometheus/sli.yaml`` and queries it with
basic auth; lighthouse scores and compares with earlier evaluations from the event store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.fixtures.prometheus import PrometheusServer
from tests.keptn_schemas import assert_matches_event_schema
from tests.workflows.stack import Stack, running_stack

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: gates}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks:
            - name: deployment
            - name: evaluation
              properties: {timeframe: 1m}
            - name: release
"""

SLI = """spec_version: "1.0"
indicators:
  response_time: 'capstan_test_response_time_seconds{project="sockshop",stage="$STAGE",service="$SERVICE"}'
  throughput: 'sum(capstan_test_requests_total{service="$SERVICE"})'
"""


def slo(response_time_limit: float) -> str:
    return f"""spec_version: "1.0"
comparison:
  compare_with: several_results
  number_of_comparison_results: 3
  include_result_with_score: pass
objectives:
  - sli: response_time
    displayName: Response time
    pass: [{{criteria: ["<={response_time_limit}", "<=+10%"]}}]
    key_sli: true
  - sli: throughput
    pass: [{{criteria: [">=1000"]}}]
total_score: {{pass: "90%", warning: "75%"}}
"""


@pytest_asyncio.fixture
async def stack(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment, prometheus: PrometheusServer
) -> AsyncIterator[Stack]:
    async with running_stack(
        db_url,
        pool,
        temporal_env.client,
        builtin=True,
        prometheus_url=prometheus.url,
        prometheus_user=prometheus.user,
        prometheus_password=prometheus.password,
    ) as running:
        await running.create_project(running.project, SHIPYARD, "carts")
        await running.add_resource("dev", "carts", "prometheus/sli.yaml", SLI)
        configure = await running.send(
            {
                "type": "sh.keptn.event.monitoring.configure",
                "source": "tests",
                "data": {"project": running.project, "service": "carts", "type": "prometheus"},
            }
        )
        assert configure.status_code == 200, configure.text
        yield running


async def lighthouse_result(stack: Stack, context: str) -> dict[str, Any]:
    (event,) = [
        e
        for e in await stack.events(context, "sh.keptn.event.evaluation.finished")
        if e["source"] == "lighthouse-service"
    ]
    assert_matches_event_schema(event)
    data: dict[str, Any] = event["data"]
    return {**data, "id": event["id"]}


async def evaluate_now(stack: Stack) -> tuple[str, dict[str, Any]]:
    response = await stack.api.post(
        f"/api/controlPlane/v1/project/{stack.project}/stage/dev/service/carts/evaluation",
        json={"timeframe": "1m"},
    )
    assert response.status_code == 200, response.text
    context: str = response.json()["keptnContext"]
    await stack.finished(context, "dev", "evaluation")
    return context, await lighthouse_result(stack, context)


async def test_deliveries_are_gated_on_prometheus_data_and_invalidations_leave_the_baseline(
    stack: Stack, prometheus: PrometheusServer
):
    # 1. a delivery whose response time (0.25 s) is within the SLO passes and is released
    await stack.add_resource("dev", "carts", "slo.yaml", slo(0.5))
    passing = await stack.trigger(stack.project, "dev", "delivery", "carts")
    await stack.answer(await stack.next_triggered("deployment", project=stack.project))
    await stack.answer(await stack.next_triggered("release", project=stack.project))
    finished = await stack.finished(passing, "dev", "delivery")
    assert (finished["data"]["result"], finished["data"]["status"]) == ("pass", "succeeded")
    first = await lighthouse_result(stack, passing)
    assert (first["result"], first["evaluation"]["score"]) == ("pass", 100)
    values = {r["value"]["metric"]: r["value"]["value"] for r in first["evaluation"]["indicatorResults"]}
    assert values == {
        "response_time": prometheus.response_time[("sockshop", "dev", "carts")],
        "throughput": prometheus.requests_total["carts"],
    }
    sli_answers = await stack.events(passing, "sh.keptn.event.get-sli.finished")
    assert [e["source"] for e in sli_answers] == ["prometheus-service"]

    # 2. a stricter SLO fails the key SLI: the gate fails and the sequence stops before release
    await stack.add_resource("dev", "carts", "slo.yaml", slo(0.1))
    failing = await stack.trigger(stack.project, "dev", "delivery", "carts")
    await stack.answer(await stack.next_triggered("deployment", project=stack.project))
    finished = await stack.finished(failing, "dev", "delivery")
    assert (finished["data"]["result"], finished["data"]["status"]) == ("fail", "succeeded")
    second = await lighthouse_result(stack, failing)
    assert second["result"] == "fail"
    assert second["message"].startswith("Evaluation failed due to key_sli objective 'Response time'")
    assert await stack.open_triggered("release", project=stack.project) == []

    # 3. back to the first SLO: compared with the earlier pass only (the failure is no baseline)
    await stack.add_resource("dev", "carts", "slo.yaml", slo(0.5))
    _, third = await evaluate_now(stack)
    assert third["result"] == "pass"
    assert third["evaluation"]["comparedEvents"] == [first["id"]]

    # 4. invalidate the first evaluation: the next one compares with the third only
    first_trigger = (await stack.events(passing, "sh.keptn.event.evaluation.triggered"))[0]
    invalidated = await stack.send(
        {
            "type": "sh.keptn.event.evaluation.invalidated",
            "source": "tests",
            "shkeptncontext": passing,
            "triggeredid": first_trigger["id"],
            "data": {"project": stack.project, "stage": "dev", "service": "carts"},
        }
    )
    assert invalidated.status_code == 200, invalidated.text
    _, fourth = await evaluate_now(stack)
    assert fourth["result"] == "pass"
    assert fourth["evaluation"]["comparedEvents"] == [third["id"]]
    compared = fourth["evaluation"]["indicatorResults"][0]["value"]["comparedValue"]
    assert compared == prometheus.response_time[("sockshop", "dev", "carts")]
