"""``GET /api/v1/metrics/dora`` over events stored with chosen times; its input errors and scopes.

The numbers over events produced by real sequences are checked in ``test_dora_stack.py``; here the
events are written to the store directly so that the times, and with them the metrics, are exact.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from keptn.events import format_keptn_time
from store.events import insert_event
from tests.api.helpers import assert_error, create_project
from tests.bridge.helpers import browser, create_token, login, testids
from tests.fixtures.app_client import TOKEN

DORA = "/api/v1/metrics/dora"
NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def event(
    event_type: str, when: datetime, context: str, triggeredid: str | None = None, **data: Any
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "tests",
        "type": f"sh.keptn.event{'s' if event_type == 'problem' else ''}.{event_type}",
        "time": format_keptn_time(when),
        "shkeptncontext": context,
        "data": {"project": "sockshop", "service": "carts", **data},
    }
    if triggeredid is not None:
        found["triggeredid"] = triggeredid
    return found


def delivery(start: datetime, lead: timedelta, context: str, image: str, result: str) -> list[dict[str, Any]]:
    """dev.delivery chained into staging.delivery, whose deployment finishes ``lead`` after the start."""
    deploy = event("deployment.triggered", start + HOUR, context, stage="staging")
    deploy["data"]["configurationChange"] = {"values": {"image": image}}
    finished = start + lead
    return [
        event(
            "dev.delivery.triggered",
            start,
            context,
            stage="dev",
            configurationChange={"values": {"image": image}},
        ),
        event("dev.delivery.finished", start + HOUR / 2, context, stage="dev", result="pass"),
        event("staging.delivery.triggered", start + HOUR / 2, context, stage="staging"),
        deploy,
        event(
            "deployment.finished", finished, context, stage="staging", result="pass", triggeredid=deploy["id"]
        ),
        event("staging.delivery.finished", finished + HOUR / 6, context, stage="staging", result=result),
    ]


@pytest_asyncio.fixture
async def history(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    await create_project(api, "sockshop", "carts", "orders")
    events = [
        *delivery(NOW - 3 * DAY, 2 * HOUR, "a", "carts:1", "pass"),
        *delivery(NOW - 2 * DAY, 4 * HOUR, "b", "carts:2", "fail"),
        event(
            "staging.remediation.triggered", NOW - DAY, "r", stage="staging", problem={"problemTitle": "cpu"}
        ),
        event("staging.remediation.finished", NOW - DAY + HOUR / 2, "r", stage="staging", result="pass"),
        event("problem", NOW - HOUR, "p", stage="staging", State="OPEN", ProblemTitle="memory"),
    ]
    for item in events:
        assert await insert_event(pool, item)


async def dora(api: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    response = await api.get(DORA, params={"project": "sockshop", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_four_metrics_and_their_parameters(api: httpx.AsyncClient, history: None):
    body = await dora(api)
    assert (body["project"], body["stage"], body["service"], body["failureWindow"]) == (
        "sockshop",
        "staging",
        None,
        "24h0m0s",
    )
    assert body["truncated"] is False
    m = body["metrics"]
    assert m["deployments"] == 2
    assert m["deploymentsPerDay"] == pytest.approx(2 / 30)
    assert m["deploymentsPerWeek"] == pytest.approx(14 / 30)
    assert len(m["deploymentsByDay"]) in (30, 31)  # the window need not start at midnight
    assert sum(d["deployments"] for d in m["deploymentsByDay"]) == 2
    assert (m["leadTimes"], m["leadTimeMedianSeconds"], m["leadTimeP90Seconds"]) == (2, 3 * 3600, 4 * 3600)
    assert (m["failedDeployments"], m["changeFailureRate"]) == (1, 0.5)
    assert (m["incidents"], m["restoredIncidents"], m["openIncidents"]) == (2, 1, 1)
    assert m["timeToRestoreMedianSeconds"] == 1800
    assert [s["service"] for s in body["services"]] == ["carts"]

    since = format_keptn_time(NOW - 2 * DAY - HOUR)
    body = await dora(api, **{"from": since, "to": format_keptn_time(NOW)})
    assert (body["from"], body["metrics"]["deployments"]) == (since, 1)
    assert body["metrics"]["leadTimeMedianSeconds"] == 4 * 3600
    assert (await dora(api, stage="dev"))["metrics"]["deployments"] == 0
    orders = await dora(api, service="orders")
    assert (orders["service"], orders["metrics"]["deployments"], orders["services"]) == ("orders", 0, [])
    # the deployment of b failed in its own sequence whatever the window
    short = await dora(api, failureWindow="1h")
    assert (short["failureWindow"], short["metrics"]["failedDeployments"]) == ("1h0m0s", 1)


BAD_INPUT = [
    ({}, 400, "project"),
    ({"project": "sockshop", "from": "yesterday"}, 400, "from"),
    ({"project": "sockshop", "to": "2026-13-01T00:00:00Z"}, 400, "to"),
    (
        {"project": "sockshop", "from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        400,
        "before to",
    ),
    (
        {"project": "sockshop", "from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        400,
        "366 days",
    ),
    ({"project": "sockshop", "to": "9999-12-31T00:00:00Z"}, 400, "to is too close"),
    ({"project": "sockshop", "failureWindow": "a day"}, 400, "failureWindow"),
    ({"project": "sockshop", "failureWindow": "0s"}, 400, "failureWindow"),
    ({"project": "sockshop", "failureWindow": "800h"}, 400, "failureWindow"),
    ({"project": "nope"}, 404, "project 'nope'"),
    ({"project": "sockshop", "stage": "prod"}, 404, "stage 'prod'"),
    ({"project": "sockshop", "service": "cart"}, 404, "service 'cart'"),
]


async def test_bad_input_names_the_parameter_and_reading_needs_events_read(api: httpx.AsyncClient):
    await create_project(api, "sockshop", "carts")
    for params, status, needle in BAD_INPUT:
        assert_error(await api.get(DORA, params=params), status, needle)
    transport = api._transport
    tokens = {
        "no-scope": await create_token(api, "projects-only", ["projects:read"]),
        "other-project": await create_token(api, "other", ["events:read"], project="other"),
        "this-project": await create_token(api, "mine", ["events:read"], project="sockshop"),
    }
    statuses = {}
    for name, token in tokens.items():
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers={"x-token": token}
        ) as c:
            statuses[name] = (await c.get(DORA, params={"project": "sockshop"})).status_code
    assert statuses == {"no-scope": 403, "other-project": 403, "this-project": 200}


async def test_the_bridge_page_shows_the_same_numbers(api: httpx.AsyncClient, history: None):
    async with browser(api) as page:
        await login(page, TOKEN)
        project = await page.get("/project/sockshop")
        assert project.status_code == 200, project.text
        (link,) = testids(project.text, "dora-link")
        assert link["href"] == "/project/sockshop/dora"

        response = await page.get(link["href"])
        assert response.status_code == 200, response.text
        html = response.text
        metrics = {m["data-metric"]: m for m in testids(html, "dora-metric")}
        assert metrics["deployment-frequency"]["data-value"] == "2"
        assert metrics["lead-time"]["data-value"] == str(3 * 3600)
        assert "3h 00m" in metrics["lead-time"]["text"] and "p90 4h 00m" in metrics["lead-time"]["text"]
        assert metrics["change-failure-rate"]["data-value"] == "0.5"
        assert "50 %" in metrics["change-failure-rate"]["text"]
        assert metrics["time-to-restore"]["data-value"] == "1800"
        assert "1 open" in metrics["time-to-restore"]["text"]
        bars = testids(html, "deployments-bar")
        assert len(bars) in (30, 31)
        busy = {b["data-day"]: int(b["data-deployments"]) for b in bars if b["data-deployments"] != "0"}
        deployed = (NOW - 3 * DAY + 2 * HOUR, NOW - 2 * DAY + 4 * HOUR)
        assert busy == {moment.date().isoformat(): 1 for moment in deployed}
        assert [float(b["height"]) > 0 for b in bars].count(True) == 2
        (carts,) = testids(html, "dora-service")
        assert (carts["data-service"], carts["data-deployments"], carts["data-failed"]) == ("carts", "2", "1")

        # another stage, one service, a shorter period; an unknown stage is a 404 page
        other = await page.get(
            "/project/sockshop/dora", params={"stage": "dev", "service": "orders", "days": 7}
        )
        assert other.status_code == 200, other.text
        assert {m["data-metric"]: m["data-value"] for m in testids(other.text, "dora-metric")} == {
            "deployment-frequency": "0",
            "lead-time": "",
            "change-failure-rate": "",
            "time-to-restore": "",
        }
        assert len(testids(other.text, "deployments-bar")) in (7, 8)
        assert (await page.get("/project/sockshop/dora", params={"stage": "prod"})).status_code == 404
