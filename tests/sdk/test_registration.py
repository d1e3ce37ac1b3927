"""Registration, heartbeat, subscription refresh, and retrying while the control plane is down."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from capstan.sdk import Integration, Subscription, TaskContext
from tests.sdk.conftest import MakeIntegration
from tests.sdk.fakes import triggered, wait_for


def with_handler(integration: Integration, task: str = "deployment", **filters) -> Integration:
    @integration.task(task, **filters)
    async def handler(ctx: TaskContext) -> dict[str, Any]:
        return {}

    return integration


async def test_registers_with_keptns_body(make_integration: MakeIntegration, cp, monkeypatch):
    monkeypatch.setenv("K8S_NAMESPACE", "execution-plane")
    monkeypatch.delenv("K8S_NODE_NAME", raising=False)
    integration = with_handler(make_integration(version="1.2.3"), projects=["sockshop"], stages=["dev"])
    with_handler(integration, "test")
    async with integration.running():
        assert await integration.wait_until_registered() == "integration-1"
        assert integration.registration_id == "integration-1"
    [call] = cp.calls_to("POST", "/uniform/registration")
    assert call.body == {
        "name": "helm-service",
        "metadata": {
            "hostname": socket.gethostname(),
            "integrationversion": "1.2.3",
            "distributorversion": "capstan-sdk",
            "location": "remote-execution-plane",
            "kubernetesmetadata": {"namespace": "execution-plane"},
        },
        "subscriptions": [
            {
                "event": "sh.keptn.event.deployment.triggered",
                "filter": {"projects": ["sockshop"], "stages": ["dev"], "services": []},
            },
            {
                "event": "sh.keptn.event.test.triggered",
                "filter": {"projects": [], "stages": [], "services": []},
            },
        ],
    }


async def test_heartbeat_pings_and_refreshes_subscriptions(make_integration: MakeIntegration, cp):
    integration = with_handler(make_integration(), projects=["sockshop"])
    async with integration.running():
        await integration.wait_until_registered()
        await wait_for(lambda: len(cp.calls_to("PUT", "/ping")) >= 3, "three heartbeats")
        assert integration.subscriptions == (
            Subscription("sh.keptn.event.deployment.triggered", projects=("sockshop",), id="sub-0"),
        )
        # an edit made in the UI: another project
        cp.subscriptions = [
            {"id": "sub-0", "event": "sh.keptn.event.deployment.triggered", "filter": {"projects": ["other"]}}
        ]
        await wait_for(lambda: integration.subscriptions[0].projects == ("other",), "the refreshed filter")
        polls = len(cp.calls)
        await wait_for(lambda: any(c.params.get("project") == "other" for c in cp.calls[polls:]), "new query")
        event = triggered(project="other")
        cp.add(event)
        await wait_for(lambda: len(cp.posted) == 2, "the answers for the other project")
    pings = cp.calls_to("PUT", "/ping")
    assert all(c.path == "/controlPlane/v1/uniform/registration/integration-1/ping" for c in pings)


async def test_registration_retries_while_the_control_plane_is_down(make_integration: MakeIntegration, cp):
    integration = with_handler(make_integration())
    cp.script("register", httpx.ConnectError("refused"), httpx.ConnectError("refused"), 503, 500)
    async with integration.running():
        assert integration.registration_id is None
        await integration.wait_until_registered()
    assert len(cp.calls_to("POST", "/uniform/registration")) == 5
    assert len(cp.registrations) == 1


async def test_events_are_handled_before_registration_succeeds(make_integration: MakeIntegration, cp):
    integration = with_handler(make_integration())
    cp.script("register", *[503] * 1000)
    event = triggered()
    cp.add(event)
    async with integration.running():
        await wait_for(lambda: len(cp.posted) == 2, "answers")
        assert integration.registration_id is None


async def test_a_forgotten_integration_registers_again(make_integration: MakeIntegration, cp):
    integration = with_handler(make_integration())
    async with integration.running():
        await integration.wait_until_registered()
        cp.integration_id = "integration-2"  # e.g. its TTL expired: pings answer 404
        await wait_for(lambda: integration.registration_id == "integration-2", "the new registration")
    assert len(cp.registrations) == 2


async def test_failed_heartbeats_are_survived(make_integration: MakeIntegration, cp):
    integration = with_handler(make_integration())
    cp.script("ping", 503, httpx.ReadTimeout("slow"))
    async with integration.running():
        await integration.wait_until_registered()
        await wait_for(lambda: len(cp.calls_to("PUT", "/ping")) >= 4, "heartbeats after failures")
        assert integration.registration_id == "integration-1"
    assert len(cp.registrations) == 1


async def test_malformed_subscriptions_are_skipped(make_integration: MakeIntegration, cp):
    cp.subscriptions = [
        {"event": ""},
        "nonsense",
        {"id": "s1", "event": "sh.keptn.event.deployment.triggered", "filter": {"stages": ["dev"]}},
    ]
    integration = with_handler(make_integration())
    async with integration.running():
        await wait_for(lambda: integration.subscriptions[0].id == "s1", "the valid subscription")
        assert len(integration.subscriptions) == 1


def test_settings_from_keptn_environment(monkeypatch):
    monkeypatch.setenv("KEPTN_API_ENDPOINT", "http://keptn/api")
    monkeypatch.setenv("KEPTN_API_TOKEN", "t")
    integration = Integration("x")
    assert integration.api_url == "http://keptn/api"
    monkeypatch.delenv("KEPTN_API_TOKEN")
    with pytest.raises(ValueError, match="token"):
        Integration("x")


def test_push_registration_carries_the_url(make_integration: MakeIntegration):
    integration = with_handler(make_integration(mode="push", host="127.0.0.1", port=9999))
    body = integration.registration()
    assert body["metadata"]["location"] == "control-plane"
    assert body["subscriptions"][0]["url"] == "http://127.0.0.1:9999/"
    custom = with_handler(make_integration(mode="push", public_url="https://hooks.example/keptn"))
    assert custom.registration()["subscriptions"][0]["url"] == "https://hooks.example/keptn"
    wildcard = make_integration(mode="push", host="0.0.0.0", port=1)
    assert wildcard.public_url == f"http://{socket.gethostname()}:1/"
