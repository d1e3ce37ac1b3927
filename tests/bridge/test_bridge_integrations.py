"""The integrations page: registered integrations, their subscriptions and heartbeat."""

from __future__ import annotations

import asyncpg
from temporalio.testing import WorkflowEnvironment

from api.bridge.integrations import ago
from tests.bridge.helpers import browser, create_token, login, testids
from tests.bridge.stack_helpers import bridge_stack

REGISTRATION = "/api/controlPlane/v1/uniform/registration"


def test_heartbeat_ages_read_naturally():
    assert [ago(s) for s in (-1, 5.9, 61, 7200, 3 * 86400)] == [
        "0 s ago",
        "5 s ago",
        "1 min ago",
        "2 h ago",
        "3 d ago",
    ]


async def test_integrations_page_lists_registrations_with_heartbeat(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
):
    async with bridge_stack(db_url, pool, temporal_env.client) as (stack, page):
        body = {
            "name": "helm-service",
            "metadata": {
                "hostname": "node-1",
                "integrationversion": "1.4.5",
                "distributorversion": "1.4.5",
                "location": "remote-execution-plane",
                "kubernetesmetadata": {"namespace": "keptn", "podname": "helm-abc", "deploymentname": "helm"},
            },
            "subscriptions": [
                {"event": "sh.keptn.event.deployment.triggered", "filter": {"projects": [stack.project]}},
                {"event": "sh.keptn.event.release.triggered"},
            ],
        }
        registered = await stack.api.post(REGISTRATION, json=body)
        assert registered.status_code == 201, registered.text

        response = await page.get("/integrations")
        assert response.status_code == 200
        rows = {row["data-name"]: row for row in testids(response.text, "integration-row")}
        assert "helm-service" in rows
        row = rows["helm-service"]
        assert row["data-id"] == registered.json()["id"]
        for text in ("1.4.5", "remote-execution-plane", "node-1", "sh.keptn.event.deployment.triggered"):
            assert text in row["text"], text
        assert f"projects {stack.project}" in row["text"] and "all projects" in row["text"]
        helm = response.text.split('data-name="helm-service"', 1)[1].split("</tr>", 1)[0]
        [alive] = testids(helm, "integration-alive")
        [heartbeat] = testids(helm, "heartbeat")
        assert alive["text"] == "alive" and heartbeat["text"].endswith(" s ago")
        assert 'aria-current="page"' in response.text.split('href="/integrations"', 1)[1][:40]

        token = await create_token(stack.api, "own", ["integrations:read"], project=stack.project)
        async with browser(stack.api) as restricted:
            await login(restricted, token)
            refused = await restricted.get("/integrations")
            assert refused.status_code == 403 and "restricted" in refused.text
