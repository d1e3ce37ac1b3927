"""``POST .../evaluation`` and ``monitoring.configure``: Keptn's ways into the quality gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from store import monitoring
from tests.api.helpers import assert_error, create_project

EVALUATE = "/api/controlPlane/v1/project/sockshop/stage/dev/service/carts/evaluation"


async def stored_trigger(api: httpx.AsyncClient, context: str) -> dict[str, Any]:
    response = await api.get("/api/mongodb-datastore/event", params={"keptnContext": context})
    assert response.status_code == 200, response.text
    (event,) = response.json()["events"]
    assert isinstance(event, dict)
    return event


async def test_an_evaluation_trigger_carries_the_resolved_window(api: httpx.AsyncClient):
    await create_project(api, "sockshop", "carts")
    response = await api.post(
        EVALUATE,
        json={"start": "2026-11-26T10:00:00Z", "timeframe": "10m", "labels": {"build": "42"}},
    )
    assert response.status_code == 200, response.text
    event = await stored_trigger(api, response.json()["keptnContext"])
    assert event["type"] == "sh.keptn.event.dev.evaluation.triggered"
    assert event["source"] == "https://github.com/keptn/keptn/api"
    assert event["data"] == {
        "project": "sockshop",
        "stage": "dev",
        "service": "carts",
        "labels": {"build": "42"},
        "evaluation": {"start": "2026-11-26T10:00:00.000Z", "end": "2026-11-26T10:10:00.000Z"},
    }


async def test_without_a_window_the_last_five_minutes_are_evaluated(api: httpx.AsyncClient):
    await create_project(api, "sockshop", "carts")
    before = datetime.now(UTC)
    response = await api.post(EVALUATE, json={})
    assert response.status_code == 200, response.text
    window = (await stored_trigger(api, response.json()["keptnContext"]))["data"]["evaluation"]
    start = datetime.fromisoformat(window["start"])
    end = datetime.fromisoformat(window["end"])
    assert end - start == timedelta(minutes=5)
    assert before - timedelta(seconds=1) <= end <= datetime.now(UTC) + timedelta(seconds=1)


async def test_a_gitcommitid_is_kept_on_the_trigger(api: httpx.AsyncClient):
    await create_project(api, "sockshop", "carts")
    response = await api.post(EVALUATE, json={"gitcommitid": "a" * 40})
    assert response.status_code == 200, response.text
    assert (await stored_trigger(api, response.json()["keptnContext"]))["gitcommitid"] == "a" * 40


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"end": "2026-11-26T10:00:00Z", "timeframe": "5m"}, "timeframe"),
        ({"end": "2026-11-26T10:00:00Z"}, "start"),
        ({"start": "2026-11-26T10:00:00Z", "end": "2026-11-26T10:00:30Z"}, "1 minute"),
        ({"start": "yesterday", "timeframe": "5m"}, "start"),
        ({"timeframe": "five minutes"}, "timeframe"),
        ({"labels": {"build": 42}}, "labels"),
        ({"window": "5m"}, "window"),
    ],
)
async def test_a_bad_window_is_a_400_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, Any], needle: str
):
    await create_project(api, "sockshop", "carts")
    assert_error(await api.post(EVALUATE, json=body), 400, needle)


async def test_unknown_project_stage_or_service_is_a_404(api: httpx.AsyncClient):
    await create_project(api, "sockshop", "carts")
    base = "/api/controlPlane/v1/project"
    assert_error(await api.post(f"{base}/nope/stage/dev/service/carts/evaluation", json={}), 404, "nope")
    assert_error(await api.post(f"{base}/sockshop/stage/qa/service/carts/evaluation", json={}), 404, "qa")
    assert_error(await api.post(f"{base}/sockshop/stage/dev/service/cart/evaluation", json={}), 404, "cart")


async def test_monitoring_configure_chooses_the_projects_sli_provider(api: httpx.AsyncClient, db_url: str):
    await create_project(api, "sockshop", "carts")
    data = {"project": "sockshop", "service": "carts", "type": "prometheus"}
    event: dict[str, Any] = {"type": "sh.keptn.event.monitoring.configure", "source": "tests", "data": data}
    assert (await api.post("/api/v1/event", json=event)).status_code == 200
    data["type"] = "dynatrace"
    assert (await api.post("/api/v1/event", json=event)).status_code == 200
    connection = await asyncpg.connect(db_url)
    try:
        assert await monitoring.get_sli_provider(connection, "sockshop") == "dynatrace"
        assert await monitoring.get_sli_provider(connection, "other") is None
    finally:
        await connection.close()


async def test_monitoring_configure_for_an_unknown_project_is_a_404(api: httpx.AsyncClient):
    event = {
        "type": "sh.keptn.event.monitoring.configure",
        "source": "tests",
        "data": {"project": "ghost", "type": "prometheus"},
    }
    assert_error(await api.post("/api/v1/event", json=event), 404, "ghost", "data.project")
    event["data"] = {"project": "ghost", "type": ""}
    assert_error(await api.post("/api/v1/event", json=event), 400, "data.type")
