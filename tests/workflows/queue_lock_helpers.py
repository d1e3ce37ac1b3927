"""Test requesters and a driver for the queue lock (used by ``test_queue_lock.py``).

Two kinds of requesters: ``Requester`` is what a context workflow does (it uses ``LockRequester``:
acquire, hold until told, release); ``GrantRecorder`` only records ``lock_granted`` signals, so
that a test can drive the lock with hand-made (and duplicate) signals through ``Lock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import AwareDatetime, BaseModel
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from tests.fixtures.temporal import running_worker

with workflow.unsafe.imports_passed_through():
    from temporalio.api.enums.v1 import EventType
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer, Worker

    from activities.queue_lock import QueueLockActivities
    from workflows.queue_lock import QueueLockWorkflow, lock_workflow_id
    from workflows.queue_lock_models import (
        GRANTED_SIGNAL,
        STATE_QUERY,
        LockAcquire,
        LockGranted,
        LockOutcome,
        LockRelease,
        LockReleaseRequest,
        LockRequest,
        LockState,
    )
    from workflows.queue_lock_requester import LockRequester

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


class RequesterInput(BaseModel):
    project: str
    stage: str = "dev"
    service: str = "carts"
    triggered_at: AwareDatetime
    label: str = ""
    acquisitions: int = 1
    hold: bool = True
    acquire_timeout: timedelta | None = None


class RequesterResult(BaseModel):
    granted_at: list[datetime]
    released_at: datetime | None = None
    timed_out: bool = False


@workflow.defn
class Requester:
    """Acquire ``acquisitions`` times, hold until ``let_go`` (unless ``hold`` is false), release."""

    @workflow.init
    def __init__(self, inp: RequesterInput) -> None:
        self._locks = LockRequester()
        self._let_go = not inp.hold

    @workflow.run
    async def run(self, inp: RequesterInput) -> RequesterResult:
        granted_at: list[datetime] = []
        for _ in range(inp.acquisitions):
            try:
                await self._locks.acquire(
                    inp.project,
                    inp.stage,
                    inp.service,
                    triggered_at=inp.triggered_at,
                    label=inp.label,
                    max_wait=inp.acquire_timeout,
                )
            except TimeoutError:
                return RequesterResult(granted_at=granted_at, timed_out=True)
            granted_at.append(workflow.now())
        await workflow.wait_condition(lambda: self._let_go)
        released_at = workflow.now()
        for request_id in list(self._locks.held):
            await self._locks.release(request_id)
        return RequesterResult(granted_at=granted_at, released_at=released_at)

    @workflow.signal(name=GRANTED_SIGNAL)
    async def lock_granted(self, grant: LockGranted) -> None:
        await self._locks.on_granted(grant)

    @workflow.signal
    def let_go(self) -> None:
        self._let_go = True

    @workflow.query
    def holds(self) -> int:
        return len(self._locks.held)


@workflow.defn
class GrantRecorder:
    """Record every ``lock_granted`` until ``finish``."""

    def __init__(self) -> None:
        self._grants: list[str] = []
        self._finished = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self._finished)
        return self._grants

    @workflow.signal(name=GRANTED_SIGNAL)
    def lock_granted(self, grant: LockGranted) -> None:
        self._grants.append(grant.request_id)

    @workflow.signal
    def finish(self) -> None:
        self._finished = True

    @workflow.query
    def grants(self) -> list[str]:
        return self._grants


@dataclass
class Lock:
    """One test's lock scope and worker task queue, with ways to drive and observe the lock."""

    client: Client
    task_queue: str
    activities: QueueLockActivities
    project: str
    stage: str = "dev"
    service: str = "carts"

    @property
    def id(self) -> str:
        return lock_workflow_id(self.project, self.stage, self.service)

    @property
    def handle(self) -> WorkflowHandle[QueueLockWorkflow, LockOutcome]:
        return self.client.get_workflow_handle_for(QueueLockWorkflow.run, self.id)

    async def state(self) -> LockState:
        state: LockState = await self.handle.query(STATE_QUERY, result_type=LockState)
        return state

    async def wait(self, predicate: Callable[[LockState], bool], within: float = 15.0) -> LockState:
        """Poll the ``state`` query until ``predicate`` holds (test-side only)."""
        deadline = time.monotonic() + within
        while True:
            try:
                state = await self.state()
                if predicate(state):
                    return state
            except RPCError:
                state = None  # not started yet
            if time.monotonic() > deadline:
                raise AssertionError(f"lock state never matched; last: {state}")
            await asyncio.sleep(0.02)

    async def requester(self, name: str, **fields: object) -> WorkflowHandle[Requester, RequesterResult]:
        inp = RequesterInput(project=self.project, stage=self.stage, service=self.service, **fields)
        return await self.client.start_workflow(
            Requester.run, inp, id=f"{self.project}-{name}", task_queue=self.task_queue
        )

    async def recorder(self, name: str) -> WorkflowHandle[GrantRecorder, list[str]]:
        return await self.client.start_workflow(
            GrantRecorder.run, id=f"{self.project}-{name}", task_queue=self.task_queue
        )

    async def acquire(self, holder: str, request_id: str, triggered_at: datetime, label: str = "") -> None:
        request = LockRequest(holder=holder, request_id=request_id, triggered_at=triggered_at, label=label)
        scope = {"project": self.project, "stage": self.stage, "service": self.service}
        await self.activities.request_lock(LockAcquire(**scope, request=request))

    async def release(self, holder: str, request_id: str) -> bool:
        release = LockRelease(holder=holder, request_id=request_id)
        return await self.activities.release_lock(LockReleaseRequest(lock_id=self.id, release=release))


async def eventually(check: Callable[[], object], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


def holders(state: LockState) -> list[str]:
    return [r.holder for r in state.queue]


@contextlib.asynccontextmanager
async def lock_env(client: Client, idle_timeout: timedelta) -> AsyncIterator[Lock]:
    task_queue = f"queue-lock-{uuid.uuid4()}"
    activities = QueueLockActivities(
        client, task_queue, idle_timeout=idle_timeout, heartbeat_every=timedelta(milliseconds=200)
    )
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[QueueLockWorkflow, Requester, GrantRecorder],
        activities=[activities.request_lock, activities.release_lock, activities.watch_lock_holder],
        # A cancelled watch notices at its next heartbeat: make that soon, so that it has ended
        # before its lock does (else the SDK logs "Activity not found on completion").
        max_heartbeat_throttle_interval=timedelta(milliseconds=200),
    )
    async with running_worker(worker, task_queue):
        # A project of its own: lock ids are global in the namespace.
        yield Lock(client, task_queue, activities, project=f"p{uuid.uuid4().hex[:10]}")


async def grants_are(recorder: WorkflowHandle[GrantRecorder, list[str]], expected: list[str]) -> bool:
    return await recorder.query(GrantRecorder.grants) == expected


async def grant_count(recorder: WorkflowHandle[GrantRecorder, list[str]], n: int) -> bool:
    return len(await recorder.query(GrantRecorder.grants)) == n


async def holds_equal(requester: WorkflowHandle[Requester, RequesterResult], holds: int) -> bool:
    return await requester.query(Requester.holds) == holds


async def replays(lock: Lock) -> None:
    """The lock's last run replays without non-determinism."""
    history = await lock.handle.fetch_history()
    replayer = Replayer(workflows=[QueueLockWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)


async def run_count(lock: Lock, first_run: str) -> int:
    """Follow the chain of runs from ``first_run`` through its continue-as-new events."""
    runs, run_id = 1, first_run
    while True:
        handle = lock.client.get_workflow_handle(lock.id, run_id=run_id)
        events = [e async for e in handle.fetch_history_events()]
        last = events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return runs
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        runs += 1
