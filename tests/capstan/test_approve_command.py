"""``capstan approve`` as a real process against a real gateway (uvicorn on a port) and worker.

The approval task is opened by the control plane after an integration answered ``deployment``;
the command lists it and posts ``approval.finished`` through the public API. Keptn's counting
needs the approval service's ``.started`` too: the built-in one sends it; in a tree without it,
the test sends it as Keptn's approval-service would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
import uvicorn
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.registry import build_activities
from api.main import create_app
from capstan.commands.approve import approval_finished_event, parse_approval
from capstan.settings import Settings
from tests.capstan.cli_runner import CAPSTAN as CAPSTAN_COMMAND
from tests.capstan.cli_runner import Run, one_error_line
from tests.fixtures.ports import free_port
from tests.fixtures.temporal import running_worker
from tests.workflows.stack import Stack, terminate_open_workflows
from workflows.registry import ALL_WORKFLOWS

TOKEN = "approve-token"
SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: shipyard-approve}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks:
            - name: deployment
            - name: approval
              properties: {pass: manual, warning: manual}
            - name: release
"""

pytestmark = pytest.mark.timeout(90)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the test runner owns the signals


@dataclass
class Gateway:
    stack: Stack
    api_url: str
    builtin_approval: bool
    """Whether the control plane's own approval service answers (on by default where it exists)."""

    @property
    def project(self) -> str:
        return self.stack.project


@pytest_asyncio.fixture
async def gateway(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
) -> AsyncIterator[Gateway]:
    """Gateway on a real loopback port plus a worker, with a project of services carts and orders."""
    client = temporal_env.client
    queue = f"approve-{uuid.uuid4()}"
    settings = Settings(
        database_url=db_url,
        api_token=TOKEN,
        temporal_address=client.service_client.config.target_host,
        temporal_task_queue=queue,
        lighthouse_enabled=False,
    )
    app = create_app(settings)
    port = free_port()
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False)
    )
    async with app.router.lifespan_context(app), httpx.AsyncClient() as outbound:
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:
                assert not serving.done(), "the gateway stopped while starting"
                await asyncio.sleep(0.01)
            worker = Worker(
                client,
                task_queue=queue,
                workflows=ALL_WORKFLOWS,
                activities=build_activities(
                    pool, outbound, client=client, task_queue=queue, settings=settings
                ),
            )
            base = f"http://127.0.0.1:{port}"
            async with (
                running_worker(worker, queue),
                httpx.AsyncClient(base_url=base, headers={"x-token": TOKEN}) as api,
            ):
                stack = Stack(api=api, client=client, task_queue=queue, pool=pool)
                await stack.create_project(stack.project, SHIPYARD, "carts", "orders")
                try:
                    builtin = bool(getattr(settings, "approval_service_enabled", False))
                    yield Gateway(stack, f"{base}/api", builtin)
                finally:
                    await terminate_open_workflows(client, queue)
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, 10)


async def capstan(
    api_url: str, *args: str, token: str | None = TOKEN, stdin: int | None = None, **env: str
) -> Run:
    """Run ``capstan approve <args>`` as a process (stdin not a terminal unless given)."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("CAPSTAN_")}
    environ.update(CAPSTAN_API_URL=api_url, USER="tester", **env)
    environ.pop("COLUMNS", None)
    if token is not None:
        environ["CAPSTAN_API_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(
        CAPSTAN_COMMAND,
        "approve",
        *args,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def open_approval(gateway: Gateway, service: str, image: str) -> dict[str, Any]:
    """Trigger dev.delivery for a service, deploy it, and return its open approval.triggered."""
    stack = gateway.stack
    await stack.trigger(
        stack.project,
        "dev",
        "delivery",
        service,
        configurationChange={"values": {"image": image}},
        labels={"buildId": f"{service}-42"},
    )
    deployment = await stack.next_triggered("deployment", project=stack.project, service=service)
    await stack.answer(deployment, source="helm-service")
    approval = await stack.next_triggered("approval", project=stack.project, service=service)
    context = approval["shkeptncontext"]
    if gateway.builtin_approval:  # the approval service says .started itself
        deadline = time.monotonic() + 15
        while not await stack.events(context, "sh.keptn.event.approval.started"):
            assert time.monotonic() < deadline, "the approval service sent no approval.started"
            await asyncio.sleep(0.05)
    else:  # stand in for it
        await stack.answer(approval, source="approval-service", finished=False)
    return approval


async def sequence_finished(stack: Stack, context: str) -> dict[str, Any]:
    return await stack.finished(context, "dev", "delivery")


async def test_lists_then_approves_and_declines_through_the_api(gateway: Gateway):
    stack, project, url = gateway.stack, gateway.project, gateway.api_url
    carts = await open_approval(gateway, "carts", "docker.io/keptnexamples/carts:0.13.1")
    orders = await open_approval(gateway, "orders", "docker.io/keptnexamples/orders:0.2.0")

    listed = await capstan(url, "--project", project, "--list", "--output", "json")
    assert listed.code == 0, listed.stderr
    by_service = {entry["service"]: entry for entry in listed.json()}
    assert by_service["carts"] == {
        "id": carts["id"],
        "keptnContext": carts["shkeptncontext"],
        "stage": "dev",
        "service": "carts",
        "time": carts["time"],
        "image": "docker.io/keptnexamples/carts:0.13.1",
        "evaluation": None,
        "result": "pass",
    }
    assert by_service["orders"]["id"] == orders["id"]

    table = await capstan(url, "-p", project, "--list")
    assert table.code == 0, table.stderr
    assert carts["id"] in table.stdout and orders["id"] in table.stdout
    assert "docker.io/keptnexamples/orders:0.2.0" in table.stdout

    several = await capstan(url, "-p", project, "--yes")
    assert "several open approvals (2)" in one_error_line(several)
    assert "pass --id" in several.stderr
    assert carts["id"] in several.stdout  # the list to choose from

    # approve the only open approval of carts: the sequence goes on to release
    approved = await capstan(url, "-p", project, "--service", "carts", "--yes", "--user", "alice", "-m", "ok")
    assert approved.code == 0, approved.stderr
    assert approved.stdout.strip() == f"approved {carts['id']} ({project}/dev/carts)"
    release = await stack.next_triggered("release", project=project, service="carts")
    assert release["shkeptncontext"] == carts["shkeptncontext"]
    [finished] = await stack.events(carts["shkeptncontext"], "sh.keptn.event.approval.finished")
    assert finished["source"] == "capstan-cli"
    assert finished["triggeredid"] == carts["id"]
    assert finished["data"]["result"] == "pass" and finished["data"]["status"] == "succeeded"
    assert finished["data"]["labels"] == {"buildId": "carts-42"}
    assert finished["data"]["approval"] == {"user": "alice", "approved": True, "message": "ok"}
    [started] = await stack.events(carts["shkeptncontext"], "sh.keptn.event.approval.started")
    assert started["source"] == "approval-service"  # Keptn's counting: its .started + our .finished

    # decline orders by id: the sequence ends with result fail, release never comes
    declined = await capstan(url, "-p", project, "--id", orders["id"], "--decline", "--output", "json")
    assert declined.code == 0, declined.stderr
    assert declined.json() == {
        "triggeredid": orders["id"],
        "result": "fail",
        "keptnContext": orders["shkeptncontext"],
    }
    done = await sequence_finished(stack, orders["shkeptncontext"])
    assert done["data"]["result"] == "fail"
    assert await stack.open_triggered("release", project=project, service="orders") == []
    [finished] = await stack.events(orders["shkeptncontext"], "sh.keptn.event.approval.finished")
    assert finished["data"]["approval"] == {"user": "tester", "approved": False, "message": ""}

    # nothing left to decide
    empty = await capstan(url, "-p", project, "--list")
    assert empty.code == 0 and empty.stdout.strip() == f"no open approval in project {project}"
    assert (await capstan(url, "-p", project, "--list", "-o", "json")).json() == []
    nothing = await capstan(url, "-p", project, "--yes")
    assert one_error_line(nothing) == f"error: no open approval in project {project}"
    gone = await capstan(url, "-p", project, "--id", orders["id"])
    assert one_error_line(gone) == f"error: no open approval {orders['id']} in project {project}"


async def test_asks_on_a_terminal_and_needs_yes_without_one(gateway: Gateway):
    stack, project, url = gateway.stack, gateway.project, gateway.api_url
    await open_approval(gateway, "carts", "carts:1")

    unattended = await capstan(url, "-p", project, "--service", "carts")  # one open, no --yes, no tty
    assert "pass --yes" in one_error_line(unattended)

    await open_approval(gateway, "orders", "orders:1")
    listed = (await capstan(url, "-p", project, "--list", "-o", "json")).json()
    second = listed[1]
    primary, secondary = os.openpty()
    try:
        os.write(primary, b"3\n2\nmaybe\nd\n")  # out of range, the second one, unclear, decline
        asked = await capstan(url, "-p", project, stdin=secondary)
    finally:
        os.close(secondary)
        os.close(primary)
    assert asked.code == 0, asked.stderr
    assert "which approval (1-2)" in asked.stderr and "(a)pprove or (d)ecline" in asked.stderr
    assert "please answer one of: 1, 2" in asked.stderr
    assert listed[0]["id"] in asked.stdout and second["id"] in asked.stdout  # the table
    scope = f"{project}/dev/{second['service']}"
    assert asked.stdout.strip().endswith(f"declined {second['id']} ({scope})")
    assert (await sequence_finished(stack, second["keptnContext"]))["data"]["result"] == "fail"


async def test_api_errors_are_one_line(gateway: Gateway, tmp_path: Path):
    url = gateway.api_url
    bad_token = await capstan(url, "-p", gateway.project, "--list", token="wrong")
    assert one_error_line(bad_token) == "error: invalid API token in x-token header (HTTP 401)"

    unknown = await capstan(url, "-p", "no-such-project", "--list")
    line = one_error_line(unknown)
    assert "no-such-project" in line and "(HTTP 404)" in line

    no_token = await capstan(url, "-p", gateway.project, "--list", token=None, CAPSTAN_DATA_DIR=str(tmp_path))
    assert "no API token" in one_error_line(no_token)

    (tmp_path / "api-token").write_text(TOKEN + "\n")
    from_file = await capstan(
        url, "-p", gateway.project, "--list", token=None, CAPSTAN_DATA_DIR=str(tmp_path)
    )
    assert from_file.code == 0, from_file.stderr


async def test_unreachable_api_is_one_line():
    url = f"http://127.0.0.1:{free_port()}/api"
    run = await capstan(url, "-p", "sockshop", "--list")
    assert one_error_line(run).startswith(f"error: cannot reach the Capstan API at {url}: ")


def test_approval_shows_image_evaluation_and_result():
    event = {
        "id": "t-1",
        "shkeptncontext": "ctx-1",
        "time": "2024-05-01T10:00:00.000Z",
        "type": "sh.keptn.event.approval.triggered",
        "data": {
            "project": "sockshop",
            "stage": "staging",
            "service": "carts",
            "labels": {"owner": "team-a"},
            "result": "warning",
            "configurationChange": {"values": {"image": "carts:2"}},
            "evaluation": {"score": 87.5, "result": "warning"},
        },
    }
    approval = parse_approval(event)
    assert approval.listed() == {
        "id": "t-1",
        "keptnContext": "ctx-1",
        "stage": "staging",
        "service": "carts",
        "time": "2024-05-01T10:00:00.000Z",
        "image": "carts:2",
        "evaluation": {"result": "warning", "score": 87.5},
        "result": "warning",
    }
    sent = approval_finished_event(approval, approved=False, user="bob", message="too slow")
    assert sent == {
        "type": "sh.keptn.event.approval.finished",
        "specversion": "1.0",
        "source": "capstan-cli",
        "contenttype": "application/json",
        "triggeredid": "t-1",
        "shkeptncontext": "ctx-1",
        "data": {
            "project": "sockshop",
            "stage": "staging",
            "service": "carts",
            "labels": {"owner": "team-a"},
            "status": "succeeded",
            "result": "fail",
            "message": "too slow",
            "approval": {"user": "bob", "approved": False, "message": "too slow"},
        },
    }
