"""A control plane on the time-skipping test server, for tests of timeouts and timers.

The context workflow runs with the real activities on a real PostgreSQL (all but the queue lock's
holder watch, see :func:`holder_not_watched`); only the clock is virtual: ``env.sleep`` skips
time, so a 10-minute Keptn timeout or 30 days of waiting take milliseconds. Events are stored and
routed exactly as the gateway does (``ingest_event``, then ``route_event``). The test server does
not skip time while a workflow task or an activity is pending, so ``env.sleep`` also waits until
the workflows have handled everything sent before it. Answers are sent well away from any timer's
expiry: the test server corrupts a workflow's state when a timer fires while the workflow task that
cancels it is running ("Already open activity ...", and the workflow hangs).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.registry import build_activities
from api.ingest import ingest_event
from api.routes.projects import shipyard_update
from api.routing import route_event
from capstan.settings import Settings
from capstan.temporal import SEARCH_ATTRIBUTES
from keptn.events import IncomingEvent, parse_keptn_time
from store import events as event_store
from store import open_events
from store import projects as project_store
from store import sequences as execution_store
from tests.fixtures.temporal import _binary, running_worker
from workflows.context_models import CONTROL_SIGNAL, ContextResult, ControlRequest, context_workflow_id
from workflows.queue_lock_models import WATCH_HOLDER_ACTIVITY, HolderClosed, HolderWatch, lock_workflow_id
from workflows.registry import ALL_WORKFLOWS

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: timeouts}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}]
        - name: single
          tasks: [{name: deployment}]
        - name: pair
          tasks: [{name: deployment}, {name: test}]
        - name: bounded
          tasks: [{name: deployment, properties: {timeout: 5m}}]
        - name: delayed
          tasks: [{name: deployment}, {name: test, triggeredAfter: 10m}]
        - name: gated
          tasks:
            - {name: approval, properties: {pass: manual, timeout: 1h, onTimeout: pass}}
            - {name: release}
        - name: gated-strict
          tasks:
            - {name: approval, properties: {pass: manual, timeout: 2h}}
            - {name: release}
    - name: prod
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}]
        - name: rollback
          triggeredOn:
            - event: dev.delivery.finished
              selector: {match: {result: fail}}
          tasks: [{name: rollback}]
"""

STARTED_TIMEOUT = (
    "sequence timed out while waiting for task sh.keptn.event.{task}.triggered to receive a "
    "correlating .started or .finished event"
)
FINISHED_TIMEOUT = (
    "sequence timed out after {after} while waiting for task sh.keptn.event.{task}.triggered to "
    "receive a .finished event from every integration that started it"
)
SERVICES = ("carts", "orders")
POLL = 0.02
WITHIN = 10.0  # seconds of real time anything may take here


@pytest_asyncio.fixture(scope="module")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Java time-skipping test server, with Capstan's search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server"), data_converter=pydantic_data_converter
    )
    attributes = dict.fromkeys(SEARCH_ATTRIBUTES, IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD)
    request = AddSearchAttributesRequest(namespace="default", search_attributes=attributes)
    await env.client.operator_service.add_search_attributes(request)
    yield env
    await env.shutdown()
    await asyncio.sleep(0.5)  # sdk-python #300


@activity.defn(name=WATCH_HOLDER_ACTIVITY)
async def holder_not_watched(watch: HolderWatch) -> HolderClosed:
    """Stand-in for the queue lock's ``watch_lock_holder``: the one activity not run for real here.

    The real one long-polls for as long as a sequence holds its lock, and the test server does not
    skip time while an activity runs. Failing it (non-retryable) only turns off the detection of a
    holder that dies, so a lock is freed by its holder's own release alone.
    """
    raise ApplicationError(f"{watch.workflow_id} is not watched under time skipping", non_retryable=True)


@dataclass
class Plane:
    """A worker on its own task queue and the gateway's store-then-route path, for one test."""

    env: WorkflowEnvironment
    pool: asyncpg.Pool
    db_url: str
    queue: str = field(default_factory=lambda: f"ts-{uuid.uuid4()}")
    project: str = field(default_factory=lambda: f"timeouts-{uuid.uuid4().hex[:8]}")
    contexts: list[str] = field(default_factory=list)

    def settings(self, **task: Any) -> Settings:
        return Settings(database_url=self.db_url, api_token="t", temporal_task_queue=self.queue, **task)

    async def post(self, body: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
        """Store an event and hand it to its context workflow, as ``POST /api/v1/event`` does."""
        event = await ingest_event(self.pool, IncomingEvent.model_validate(body))
        wire = event.to_wire()
        await route_event(self.env.client, settings or self.settings(), event, wire)
        return wire

    async def trigger(self, sequence: str, service: str = "carts", **task: Any) -> str:
        """Trigger ``dev.<sequence>`` with these ``task_*`` settings; return the Keptn context."""
        data = {"project": self.project, "stage": "dev", "service": service}
        body = {"type": f"sh.keptn.event.dev.{sequence}.triggered", "source": "tests", "data": data}
        wire = await self.post(body, self.settings(**task))
        self.contexts.append(wire["shkeptncontext"])
        return str(wire["shkeptncontext"])

    async def answer(
        self, triggered: dict[str, Any], kind: str, source: str = "helm", **data: Any
    ) -> dict[str, Any]:
        """Send a ``.started`` or ``.finished`` (a passing one unless ``data`` says otherwise)."""
        event_id = data.pop("id", None)  # a given id re-sends that event: a duplicate delivery
        task = triggered["type"].split(".")[3]
        payload = {key: triggered["data"][key] for key in ("project", "stage", "service")}
        if kind == "finished":
            payload |= {"result": "pass", "status": "succeeded", **data}
        body = {"type": f"sh.keptn.event.{task}.{kind}", "source": source, "data": payload}
        body |= {"triggeredid": triggered["id"], "shkeptncontext": triggered["shkeptncontext"]}
        return await self.post(body | ({"id": event_id} if event_id else {}))

    async def open(self, task: str, context: str) -> list[dict[str, Any]]:
        """Open ``<task>.triggered`` events of a context, as pull-mode integrations see them."""
        query = open_events.OpenTriggeredQuery(
            event_type=f"sh.keptn.event.{task}.triggered", project=self.project, page_size=100
        )
        page = await open_events.list_open_triggered(self.pool, query)
        return [event for event in page.events if event["shkeptncontext"] == context]

    async def next_open(self, task: str, context: str, within: float = WITHIN) -> dict[str, Any]:
        """Wait (in real time) for the open ``<task>.triggered`` of a context."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if found := await self.open(task, context):
                return found[0]
            await asyncio.sleep(POLL)
        raise AssertionError(f"no open {task}.triggered of {context} within {within}s")

    async def events(self, context: str, event_type: str) -> list[dict[str, Any]]:
        query = event_store.EventQuery(keptn_context=context, type=event_type, page_size=100)
        return list(reversed((await event_store.get_events(self.pool, query)).events))

    async def execution(self, context: str) -> execution_store.ExecutionRecord:
        query = execution_store.ExecutionQuery(project=self.project, keptn_context=context)
        [record] = (await execution_store.query_executions(self.pool, query)).executions
        return record

    def handle(self, context: str) -> WorkflowHandle[Any, ContextResult]:
        workflow_id = context_workflow_id(self.project, context)
        return self.env.client.get_workflow_handle(workflow_id, result_type=ContextResult)

    async def finished(self, context: str, sequence: str) -> dict[str, Any]:
        """Await the context's end and return its ``dev.<sequence>.finished``.

        Time does not skip here: a test moves the clock with ``env.sleep`` only. (Unlocked while
        some workflow waits for a signal, the test server jumps to the next timer, at worst to the
        workflows' 10-year run timeout.)
        """
        await asyncio.wait_for(self.handle(context).result(), WITHIN)
        [finished] = await self.events(context, f"sh.keptn.event.dev.{sequence}.finished")
        return finished

    async def running(self, context: str) -> bool:
        description = await self.handle(context).describe()
        return description.status == WorkflowExecutionStatus.RUNNING

    async def close(self) -> None:
        """Abort what a test left running, then let the idle lock workflows end."""
        for context in self.contexts:
            if await self.running(context):
                await self.handle(context).signal(CONTROL_SIGNAL, ControlRequest(state="abort"))
            await asyncio.wait_for(self.handle(context).result(), WITHIN)
        await self.env.sleep(timedelta(minutes=2))  # locks end after a minute without requests
        for service in SERVICES:
            lock = self.env.client.get_workflow_handle(lock_workflow_id(self.project, "dev", service))
            with contextlib.suppress(RPCError):  # never started
                await asyncio.wait_for(lock.result(), WITHIN)


@pytest_asyncio.fixture
async def plane(ts_env: WorkflowEnvironment, pool: asyncpg.Pool, db_url: str) -> AsyncIterator[Plane]:
    running = Plane(env=ts_env, pool=pool, db_url=db_url)
    await project_store.create_project(pool, running.project, shipyard_update(SHIPYARD))
    for service in SERVICES:
        await project_store.create_service(pool, running.project, service)
    async with httpx.AsyncClient() as http:
        real = build_activities(pool, http, client=ts_env.client, task_queue=running.queue)
        activities = [act for act in real if getattr(act, "__name__", "") != "watch_lock_holder"]
        activities.append(holder_not_watched)
        worker = Worker(
            ts_env.client, task_queue=running.queue, workflows=ALL_WORKFLOWS, activities=activities
        )
        async with running_worker(worker, running.queue):
            try:
                yield running
            finally:
                await running.close()


def at(event: dict[str, Any]) -> datetime:
    return parse_keptn_time(str(event["time"]))  # the control plane's events: the virtual clock
