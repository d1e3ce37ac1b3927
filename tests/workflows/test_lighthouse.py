"""The built-in lighthouse through the real stack, with an SLI provider answering over the API.

The SLI provider here is an external one in pull mode, as Keptn's dynatrace- or
prometheus-service were: it reads the open ``get-sli.triggered`` and posts ``get-sli.finished``.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.fixtures.json_server import JSONServer
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
              properties: {timeframe: 2m}
            - name: release
"""

SLO = """spec_version: "1.0"
filter: {handler: ItemsController}
comparison:
  compare_with: several_results
  include_result_with_score: pass
  number_of_comparison_results: 2
  aggregate_function: avg
objectives:
  - sli: response_time_p95
    displayName: Response time P95
    pass: [{criteria: ["<=+10%", "<600"]}]
    warning: [{criteria: ["<=800"]}]
    weight: 2
  - sli: error_rate
    pass: [{criteria: ["<5"]}]
    key_sli: true
  - sli: throughput
total_score: {pass: "90%", warning: "75%"}
"""

PROVIDER = "my-sli"
FINISHED = "sh.keptn.event.evaluation.finished"


@pytest_asyncio.fixture
async def stack(db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    async with running_stack(
        db_url, pool, temporal_env.client, builtin=True, get_sli_timeout=timedelta(seconds=3)
    ) as running:
        await running.create_project(running.project, SHIPYARD, "carts")
        yield running


async def configure_monitoring(stack: Stack, provider: str = PROVIDER) -> None:
    response = await stack.send(
        {
            "type": "sh.keptn.event.monitoring.configure",
            "source": "tests",
            "data": {"project": stack.project, "service": "carts", "type": provider},
        }
    )
    assert response.status_code == 200, response.text


async def trigger_evaluation(stack: Stack, **body: Any) -> str:
    response = await stack.api.post(
        f"/api/controlPlane/v1/project/{stack.project}/stage/dev/service/carts/evaluation",
        json=body or {"timeframe": "5m"},
    )
    assert response.status_code == 200, response.text
    context: str = response.json()["keptnContext"]
    return context


async def answer_sli(stack: Stack, values: dict[str, float], **extra: Any) -> dict[str, Any]:
    triggered = await stack.next_triggered("get-sli", project=stack.project)
    indicator_values = [
        {"metric": metric, "value": value, "success": True, "message": ""} for metric, value in values.items()
    ]
    window = triggered["data"]["get-sli"]
    data: dict[str, Any] = {
        "get-sli": {"start": window["start"], "end": window["end"], "indicatorValues": indicator_values},
        **extra,
    }
    await stack.answer(triggered, source=PROVIDER, **data)
    return triggered


async def evaluation_of(
    stack: Stack, context: str, stage: str = "dev", sequence: str = "evaluation"
) -> dict[str, Any]:
    await stack.finished(context, stage, sequence)
    found = [e for e in await stack.events(context, FINISHED) if e["source"] == "lighthouse-service"]
    assert len(found) == 1, found
    return found[0]


async def test_a_gate_asks_the_provider_scores_and_compares_with_previous_passes(stack: Stack):
    await stack.add_resource("dev", "carts", "slo.yaml", SLO)
    await configure_monitoring(stack)

    first = await trigger_evaluation(stack, timeframe="10m", labels={"build": "1"})
    get_sli = await answer_sli(stack, {"response_time_p95": 400, "error_rate": 1, "throughput": 50})
    assert get_sli["source"] == "lighthouse-service"
    assert get_sli["shkeptncontext"] == first
    sli = get_sli["data"]["get-sli"]
    assert sli["sliProvider"] == PROVIDER
    assert sli["indicators"] == ["response_time_p95", "error_rate", "throughput"]
    assert sli["customFilters"] == [{"key": "handler", "value": "ItemsController"}]
    assert get_sli["data"]["labels"] == {"build": "1"}
    evaluation = await evaluation_of(stack, first)
    assert_matches_event_schema(evaluation)
    triggered = (await stack.events(first, "sh.keptn.event.evaluation.triggered"))[0]
    assert evaluation["triggeredid"] == triggered["id"]
    data = evaluation["data"]
    assert (data["result"], data["status"]) == ("pass", "succeeded")
    assert data["evaluation"]["score"] == 100
    assert data["evaluation"]["comparedEvents"] is None  # Go marshals an empty slice as null
    assert base64.b64decode(data["evaluation"]["sloFileContent"]).decode() == SLO
    assert data["evaluation"]["timeStart"] < data["evaluation"]["timeEnd"]
    started = await stack.events(first, "sh.keptn.event.evaluation.started")
    assert [e["source"] for e in started] == ["lighthouse-service"]
    view = await stack.api.get(
        f"/api/controlPlane/v1/sequence/{stack.project}", params={"keptnContext": first}
    )
    (state,) = view.json()["states"]
    assert state["stages"][0]["latestEvaluation"] == {"result": "pass", "score": 100}

    # 500 is more than 10 % above the average of earlier passes (400): pass fails, warning holds
    second = await trigger_evaluation(stack)
    await answer_sli(stack, {"response_time_p95": 500, "error_rate": 1, "throughput": 50})
    data = (await evaluation_of(stack, second))["data"]
    assert data["evaluation"]["comparedEvents"] == [evaluation["id"]]
    response_time = data["evaluation"]["indicatorResults"][0]
    assert response_time["status"] == "warning"
    assert response_time["value"]["comparedValue"] == 400
    assert data["evaluation"]["score"] == (1 + 1) / 3 * 100
    assert data["result"] == "fail"  # 66.7 % is below the warning target of 75 %

    # the failed second evaluation is not a baseline (include_result_with_score: pass); once the
    # first is invalidated, nothing is
    invalidated = await stack.send(
        {
            "type": "sh.keptn.event.evaluation.invalidated",
            "source": "tests",
            "shkeptncontext": first,
            "triggeredid": triggered["id"],
            "data": {"project": stack.project, "stage": "dev", "service": "carts"},
        }
    )
    assert invalidated.status_code == 200, invalidated.text
    third = await trigger_evaluation(stack)
    await answer_sli(stack, {"response_time_p95": 500, "error_rate": 1, "throughput": 50})
    data = (await evaluation_of(stack, third))["data"]
    assert data["evaluation"]["comparedEvents"] is None  # Go marshals an empty slice as null
    assert data["result"] == "pass"


async def test_a_failed_gate_in_a_delivery_stops_the_sequence(stack: Stack):
    await stack.add_resource("dev", "carts", "slo.yaml", SLO)
    await configure_monitoring(stack)
    context = await stack.trigger(stack.project, "dev", "delivery", "carts")
    await stack.answer(await stack.next_triggered("deployment", project=stack.project))
    get_sli = await answer_sli(stack, {"response_time_p95": 400, "error_rate": 9, "throughput": 50})
    window = get_sli["data"]["get-sli"]
    assert window["end"] > window["start"]  # the task's properties.timeframe: 2m

    finished = await stack.finished(context, "dev", "delivery")
    assert (finished["data"]["result"], finished["data"]["status"]) == ("fail", "succeeded")
    evaluation = await evaluation_of(stack, context, sequence="delivery")
    assert evaluation["data"]["message"].startswith("Evaluation failed due to key_sli objective")
    assert await stack.open_triggered("release", project=stack.project) == []


async def test_without_an_sli_provider_the_gate_passes_with_score_0(stack: Stack):
    await stack.add_resource("dev", "carts", "slo.yaml", SLO)
    context = await trigger_evaluation(stack)
    data = (await evaluation_of(stack, context))["data"]
    assert (data["result"], data["status"]) == ("pass", "succeeded")
    assert data["evaluation"]["score"] == 0
    expected = "no evaluation performed by lighthouse because no SLI-provider configured for project"
    assert data["message"] == f"{expected} {stack.project}"
    assert await stack.events(context, "sh.keptn.event.get-sli.triggered") == []


async def test_without_an_slo_file_the_provider_is_asked_and_the_gate_passes(stack: Stack):
    await configure_monitoring(stack)
    context = await trigger_evaluation(stack)
    get_sli = await answer_sli(stack, {})
    assert get_sli["data"]["get-sli"]["indicators"] == []
    data = (await evaluation_of(stack, context))["data"]
    assert (data["result"], data["status"], data["evaluation"]["score"]) == ("pass", "succeeded", 0)
    assert "no SLO file configured" in data["message"]


async def test_an_invalid_slo_file_ends_the_gate_errored(stack: Stack):
    await stack.add_resource("dev", "carts", "slo.yaml", "objectives: [this is: [not, valid")
    await configure_monitoring(stack)
    context = await trigger_evaluation(stack)
    data = (await evaluation_of(stack, context))["data"]
    assert (data["result"], data["status"]) == ("fail", "errored")
    assert data["message"].startswith("error retrieving SLO file")
    finished = await stack.finished(context, "dev", "evaluation")
    assert (finished["data"]["result"], finished["data"]["status"]) == ("fail", "errored")


async def test_an_sli_provider_that_never_answers_times_the_gate_out(stack: Stack):
    await stack.add_resource("dev", "carts", "slo.yaml", SLO)
    await configure_monitoring(stack)
    context = await trigger_evaluation(stack)
    await stack.next_triggered("get-sli", project=stack.project)
    data = (await evaluation_of(stack, context))["data"]
    assert (data["result"], data["status"]) == ("fail", "errored")
    assert data["message"] == f"no get-sli.finished event received from SLI provider '{PROVIDER}' within 3s"
    assert await stack.open_triggered("get-sli", project=stack.project) == []


async def test_an_errored_sli_answer_ends_the_gate_errored(stack: Stack):
    await stack.add_resource("dev", "carts", "slo.yaml", SLO)
    await configure_monitoring(stack)
    context = await trigger_evaluation(stack)
    await answer_sli(stack, {}, status="errored", result="fail", message="Prometheus is down")
    data = (await evaluation_of(stack, context))["data"]
    assert (data["result"], data["status"]) == ("fail", "errored")
    assert data["message"] == (
        "evaluation performed by lighthouse received an unexpected error: Prometheus is down"
    )


async def test_an_evaluation_without_a_window_ends_errored(stack: Stack):
    await configure_monitoring(stack)
    context = await stack.trigger(stack.project, "dev", "evaluation", "carts")
    data = (await evaluation_of(stack, context))["data"]
    assert (data["result"], data["status"]) == ("fail", "errored")
    assert data["message"] == "evaluation.triggered event does not contain evaluation timeframe"


async def test_an_abort_while_waiting_for_slis_ends_the_gate_quietly(stack: Stack):
    await stack.add_resource("dev", "carts", "slo.yaml", SLO)
    await configure_monitoring(stack)
    context = await trigger_evaluation(stack)
    await stack.next_triggered("get-sli", project=stack.project)
    response = await stack.api.post(
        f"/api/controlPlane/v1/sequence/{stack.project}/{context}/control", json={"state": "abort"}
    )
    assert response.status_code == 200, response.text
    finished = await stack.finished(context, "dev", "evaluation")
    assert finished["data"]["status"] == "aborted"
    assert await stack.events(context, FINISHED) == []
    deadline = time.monotonic() + 10
    while await stack.open_triggered("get-sli", project=stack.project):
        assert time.monotonic() < deadline, "get-sli.triggered still open after the abort"
        await asyncio.sleep(0.05)


async def test_the_builtin_web_provider_answers_get_sli(stack: Stack, json_server: JSONServer):
    url = json_server.url
    json_server.document.update({"carts": {"p95": 230, "errors": 1}})
    sli = f"""spec_version: "1.0"
indicators:
  response_time_p95: {{url: "{url}/$SERVICE", path: "$.$SERVICE.p95"}}
  error_rate: {{url: "{url}/$SERVICE", path: "$.carts.errors"}}
"""
    await stack.add_resource("dev", "carts", "slo.yaml", SLO)
    await stack.add_resource("dev", "carts", "web/sli.yaml", sli)
    await configure_monitoring(stack, "web")
    context = await trigger_evaluation(stack)
    data = (await evaluation_of(stack, context))["data"]
    values = {r["value"]["metric"]: r["value"] for r in data["evaluation"]["indicatorResults"]}
    assert values["response_time_p95"]["value"] == 230, values
    assert values["error_rate"]["value"] == 1
    assert values["throughput"]["success"] is False  # not in web/sli.yaml: a failed, informational SLI
    assert (data["result"], data["evaluation"]["score"]) == ("pass", 100)
    answers = await stack.events(context, "sh.keptn.event.get-sli.finished")
    assert [(e["source"], e["data"]["result"]) for e in answers] == [("web-service", "warning")]
