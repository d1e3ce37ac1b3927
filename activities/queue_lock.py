"""Activities of the queue lock: start-or-signal the lock workflow, release from outside, watch holders.

The lock workflow itself is in ``workflows.queue_lock``; these are the parts that need a Temporal
client. They address it by workflow type name, so this module does not import workflow code.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistoryEventFilterType
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from workflows.queue_lock_models import (
    ACQUIRE_SIGNAL,
    LOCK_WORKFLOW_TYPE,
    RELEASE_LOCK_ACTIVITY,
    RELEASE_SIGNAL,
    REQUEST_LOCK_ACTIVITY,
    WATCH_HOLDER_ACTIVITY,
    HolderClosed,
    HolderWatch,
    LockAcquire,
    LockInput,
    LockReleaseRequest,
    lock_workflow_id,
)

__all__ = ["QueueLockActivities"]

_CLOSE_STATUS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued_as_new",
}


class QueueLockActivities:
    """The queue lock's activities, sharing one Temporal client.

    Register ``request_lock`` and ``release_lock`` on the worker of the requesters' task queue and
    ``watch_lock_holder`` on the worker of ``task_queue`` (in Capstan, the same worker).

    Args:
        client: a connected client (with the pydantic data converter).
        task_queue: the task queue lock workflows run on.
        idle_timeout: how long a started lock workflow stays open while free (see
            ``LockInput.idle_timeout``). Default one minute.
        heartbeat_every: how often ``watch_lock_holder`` heartbeats. Default 5 s.
    """

    def __init__(
        self,
        client: Client,
        task_queue: str,
        *,
        idle_timeout: timedelta = timedelta(minutes=1),
        heartbeat_every: timedelta = timedelta(seconds=5),
    ) -> None:
        self._client = client
        self._task_queue = task_queue
        self._idle_timeout = idle_timeout
        self._heartbeat_every = heartbeat_every

    @activity.defn(name=REQUEST_LOCK_ACTIVITY)
    async def request_lock(self, acquire: LockAcquire) -> str:
        """Send ``acquire`` to the lock of the request's scope, starting the lock if it is not running.

        Safe to retry: the lock ignores a duplicate ``request_id``.

        Args:
            acquire: the scope and the request.

        Returns:
            The lock's workflow id.
        """
        lock_id = lock_workflow_id(acquire.project, acquire.stage, acquire.service)
        await self._client.start_workflow(
            LOCK_WORKFLOW_TYPE,
            LockInput(
                project=acquire.project,
                stage=acquire.stage,
                service=acquire.service,
                idle_timeout=self._idle_timeout,
            ),
            id=lock_id,
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal=ACQUIRE_SIGNAL,
            start_signal_args=[acquire.request],
            static_summary=f"queue lock of {acquire.project}/{acquire.stage}/{acquire.service}",
        )
        return lock_id

    @activity.defn(name=RELEASE_LOCK_ACTIVITY)
    async def release_lock(self, request: LockReleaseRequest) -> bool:
        """Send ``release`` to a lock, for callers that are not workflows.

        Args:
            request: the lock and what to release.

        Returns:
            False if the lock workflow was not running (nothing was held there), else True.
        """
        handle = self._client.get_workflow_handle(request.lock_id)
        try:
            await handle.signal(RELEASE_SIGNAL, request.release)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    @activity.defn(name=WATCH_HOLDER_ACTIVITY)
    async def watch_lock_holder(self, watch: HolderWatch) -> HolderClosed:
        """Wait until the holder's workflow has closed, following its continue-as-new runs.

        Uses the server's long poll on the close event, heartbeating meanwhile so that the lock
        can cancel it and a lost worker is noticed.

        Args:
            watch: the holder's workflow id.

        Returns:
            How the holder's last run closed, or ``not_found``.
        """
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            return await self._wait_closed(watch.workflow_id)
        finally:
            heartbeat.cancel()

    async def _heartbeat(self) -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(self._heartbeat_every.total_seconds())

    async def _wait_closed(self, workflow_id: str) -> HolderClosed:
        run_id: str | None = None
        while True:
            handle = self._client.get_workflow_handle(workflow_id, run_id=run_id)
            try:
                events = [
                    event
                    async for event in handle.fetch_history_events(
                        wait_new_event=True,
                        event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT,
                        skip_archival=True,
                    )
                ]
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return HolderClosed(workflow_id=workflow_id, status="not_found")
                raise
            if not events:  # the long poll ended without the close event: ask again, gently
                await asyncio.sleep(1)
                continue
            close = events[-1]
            status = _CLOSE_STATUS.get(close.event_type, "closed")
            # Continue-as-new, a retry or a cron run: the workflow lives on under a new run id.
            next_run = _next_run_id(close)
            if next_run:
                run_id = next_run
                continue
            return HolderClosed(workflow_id=workflow_id, status=status)


def _next_run_id(close: HistoryEvent) -> str:
    for attrs in (
        close.workflow_execution_continued_as_new_event_attributes,
        close.workflow_execution_completed_event_attributes,
        close.workflow_execution_failed_event_attributes,
        close.workflow_execution_timed_out_event_attributes,
    ):
        if attrs.new_execution_run_id:
            return attrs.new_execution_run_id
    return ""
