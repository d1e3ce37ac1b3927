"""A whole control plane in the test process: gateway app, worker, dev server, PostgreSQL.

Integrations in these tests answer through the public API exactly as a remote execution plane
does: they pull open ``.triggered`` events and ``POST /api/v1/event`` their answers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.registry import build_activities
from api.main import create_app
from capstan.settings import Settings
from tests.fixtures.ports import free_port
from tests.fixtures.temporal import running_worker
from workflows.context_models import CONTROL_SIGNAL, ControlRequest
from workflows.registry import ALL_WORKFLOWS

TOKEN = "stack-token"
POLL = 0.05


@dataclass
class Stack:
    """Handles on the running control plane."""

    api: httpx.AsyncClient
    client: Client
    task_queue: str
    pool: asyncpg.Pool
    project: str = field(default_factory=lambda: f"sockshop-{uuid.uuid4().hex[:8]}")
    """A project name of this stack's own: lock and context workflow ids are per project, and the
    session's dev server outlives each test's worker."""
    seen: set[str] = field(default_factory=set)
    base_url: str | None = None
    """``http://127.0.0.1:<port>`` when the stack serves its gateway on a real port (``serve=True``),
    for clients in other processes: the ``capstan`` command, a browser."""

    async def create_project(self, name: str, shipyard: str, *services: str) -> None:
        """Create a project and its services through the API."""
        body = {"name": name, "shipyard": base64.b64encode(shipyard.encode()).decode()}
        response = await self.api.post("/api/controlPlane/v1/project", json=body)
        assert response.status_code == 201, response.text
        for service in services:
            created = await self.api.post(
                f"/api/controlPlane/v1/project/{name}/service", json={"serviceName": service}
            )
            assert created.status_code == 200, created.text

    async def add_resource(self, stage: str, service: str, uri: str, content: str) -> str:
        """Store a service resource in a stage of this stack's project; return the commit id."""
        body = {
            "resources": [
                {"resourceURI": uri, "resourceContent": base64.b64encode(content.encode()).decode()}
            ]
        }
        response = await self.api.post(
            f"/api/resource-service/v1/project/{self.project}/stage/{stage}/service/{service}/resource",
            json=body,
        )
        assert response.status_code == 201, response.text
        commit: str = response.json()["commitID"]
        return commit

    async def trigger(self, project: str, stage: str, sequence: str, service: str, **data: Any) -> str:
        """Trigger a sequence as `keptn trigger` does; return the Keptn context."""
        event = {
            "type": f"sh.keptn.event.{stage}.{sequence}.triggered",
            "source": "tests",
            "data": {"project": project, "stage": stage, "service": service, **data},
        }
        response = await self.api.post("/api/v1/event", json=event)
        assert response.status_code == 200, response.text
        context: str = response.json()["keptnContext"]
        return context

    async def open_triggered(self, task: str, **filters: str) -> list[dict[str, Any]]:
        """Open ``<task>.triggered`` events, as a pull-mode integration sees them."""
        response = await self.api.get(
            f"/api/controlPlane/v1/event/triggered/sh.keptn.event.{task}.triggered", params=filters
        )
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    async def next_triggered(self, task: str, *, within: float = 20, **filters: str) -> dict[str, Any]:
        """Wait for an open ``<task>.triggered`` event this test has not handled yet."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for event in await self.open_triggered(task, **filters):
                if event["id"] not in self.seen:
                    self.seen.add(event["id"])
                    return event
            await asyncio.sleep(POLL)
        raise AssertionError(f"no {task}.triggered within {within}s ({filters})")

    async def send(self, event: dict[str, Any]) -> httpx.Response:
        """POST an event to the gateway."""
        return await self.api.post("/api/v1/event", json=event)

    async def answer(
        self,
        triggered: dict[str, Any],
        *,
        source: str = "test-integration",
        result: str = "pass",
        status: str = "succeeded",
        started: bool = True,
        finished: bool = True,
        **data: Any,
    ) -> None:
        """Answer a task as an integration: ``.started``, then ``.finished`` with ``data``."""
        task = triggered["type"].split(".")[3]
        common = {key: triggered["data"][key] for key in ("project", "stage", "service")}
        envelope = {
            "source": source,
            "triggeredid": triggered["id"],
            "shkeptncontext": triggered["shkeptncontext"],
        }
        if started:
            response = await self.send({**envelope, "type": f"sh.keptn.event.{task}.started", "data": common})
            assert response.status_code == 200, response.text
        if finished:
            body = {**common, "result": result, "status": status, **data}
            response = await self.send({**envelope, "type": f"sh.keptn.event.{task}.finished", "data": body})
            assert response.status_code == 200, response.text

    async def events(self, context: str, event_type: str | None = None) -> list[dict[str, Any]]:
        """Stored events of a context, oldest first."""
        params: dict[str, Any] = {"keptnContext": context, "pageSize": 100}
        if event_type:
            params["type"] = event_type
        response = await self.api.get("/api/mongodb-datastore/event", params=params)
        assert response.status_code == 200, response.text
        return list(reversed(response.json()["events"]))

    async def finished(
        self, context: str, stage: str, sequence: str, *, within: float = 30
    ) -> dict[str, Any]:
        """Wait for ``<stage>.<sequence>.finished`` of a context."""
        deadline = time.monotonic() + within
        event_type = f"sh.keptn.event.{stage}.{sequence}.finished"
        while time.monotonic() < deadline:
            found = await self.events(context, event_type)
            if found:
                return found[-1]
            await asyncio.sleep(POLL)
        raise AssertionError(f"{event_type} of {context} not seen within {within}s")


@asynccontextmanager
async def running_stack(
    db_url: str,
    pool: asyncpg.Pool,
    client: Client,
    *,
    started_timeout: timedelta = timedelta(minutes=10),
    finished_timeout: timedelta | None = None,
    completion: Literal["keptn", "per-source"] = "keptn",
    builtin: bool = False,
    serve: bool = False,
    **more_settings: Any,
) -> AsyncIterator[Stack]:
    """Run a gateway and a worker on a task queue of their own until the block ends.

    The built-in services (lighthouse, approval, remediation) are off unless ``builtin`` asks for
    them: the sequence tests answer ``evaluation`` and ``approval`` tasks themselves, as external
    integrations would. With ``serve``, the gateway also listens on a free loopback port
    (``Stack.base_url``). ``more_settings`` are further ``Settings`` fields.
    """
    queue = f"stack-{uuid.uuid4()}"
    settings = Settings(
        database_url=db_url,
        api_token=TOKEN,
        temporal_address=client.service_client.config.target_host,
        temporal_task_queue=queue,
        task_started_wait_duration=started_timeout,
        task_finished_timeout=finished_timeout,
        task_completion=completion,
        **{
            "lighthouse_enabled": builtin,
            "approval_service_enabled": builtin,
            "remediation_service_enabled": builtin,
            **more_settings,
        },
    )
    app = create_app(settings)
    watchdog: asyncio.Task[None] | None = None
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient() as http:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://test", headers={"x-token": TOKEN}
            ) as api:
                worker = Worker(
                    client,
                    task_queue=queue,
                    workflows=ALL_WORKFLOWS,
                    activities=build_activities(
                        pool, http, client=client, task_queue=queue, settings=settings
                    ),
                )
                async with running_worker(worker, queue), _serving(app, serve) as base_url:
                    try:
                        yield Stack(api=api, client=client, task_queue=queue, pool=pool, base_url=base_url)
                    finally:
                        watchdog = asyncio.create_task(_report_slow_stop(queue))
                        await terminate_open_workflows(client, queue)
    finally:
        if watchdog is not None:
            watchdog.cancel()


SLOW_STOP = 30.0
"""Seconds after which a stack that is still stopping prints what it waits for."""


async def _report_slow_stop(queue: str) -> None:
    """Print every pending asyncio task's stack if the stack is still stopping after SLOW_STOP s.

    A stop that hangs otherwise shows only pytest-timeout's thread dump, where the event loop sits
    idle in select(); the task stacks say which await never returns.
    """
    await asyncio.sleep(SLOW_STOP)
    print(f"stack {queue} still stopping after {SLOW_STOP:.0f} s; pending tasks:")  # noqa: T201
    for task in asyncio.all_tasks():
        task.print_stack(file=sys.stdout)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the test runner owns the signals


@asynccontextmanager
async def _serving(app: FastAPI, serve: bool) -> AsyncIterator[str | None]:
    """Serve ``app`` (lifespan already running) on a free loopback port while the block runs."""
    if not serve:
        yield None
        return
    port = free_port()
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False)
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "the gateway stopped while starting"
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        # Open server-sent-event streams (the Bridge) would hold a graceful shutdown forever.
        server.force_exit = True
        await asyncio.wait_for(serving, 10)


async def terminate_open_workflows(client: Client, task_queue: str) -> None:
    """End what a test left running, cleanly, while its worker still runs.

    Sequences a test left unanswered are aborted (the context workflows then end on their own);
    idle lock workflows, which linger a minute, are terminated. Stopping a worker with workflows
    still open in its cache would leave their coroutines to the garbage collector.
    """
    running = f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(running):
        if execution.id.startswith("keptn-"):
            with contextlib.suppress(RPCError):
                await client.get_workflow_handle(execution.id).signal(
                    CONTROL_SIGNAL, ControlRequest(state="abort")
                )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        ids = [execution.id async for execution in client.list_workflows(running)]
        if not any(workflow_id.startswith("keptn-") for workflow_id in ids):
            break
        await asyncio.sleep(POLL)
    async for execution in client.list_workflows(running):
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(execution.id, run_id=execution.run_id).terminate("test finished")
