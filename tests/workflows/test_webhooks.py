"""The built-in webhook service through the real stack: subscriptions, templates, secrets, safety.

Webhooks are configured as in Keptn: a subscription of the ``webhook-service`` integration
(uniform API) and a ``webhook/webhook.yaml`` entry with that ``subscriptionID``; secrets come from
the secret API (scope ``keptn-webhook-service``). The receiver is a real HTTP server on loopback,
allowed through the deny-list by ``CAPSTAN_WEBHOOK_ALLOW_LIST``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from temporalio.testing import WorkflowEnvironment

from tests.fixtures.receiver import Receiver
from tests.workflows.stack import Stack, running_stack

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: hooks}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: release}]
"""

SECRET_VALUE = "s3cr3t-t0ken-value-471"
UNIFORM = "/api/controlPlane/v1/uniform/registration"
PAYLOAD = '{"text": "deploy {{.data.project}}/{{.data.service}} in {{.data.stage}}", "id": "{{.id}}"}'
"""A JSON payload template with Keptn's placeholders."""


@pytest_asyncio.fixture
async def stack(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment, receiver: Receiver
) -> AsyncIterator[Stack]:
    port = receiver.url.split(":")[-1].split("/")[0]
    async with running_stack(
        db_url,
        pool,
        temporal_env.client,
        builtin=True,
        secret_key=Fernet.generate_key().decode(),
        webhook_allow_list=f"127.0.0.1:{port}",
    ) as running:
        await running.create_project(running.project, SHIPYARD, "carts")
        created = await running.api.post(
            "/api/secrets/v1/secret",
            json={"name": "slack", "scope": "keptn-webhook-service", "data": {"token": SECRET_VALUE}},
        )
        assert created.status_code == 201, created.text
        yield running


async def subscribe(stack: Stack, event: str) -> str:
    """A subscription of the built-in webhook-service, as the Bridge created one."""
    listed = await stack.api.get(UNIFORM, params={"name": "webhook-service"})
    assert listed.status_code == 200, listed.text
    (integration,) = listed.json()
    created = await stack.api.post(
        f"{UNIFORM}/{integration['id']}/subscription",
        json={"event": event, "filter": {"projects": [stack.project]}},
    )
    assert created.status_code in (200, 201), created.text
    subscription: str = created.json()["id"]
    return subscription


def webhook_yaml(subscription: str, event: str, url: str, *, send_finished: bool = True) -> str:
    return f"""apiVersion: webhookconfig.keptn.sh/v1beta1
kind: WebhookConfig
metadata: {{name: webhook-configuration}}
spec:
  webhooks:
    - type: {event}
      subscriptionID: "{subscription}"
      sendFinished: {str(send_finished).lower()}
      envFrom:
        - name: token
          secretRef: {{name: slack, key: token}}
      requests:
        - url: "{url}"
          method: POST
          headers:
            - {{key: Content-Type, value: application/json}}
            - {{key: Authorization, value: "Bearer {{{{.env.token}}}}"}}
          payload: '{PAYLOAD}'
"""


async def add_webhook_file(stack: Stack, content: str) -> None:
    body = {"resources": [{"resourceURI": "webhook/webhook.yaml", "resourceContent": _b64(content)}]}
    response = await stack.api.post(f"/api/resource-service/v1/project/{stack.project}/resource", json=body)
    assert response.status_code == 201, response.text


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


async def test_a_webhook_calls_the_receiver_with_a_templated_payload_and_a_secret(
    stack: Stack, receiver: Receiver, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
):
    caplog.set_level(logging.DEBUG)
    event = "sh.keptn.event.deployment.triggered"
    subscription = await subscribe(stack, event)
    await add_webhook_file(stack, webhook_yaml(subscription, event, receiver.url))
    context = await stack.trigger(stack.project, "dev", "delivery", "carts")

    await stack.answer(await stack.next_triggered("release", project=stack.project))
    finished = await stack.finished(context, "dev", "delivery")
    assert finished["data"]["result"] == "pass"
    (request,) = receiver.requests
    assert request["headers"]["Authorization"] == f"Bearer {SECRET_VALUE}"
    triggered = (await stack.events(context, event))[0]
    assert json.loads(request["body"]) == {
        "text": f"deploy {stack.project}/carts in dev",
        "id": triggered["id"],
    }
    answers = await stack.events(context, "sh.keptn.event.deployment.finished")
    assert [a["source"] for a in answers] == ["webhook-service"]
    assert answers[0]["data"]["deployment"] == {"responses": ["ok"]}

    # the secret's value appears nowhere: not in the stored events, API answers or log lines
    everything = json.dumps(await stack.events(context)) + json.dumps(
        (await stack.api.get("/api/secrets/v1/secret")).json()
    )
    assert SECRET_VALUE not in everything
    assert SECRET_VALUE not in caplog.text
    out, err = capfd.readouterr()
    assert SECRET_VALUE not in out + err


async def test_a_failing_webhook_fails_its_task(stack: Stack, receiver: Receiver):
    receiver.status = 500
    event = "sh.keptn.event.deployment.triggered"
    subscription = await subscribe(stack, event)
    await add_webhook_file(stack, webhook_yaml(subscription, event, receiver.url))
    context = await stack.trigger(stack.project, "dev", "delivery", "carts")
    finished = await stack.finished(context, "dev", "delivery")
    assert (finished["data"]["result"], finished["data"]["status"]) == ("fail", "errored")
    (answer,) = await stack.events(context, "sh.keptn.event.deployment.finished")
    assert "HTTP 500" in answer["data"]["message"]
    assert await stack.open_triggered("release", project=stack.project) == []


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
async def test_a_denied_url_is_refused_with_a_clear_message(stack: Stack, receiver: Receiver, host: str):
    event = "sh.keptn.event.deployment.triggered"
    subscription = await subscribe(stack, event)
    # the receiver's own address, but on another port than the allowed one (or by name)
    port = int(receiver.url.split(":")[-1].split("/")[0])
    url = f"http://{host}:{port + 1 if host == '127.0.0.1' else port}/events"
    await add_webhook_file(stack, webhook_yaml(subscription, event, url))
    context = await stack.trigger(stack.project, "dev", "delivery", "carts")
    finished = await stack.finished(context, "dev", "delivery")
    assert finished["data"]["result"] == "fail"
    (answer,) = await stack.events(context, "sh.keptn.event.deployment.finished")
    message = answer["data"]["message"]
    assert "is denied" in message and "loopback" in message, message
    assert receiver.requests == []


async def test_a_failing_notification_only_logs(stack: Stack, receiver: Receiver):
    receiver.status = 500
    event = "sh.keptn.event.dev.delivery.finished"
    subscription = await subscribe(stack, event)
    await add_webhook_file(stack, webhook_yaml(subscription, event, receiver.url))
    context = await stack.trigger(stack.project, "dev", "delivery", "carts")
    await stack.answer(await stack.next_triggered("deployment", project=stack.project))
    await stack.answer(await stack.next_triggered("release", project=stack.project))
    finished = await stack.finished(context, "dev", "delivery")
    assert finished["data"]["result"] == "pass"
    await _eventually(lambda: len(receiver.requests) == 1)


async def _eventually(probe: Any, within: float = 10) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + within
    while not probe():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
