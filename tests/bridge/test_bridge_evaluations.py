"""The evaluation page on the real stack: the built-in lighthouse scores, the test is the SLI provider.

The SLI provider is an external one in pull mode (the project's ``monitoring.configure`` names
it), so the test decides every SLI value and with it each evaluation's statuses and score.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from api.bridge.session import COOKIE
from tests.bridge.helpers import create_token, testids
from tests.workflows.stack import TOKEN, Stack, running_stack

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: gates}
spec:
  stages:
    - name: dev
      sequences: [{name: delivery, tasks: [{name: deployment}]}]
    - name: staging
      sequences: [{name: delivery, tasks: [{name: deployment}]}]
"""

SLO = """spec_version: "1.0"
objectives:
  - sli: response_time_p95
    displayName: Response time P95
    pass: [{criteria: ["<600"]}]
    warning: [{criteria: ["<=800"]}]
  - sli: error_rate
    pass: [{criteria: ["<5"]}]
    key_sli: true
  - sli: throughput
total_score: {pass: "90%", warning: "75%"}
"""

PROVIDER = "bridge-test-sli"
FINISHED = "sh.keptn.event.evaluation.finished"


@pytest_asyncio.fixture
async def stack(db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    async with running_stack(
        db_url, pool, temporal_env.client, builtin=True, get_sli_timeout=timedelta(seconds=5)
    ) as running:
        await running.create_project(running.project, SHIPYARD, "carts", "orders")
        for stage in ("dev", "staging"):
            await running.add_resource(stage, "carts", "slo.yaml", SLO)
        configured = await running.send(
            {
                "type": "sh.keptn.event.monitoring.configure",
                "source": "tests",
                "data": {"project": running.project, "service": "carts", "type": PROVIDER},
            }
        )
        assert configured.status_code == 200, configured.text
        yield running


async def evaluate(stack: Stack, stage: str, values: dict[str, float]) -> dict[str, Any]:
    """Trigger an evaluation of carts, answer its get-sli with ``values``; the evaluation.finished."""
    response = await stack.api.post(
        f"/api/controlPlane/v1/project/{stack.project}/stage/{stage}/service/carts/evaluation",
        json={"timeframe": "5m"},
    )
    assert response.status_code == 200, response.text
    context = response.json()["keptnContext"]
    triggered = await stack.next_triggered("get-sli", project=stack.project, stage=stage)
    assert triggered["shkeptncontext"] == context
    window = triggered["data"]["get-sli"]
    indicator_values = [
        {"metric": metric, "value": value, "success": True, "message": ""} for metric, value in values.items()
    ]
    data: dict[str, Any] = {
        "get-sli": {"start": window["start"], "end": window["end"], "indicatorValues": indicator_values}
    }
    await stack.answer(triggered, source=PROVIDER, **data)
    await stack.finished(context, stage, "evaluation")
    (finished,) = [e for e in await stack.events(context, FINISHED) if e["source"] == "lighthouse-service"]
    return finished


async def page(stack: Stack, service: str = "carts", token: str = TOKEN, **params: Any) -> tuple[int, str]:
    """GET the evaluation page with a session of ``token``."""
    stack.api.cookies.clear()
    stack.api.cookies.set(COOKIE, token)
    response = await stack.api.get(
        f"/project/{stack.project}/service/{service}/evaluations",
        params={k: v for k, v in params.items() if v is not None},
    )
    return response.status_code, response.text


def classes(element: dict[str, str]) -> set[str]:
    return set(element.get("class", "").split())


def cells_of(html: str, sli: str) -> list[dict[str, str]]:
    return [cell for cell in testids(html, "heatmap-cell") if cell["data-sli"] == sli]


async def test_heatmap_chart_and_details_of_scored_evaluations(stack: Stack):
    good = await evaluate(stack, "dev", {"response_time_p95": 400, "error_rate": 1, "throughput": 50})
    slow = await evaluate(stack, "dev", {"response_time_p95": 700, "error_rate": 1, "throughput": 42})
    broken = await evaluate(stack, "dev", {"response_time_p95": 900, "error_rate": 9, "throughput": 7})
    assert [e["data"]["result"] for e in (good, slow, broken)] == ["pass", "warning", "fail"]
    elsewhere = await evaluate(stack, "staging", {"response_time_p95": 100, "error_rate": 0, "throughput": 1})

    # no stage given: the stage of the newest evaluation
    status, html = await page(stack)
    assert status == 200, html
    assert len(testids(html, "heatmap")) == 1
    rows = testids(html, "heatmap-row")
    assert [row["data-sli"] for row in rows] == ["response_time_p95", "error_rate", "throughput"]
    assert len(testids(html, "heatmap-cell")) == 3
    assert [c["data-evaluation"] for c in testids(html, "score-point")] == [elsewhere["id"]]

    status, html = await page(stack, stage="dev")
    assert status == 200, html
    assert [c["data-evaluation"] for c in testids(html, "heatmap-column")] == [
        good["id"],
        slow["id"],
        broken["id"],
    ]
    response_time = cells_of(html, "response_time_p95")
    assert [cell["text"] for cell in response_time] == ["400", "700", "900"]
    assert [classes(cell) & {"pass", "warning", "fail", "info"} for cell in response_time] == [
        {"pass"},
        {"warning"},
        {"fail"},
    ]
    assert "<600" in response_time[0]["title"] and "<=800" in response_time[0]["title"]
    assert [classes(cell) & {"pass", "fail"} for cell in cells_of(html, "error_rate")] == [
        {"pass"},
        {"pass"},
        {"fail"},
    ]
    throughput = cells_of(html, "throughput")
    assert [cell["text"] for cell in throughput] == ["50", "42", "7"]
    assert all("info" in classes(cell) for cell in throughput)
    scores = testids(html, "heatmap-score")
    assert [s["data-status"] for s in scores] == ["pass", "warning", "fail"]
    assert [s["text"] for s in scores] == ["100", "75", "0"]

    points = testids(html, "score-point")
    assert [p["data-score"] for p in points] == ["100", "75", "0"]
    assert [p["data-evaluation"] for p in points] == [good["id"], slow["id"], broken["id"]]
    assert [float(p["cy"]) for p in points] == sorted(
        float(p["cy"]) for p in points
    )  # higher score, higher up
    thresholds = {t["data-threshold"]: t for t in testids(html, "score-threshold")}
    assert {name: t["data-value"] for name, t in thresholds.items()} == {"pass": "90", "warning": "75"}
    assert float(thresholds["pass"]["y1"]) < float(thresholds["warning"]["y1"])
    assert float(thresholds["warning"]["y1"]) == float(points[1]["cy"])  # the 75 point sits on the line

    # details of the newest by default, with a link to its sequence
    (details,) = testids(html, "evaluation-details")
    assert details["data-evaluation"] == broken["id"]
    assert [row["data-sli"] for row in testids(html, "evaluation-sli")] == [
        "response_time_p95",
        "error_rate",
        "throughput",
    ]
    assert len(testids(html, "key-sli")) == 1
    assert testids(html, "evaluation-result")[0]["text"] == "fail"
    (link,) = testids(html, "sequence-link")
    assert link["href"] == f"/project/{stack.project}/sequence/{broken['shkeptncontext']}"
    stage_options = html.split('data-testid="stage-select"')[1].split("</select>")[0]
    assert '<option value="dev" selected>' in stage_options and 'value="staging"' in stage_options

    # limit: the newest n
    status, html = await page(stack, stage="dev", limit=2)
    assert status == 200, html
    assert [p["data-evaluation"] for p in testids(html, "score-point")] == [slow["id"], broken["id"]]
    assert len(testids(html, "heatmap-cell")) == 2 * 3

    # an older evaluation selected by its id, even outside the limit
    status, html = await page(stack, stage="dev", limit=1, evaluation=good["id"])
    assert status == 200, html
    assert testids(html, "evaluation-details")[0]["data-evaluation"] == good["id"]
    assert testids(html, "evaluation-result")[0]["text"] == "pass"

    # an invalidated evaluation leaves the heatmap (Keptn's excludeInvalidated) but can still be opened
    invalidated = await stack.send(
        {
            "type": "sh.keptn.event.evaluation.invalidated",
            "source": "tests",
            "shkeptncontext": slow["shkeptncontext"],
            "triggeredid": slow["triggeredid"],
            "data": {"project": stack.project, "stage": "dev", "service": "carts"},
        }
    )
    assert invalidated.status_code == 200, invalidated.text
    status, html = await page(stack, stage="dev")
    assert [p["data-evaluation"] for p in testids(html, "score-point")] == [good["id"], broken["id"]]
    assert testids(html, "evaluation-invalidated") == []
    status, html = await page(stack, stage="dev", evaluation=slow["id"])
    assert status == 200, html
    assert len(testids(html, "evaluation-invalidated")) == 1

    # an evaluation of another stage is not one of this page
    status, html = await page(stack, stage="dev", evaluation=elsewhere["id"])
    assert status == 404
    assert elsewhere["id"] in html


async def test_without_evaluations_the_page_says_so(stack: Stack):
    status, html = await page(stack, service="orders")
    assert status == 200, html
    assert len(testids(html, "no-evaluations")) == 1
    assert testids(html, "heatmap-row") == []
    assert testids(html, "score-point") == []
    assert 'option value="dev" selected' in html  # the first stage


async def test_unknown_things_are_404_pages_and_other_projects_403(stack: Stack):
    status, html = await page(stack, service="nope")
    assert status == 404
    assert "service &#39;nope&#39; not found" in html
    assert (await page(stack, stage="prod"))[0] == 404
    assert (await page(stack, evaluation="no-such-event"))[0] == 404

    other = await create_token(stack.api, "other", ["events:read", "projects:read"], project="elsewhere")
    status, html = await page(stack, token=other)
    assert status == 403
    assert "restricted to project &#39;elsewhere&#39;" in html

    no_events = await create_token(stack.api, "projects-only", ["projects:read"], project=stack.project)
    status, html = await page(stack, token=no_events)
    assert status == 403
    assert "events:read" in html

    own = await create_token(stack.api, "own", ["events:read"], project=stack.project)
    status, _ = await page(stack, token=own)
    assert status == 200
