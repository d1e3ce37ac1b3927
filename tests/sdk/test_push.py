"""Push mode: the SDK's HTTP server on a loopback port receives CloudEvents from the control plane."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import httpx
import pytest

from capstan.sdk import TaskContext
from tests.fixtures.ports import free_port
from tests.sdk.conftest import MakeIntegration
from tests.sdk.fakes import triggered, wait_for

STRUCTURED = {"content-type": "application/cloudevents+json"}


@pytest.fixture
async def pushed(make_integration: MakeIntegration, cp):
    """A running push-mode integration whose handler records its contexts; yields (url, seen)."""
    integration = make_integration(mode="push", port=free_port())
    seen: list[TaskContext] = []

    @integration.task("deployment", stages=["dev"])
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        seen.append(ctx)
        await asyncio.sleep(0.05)  # the POST must have been answered before this
        return {"deployment": {"deploymentURIsLocal": ["http://carts.dev"]}}

    async with integration.running():
        yield integration, seen


async def test_structured_cloudevent_is_accepted_at_once_and_answered(pushed, cp):
    integration, seen = pushed
    event = triggered()
    async with httpx.AsyncClient() as http:
        response = await http.post(integration.public_url, content=json.dumps(event), headers=STRUCTURED)
    assert response.status_code == 202
    assert response.json() == {"id": event["id"], "outcome": "accepted"}
    await wait_for(lambda: len(cp.posted) == 2, "answers")
    started, finished = cp.posted
    assert started["type"] == "sh.keptn.event.deployment.started"
    assert finished["type"] == "sh.keptn.event.deployment.finished"
    assert finished["triggeredid"] == event["id"]
    assert finished["data"]["deployment"] == {"deploymentURIsLocal": ["http://carts.dev"]}
    assert seen[0].triggered_id == event["id"]


async def test_keptn_json_and_binary_mode_are_accepted(pushed, cp):
    integration, _ = pushed
    plain, binary = triggered(), triggered()
    headers = {f"ce-{key}": value for key, value in binary.items() if key != "data"}
    headers["content-type"] = "application/json"
    async with httpx.AsyncClient() as http:
        first = await http.post(integration.public_url, json=plain)
        second = await http.post(integration.public_url, json=binary["data"], headers=headers)
    assert (first.status_code, second.status_code) == (202, 202)
    await wait_for(lambda: len(cp.posted) == 4, "answers to both")
    assert {e["triggeredid"] for e in cp.posted} == {plain["id"], binary["id"]}


async def test_a_redelivered_event_is_handled_once(pushed, cp):
    integration, seen = pushed
    event = triggered()
    async with httpx.AsyncClient() as http:
        outcomes = [(await http.post(integration.public_url, json=event)).json()["outcome"] for _ in range(3)]
    assert outcomes == ["accepted", "duplicate", "duplicate"]
    await wait_for(lambda: len(cp.posted) == 2, "answers")
    await asyncio.sleep(0.1)
    assert len(seen) == 1 and len(cp.posted) == 2


async def test_events_that_are_not_ours_are_ignored(pushed, cp):
    integration, seen = pushed
    async with httpx.AsyncClient() as http:
        for event in (
            triggered("test"),  # no handler
            triggered(stage="prod"),  # filtered out
            {**triggered(), "type": "sh.keptn.event.deployment.finished"},
        ):
            response = await http.post(integration.public_url, json=event)
            assert response.status_code == 202
            assert response.json()["outcome"] == "ignored"
    await asyncio.sleep(0.1)
    assert seen == [] and cp.posted == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [(b"not json", "not valid JSON"), (b"[1]", "JSON object"), (b'{"type": "x"}', "'id'")],
)
async def test_a_body_that_is_no_event_gets_keptns_400(pushed, body, needle):
    integration, _ = pushed
    async with httpx.AsyncClient() as http:
        response = await http.post(integration.public_url, content=body, headers=STRUCTURED)
    assert response.status_code == 400
    assert response.json()["code"] == 400 and needle in response.json()["message"]


async def test_health_and_registration_with_the_url(pushed, cp):
    integration, _ = pushed
    await integration.wait_until_registered()
    async with httpx.AsyncClient() as http:
        health = await http.get(integration.public_url + "health")
    assert health.json() == {"status": "ok", "registered": True, "running": 0}
    [registration] = cp.registrations
    assert registration["metadata"]["location"] == "control-plane"
    assert registration["subscriptions"][0]["url"] == integration.public_url


async def test_port_zero_picks_a_port_and_shutdown_frees_it(make_integration: MakeIntegration, cp):
    integration = make_integration(mode="push", port=0)

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        return {}

    async with integration.running():
        port = integration.port
        assert port > 0 and integration.public_url == f"http://127.0.0.1:{port}/"
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # free again


async def test_a_busy_port_fails_the_start(make_integration: MakeIntegration):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        integration = make_integration(mode="push", port=busy.getsockname()[1])

        @integration.task("deployment")
        async def deploy(ctx: TaskContext) -> dict[str, Any]:
            return {}

        with pytest.raises(OSError):
            async with integration.running():
                pass
