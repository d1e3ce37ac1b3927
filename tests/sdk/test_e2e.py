"""The echo example as a separate process against the real control plane (gateway + worker).

The gateway is served by uvicorn on a free loopback port inside the test process, on the test's
own database; the worker runs Capstan's workflows on a task queue of its own against the
session's Temporal dev server. The integration talks to them only through the public API.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.registry import build_activities
from api.main import create_app
from capstan.sdk._push import PushServer
from capstan.settings import Settings
from tests.fixtures.temporal import running_worker
from tests.workflows.stack import terminate_open_workflows
from workflows.registry import ALL_WORKFLOWS

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "sdk-e2e-token"
SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: shipyard-sdk}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks:
            - name: deployment
              properties: {deploymentstrategy: direct}
"""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@dataclass
class ControlPlane:
    api_url: str
    http: httpx.AsyncClient


@pytest.fixture
async def control_plane(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
) -> AsyncIterator[ControlPlane]:
    client = temporal_env.client
    queue = f"sdk-e2e-{uuid.uuid4()}"
    settings = Settings(
        database_url=db_url,
        api_token=TOKEN,
        temporal_address=client.service_client.config.target_host,
        temporal_task_queue=queue,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient() as outbound:
        server = PushServer(app, host="127.0.0.1", port=0)
        await server.start()
        worker = Worker(
            client,
            task_queue=queue,
            workflows=ALL_WORKFLOWS,
            activities=build_activities(pool, outbound, client=client, task_queue=queue),
        )
        api_url = f"http://127.0.0.1:{server.port}/api"
        try:
            async with (
                running_worker(worker, queue),
                httpx.AsyncClient(base_url=api_url, headers={"x-token": TOKEN}) as http,
            ):
                try:
                    yield ControlPlane(api_url, http)
                finally:
                    await terminate_open_workflows(client, queue)
        finally:
            await server.stop()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start_echo(api_url: str, name: str, *extra: str) -> subprocess.Popen[str]:
    argv = [
        sys.executable, "-m", "capstan.sdk.examples.echo",
        "--task", "deployment",
        "--api-url", api_url,
        "--token", TOKEN,
        "--name", name,
        "--mode", "pull",
        "--poll-interval", "0.1",
        "--heartbeat-interval", "1",
        *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


async def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:  # wait in a thread: the gateway lives in this loop and must keep serving
        await asyncio.to_thread(proc.wait, 20)
    except subprocess.TimeoutExpired:
        proc.kill()
    return proc.wait(), proc.communicate()[0]


async def eventually(probe, what: str, *, within: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_the_echo_process_registers_with_the_real_control_plane(control_plane, processes):
    name = f"echo-{uuid.uuid4().hex[:8]}"
    proc = start_echo(control_plane.api_url, name, "--project", "sockshop")
    processes.append(proc)

    async def registered() -> list[dict[str, Any]]:
        response = await control_plane.http.get(
            "/controlPlane/v1/uniform/registration", params={"name": name}
        )
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found

    [integration] = await eventually(registered, "the registration")
    assert integration["metadata"]["location"] == "remote-execution-plane"
    assert integration["metadata"]["distributorversion"] == "capstan-sdk"
    [subscription] = integration["subscriptions"]
    assert subscription["event"] == "sh.keptn.event.deployment.triggered"
    assert subscription["filter"]["projects"] == ["sockshop"]
    assert subscription["id"]
    code, output = await stop(proc)
    assert code == 0, output


async def test_a_sequence_task_is_answered_by_the_echo_process(control_plane, processes):
    http = control_plane.http
    project = f"sdk-{uuid.uuid4().hex[:8]}"
    shipyard = base64.b64encode(SHIPYARD.encode()).decode()
    created = await http.post("/controlPlane/v1/project", json={"name": project, "shipyard": shipyard})
    assert created.status_code == 201, created.text
    service = await http.post(f"/controlPlane/v1/project/{project}/service", json={"serviceName": "carts"})
    assert service.status_code == 200, service.text

    name = f"echo-{uuid.uuid4().hex[:8]}"
    proc = start_echo(control_plane.api_url, name, "--project", project)
    processes.append(proc)
    trigger = {
        "type": "sh.keptn.event.dev.delivery.triggered",
        "source": "sdk-e2e",
        "data": {"project": project, "stage": "dev", "service": "carts", "labels": {"run": "e2e"}},
    }
    accepted = await http.post("/v1/event", json=trigger)
    assert accepted.status_code == 200, accepted.text
    context = accepted.json()["keptnContext"]

    async def events() -> list[dict[str, Any]]:
        response = await http.get(
            "/mongodb-datastore/event", params={"keptnContext": context, "project": project, "pageSize": 100}
        )
        assert response.status_code == 200, response.text
        return list(reversed(response.json()["events"]))

    async def sequence_finished() -> list[dict[str, Any]]:
        found = await events()
        return found if any(e["type"] == "sh.keptn.event.dev.delivery.finished" for e in found) else []

    stored = await eventually(sequence_finished, "dev.delivery.finished", within=60)
    by_type = {e["type"]: e for e in stored}
    triggered = by_type["sh.keptn.event.deployment.triggered"]
    started = by_type["sh.keptn.event.deployment.started"]
    finished = by_type["sh.keptn.event.deployment.finished"]
    assert started["source"] == finished["source"] == name
    assert started["triggeredid"] == finished["triggeredid"] == triggered["id"]
    assert finished["data"]["deployment"]["echo"] == {
        "by": name,
        "project": project,
        "stage": "dev",
        "service": "carts",
    }
    assert finished["data"]["labels"] == {"run": "e2e"}
    sequence = by_type["sh.keptn.event.dev.delivery.finished"]
    assert (sequence["data"]["result"], sequence["data"]["status"]) == ("pass", "succeeded")
    code, output = await stop(proc)
    assert code == 0, output
