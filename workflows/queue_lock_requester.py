"""The requester's side of the queue lock, for use inside a workflow (the context workflow).

A requester keeps one :class:`LockRequester` and forwards its ``lock_granted`` signal to it::

    @workflow.signal(name=GRANTED_SIGNAL)
    async def lock_granted(self, grant: LockGranted) -> None:
        await self._locks.on_granted(grant)

    request_id = await self._locks.acquire(scope, triggered_at=..., label="dev.delivery")
    ...  # run the task
    await self._locks.release(request_id)

The worker of the requester's task queue must register ``QueueLockActivities.request_lock``.
Carry :attr:`LockRequester.held` over a continue-as-new, or the new run cannot release them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from workflows.queue_lock_models import (
        RELEASE_SIGNAL,
        REQUEST_LOCK_ACTIVITY,
        LockAcquire,
        LockGranted,
        LockRelease,
        LockRequest,
        lock_workflow_id,
    )

__all__ = ["LockRequester"]

_REQUEST_TIMEOUT = timedelta(seconds=30)
_REQUEST_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


class LockRequester:
    """Acquire and release queue locks from a workflow, and answer stray grants.

    Args:
        held: granted requests carried over a continue-as-new (``request_id`` → lock id).
            Default none.
    """

    def __init__(self, held: Mapping[str, str] | None = None) -> None:
        self._locks: dict[str, str] = dict(held or {})  # request_id -> lock id, queued or granted
        self._granted: set[str] = set(self._locks)

    @property
    def held(self) -> dict[str, str]:
        """The granted, unreleased requests: ``request_id`` → lock workflow id."""
        return {rid: lock for rid, lock in self._locks.items() if rid in self._granted}

    async def on_granted(self, grant: LockGranted) -> None:
        """Handle the ``lock_granted`` signal.

        A grant for a request this workflow no longer wants (it gave up waiting, or a duplicate
        ``acquire`` arrived after a new lock run started) is released at once: nobody else would
        release it, and it would block the queue until this workflow closes.

        Args:
            grant: the signal's payload.
        """
        if grant.request_id in self._locks:
            self._granted.add(grant.request_id)
            return
        await _signal_release(grant.lock_id, grant.request_id)

    async def acquire(
        self,
        project: str,
        stage: str,
        service: str,
        *,
        triggered_at: datetime,
        label: str = "",
        max_wait: timedelta | None = None,
    ) -> str:
        """Wait until this workflow holds the lock of (project, stage, service).

        Args:
            project: Keptn project.
            stage: Keptn stage.
            service: Keptn service.
            triggered_at: when the sequence was triggered (its place in the queue); pass the same
                time when re-acquiring after an approval or a pause.
            label: what the lock is held for, e.g. ``dev.delivery``. Default empty.
            max_wait: give up after this long. Default: wait as long as it takes.

        Returns:
            The request id, to pass to :meth:`release`.

        Raises:
            asyncio.TimeoutError: not granted within ``max_wait``; the request was withdrawn.
            asyncio.CancelledError: the workflow was cancelled; the request was withdrawn.
        """
        request_id = str(workflow.uuid4())
        lock_id = lock_workflow_id(project, stage, service)
        # Registered before the activity runs: the grant may arrive before the activity's result.
        self._locks[request_id] = lock_id
        request = LockRequest(
            holder=workflow.info().workflow_id, request_id=request_id, triggered_at=triggered_at, label=label
        )
        try:
            await workflow.execute_activity(
                REQUEST_LOCK_ACTIVITY,
                LockAcquire(project=project, stage=stage, service=service, request=request),
                result_type=str,
                start_to_close_timeout=_REQUEST_TIMEOUT,
                retry_policy=_REQUEST_RETRY,
                summary=f"acquire {lock_id}",
            )
            await workflow.wait_condition(
                lambda: request_id in self._granted, timeout=max_wait, timeout_summary=f"queued at {lock_id}"
            )
        except GeneratorExit:
            raise  # the instance is being discarded: nothing may be awaited (see SequenceRun.run)
        except BaseException:
            await self.release(request_id)
            raise
        return request_id

    def holds(self, request_id: str) -> bool:
        """Tell whether ``request_id`` is granted and not yet released."""
        return request_id in self._granted

    async def release(self, request_id: str) -> None:
        """Release a granted request, or withdraw a queued one; unknown ids are ignored.

        Args:
            request_id: what :meth:`acquire` returned.
        """
        lock_id = self._locks.pop(request_id, None)
        self._granted.discard(request_id)
        if lock_id is not None:
            await _signal_release(lock_id, request_id)


async def _signal_release(lock_id: str, request_id: str) -> None:
    release = LockRelease(holder=workflow.info().workflow_id, request_id=request_id)
    try:
        await workflow.get_external_workflow_handle(lock_id).signal(RELEASE_SIGNAL, release)
    except FailureError as err:
        # The lock workflow is not running, so it holds nothing for us: it only ends when idle.
        workflow.logger.info("release of %s at %s not delivered: %s", request_id, lock_id, err)
