"""Helpers of the misbehaving-integration tests: answers, execution state, and a pausable worker.

The pausable stack is the test stack with a worker that can be stopped and started again while
the gateway runs. While no worker runs, the Temporal server keeps the signals the gateway
delivers; the next worker's first workflow task then gets all of them in one activation. That is
how answers that "arrive together" are made to, deterministically.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Worker

from activities.registry import build_activities
from api.main import create_app
from capstan.settings import Settings
from tests.workflows.stack import TOKEN, Stack, terminate_open_workflows
from workflows.context import COMPLETE_TASK_PATCH
from workflows.registry import ALL_WORKFLOWS

SLACK = 15.0
"""Seconds of real time a timeout may be late on a busy 2-core machine before a test calls it a hang."""


@dataclass
class WorkerSwitch:
    """Stops and starts the stack's worker."""

    make: Callable[[], Worker]
    _worker: Worker | None = None

    async def start(self) -> None:
        """Start a fresh worker on the stack's task queue."""
        assert self._worker is None
        self._worker = self.make()
        await self._worker.__aenter__()

    @property
    def running(self) -> bool:
        """Whether a worker runs."""
        return self._worker is not None

    async def stop(self) -> None:
        """Stop the worker; open workflows wait in the server until the next one starts."""
        assert self._worker is not None
        worker, self._worker = self._worker, None
        await worker.__aexit__(None, None, None)


@asynccontextmanager
async def pausable_stack(
    db_url: str,
    pool: asyncpg.Pool,
    client: Client,
    *,
    started_timeout: timedelta,
    finished_timeout: timedelta,
) -> AsyncIterator[tuple[Stack, WorkerSwitch]]:
    """A gateway (in-process, ASGI) and a worker the test can stop and start."""
    queue = f"stack-{uuid.uuid4()}"
    settings = Settings(
        database_url=db_url,
        api_token=TOKEN,
        temporal_address=client.service_client.config.target_host,
        temporal_task_queue=queue,
        task_started_wait_duration=started_timeout,
        task_finished_timeout=finished_timeout,
        lighthouse_enabled=False,
        approval_service_enabled=False,
        remediation_service_enabled=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient() as http:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers={"x-token": TOKEN}
        ) as api:
            switch = WorkerSwitch(
                lambda: Worker(
                    client,
                    task_queue=queue,
                    workflows=ALL_WORKFLOWS,
                    activities=build_activities(
                        pool, http, client=client, task_queue=queue, settings=settings
                    ),
                )
            )
            await switch.start()
            try:
                yield Stack(api=api, client=client, task_queue=queue, pool=pool), switch
            finally:
                if not switch.running:
                    await switch.start()
                await terminate_open_workflows(client, queue)
                await switch.stop()


def answer_event(
    triggered: dict[str, Any], kind: str, *, source: str = "helm", **data: Any
) -> dict[str, Any]:
    """A ``.started``/``.finished`` answer to ``triggered`` with a fresh id."""
    task = triggered["type"].split(".")[3]
    body = {key: triggered["data"][key] for key in ("project", "stage", "service")}
    if kind == "finished":
        body.update(result="pass", status="succeeded")
    body.update(data)
    return {
        "id": str(uuid.uuid4()),
        "type": f"sh.keptn.event.{task}.{kind}",
        "source": source,
        "triggeredid": triggered["id"],
        "shkeptncontext": triggered["shkeptncontext"],
        "data": body,
    }


async def accepted(stack: Stack, event: dict[str, Any]) -> None:
    """Send an answer; the gateway must store it and answer 200 with its context."""
    response = await stack.send(event)
    assert response.status_code == 200, response.text
    assert response.json() == {"keptnContext": event["shkeptncontext"]}


async def execution(stack: Stack, context: str, state: str, *, within: float = SLACK) -> dict[str, Any]:
    """Wait until the context's (only) dev execution is in ``state``; return it."""
    deadline = time.monotonic() + within
    seen = None
    while time.monotonic() < deadline:
        response = await stack.api.get(
            "/api/controlPlane/v1/sequence-execution",
            params={"project": stack.project, "keptnContext": context, "stage": "dev"},
        )
        assert response.status_code == 200, response.text
        [found] = response.json()["SequenceExecutions"] or [None]
        seen = found and found["status"]["state"]
        if seen == state:
            assert found is not None
            return dict(found)
        await asyncio.sleep(0.05)
    raise AssertionError(f"execution of {context} is {seen!r}, not {state!r}, after {within}s")


async def task_events(stack: Stack, context: str, number: int) -> None:
    """Wait until the execution's current task shows ``number`` answers."""
    deadline = time.monotonic() + SLACK
    while time.monotonic() < deadline:
        current = (await execution(stack, context, "started"))["status"]["currentTask"]
        if len(current["events"]) >= number:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the current task of {context} never showed {number} answers")


def patched(history: WorkflowHistory) -> bool:
    """Whether the context recorded the completed-task patch (it ignored an answer to a completed task)."""
    return any(
        COMPLETE_TASK_PATCH.encode() in payload.data
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        for details in event.marker_recorded_event_attributes.details.values()
        for payload in details.payloads
    )
