"""The queue lock: one *started* sequence per (project, stage, service), the others wait FIFO.

Keptn's shipyard-controller let one sequence run per project/stage/service and retried the queued
ones every 10 s (behaviour spec §3.6). Here each (project, stage, service) has a small lock
workflow, :class:`QueueLockWorkflow`, with the id :func:`lock_workflow_id`, and hand-over is a
signal sent the moment the holder releases.

Protocol (the requester is a context workflow; :class:`~workflows.queue_lock_requester.LockRequester`
implements its side):

1. The requester runs the ``request_lock`` activity, which signal-with-starts the lock with
   ``acquire(LockRequest)``. A workflow cannot signal-with-start another workflow itself, and an
   activity makes the first request work whether or not the lock workflow is running.
2. The lock queues the request by ``(triggered_at, arrival)`` and, when it is the request's turn,
   signals ``lock_granted(LockGranted)`` to the requester's workflow.
3. The requester signals ``release(LockRelease)`` to the lock (an external signal from its
   workflow: one command, no activity round trip). A release of a queued request withdraws it.

Rules: requests of the holder are granted at once (a Keptn context never blocks itself) and the
lock is free only when all of the holder's grants are released; duplicate signals are ignored by
``request_id``; a requester whose workflow has closed (terminated, timed out) loses its grants and
its place, found out either when its grant cannot be delivered or by the ``watch_lock_holder``
activity, which long-polls the holder's close event while it holds the lock. Nothing runs on a
timer tick.

Why acquire by activity but release by external signal: only an acquisition may have to start the
lock (it ends when idle), and only a client can signal-with-start. A release always finds the run
that granted it, because a lock run cannot end while someone holds it or waits; if the run is gone
anyway (an operator terminated it), there is nothing left to release, so the requester ignores the
"not found". The external signal needs no activity worker and saves a round trip on the hand-over
path. ``release_lock`` (activity) is there for callers that are not workflows.

The workflow ends once it has been free with nobody waiting for ``idle_timeout``; an ``acquire``
after that starts a new run (signal-with-start), which is as good as the old one. A signal that
races with the completion makes the server reject it, and the replayed workflow sees the signal.
"""

from __future__ import annotations

import asyncio
import bisect
from datetime import timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from workflows.queue_lock_models import (
        ACQUIRE_SIGNAL,
        GRANTED_SIGNAL,
        LOCK_WORKFLOW_TYPE,
        RELEASE_SIGNAL,
        STATE_QUERY,
        WATCH_HOLDER_ACTIVITY,
        HolderClosed,
        HolderWatch,
        LockGranted,
        LockInput,
        LockOutcome,
        LockRelease,
        LockRequest,
        LockState,
        lock_workflow_id,
    )

__all__ = ["QueueLockWorkflow", "lock_workflow_id"]

SETTLED_KEPT = 1000
"""How many released or dropped request ids the lock remembers to ignore late duplicates."""

_WATCH_HEARTBEAT_TIMEOUT = timedelta(seconds=15)
# Restarted (as a retry) at this interval even if the holder is still running; bounds how long an
# attempt can sit on a worker that lost its connection without noticing.
_WATCH_ATTEMPT_TIMEOUT = timedelta(hours=1)
_WATCH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


@workflow.defn(name=LOCK_WORKFLOW_TYPE)
class QueueLockWorkflow:
    """A FIFO lock of one (project, stage, service), held by workflows and handed over by signal."""

    @workflow.init
    def __init__(self, inp: LockInput) -> None:
        # Signals are handled before run() starts, so all state is built here.
        self._input = inp
        self._lock_id = workflow.info().workflow_id
        self._holder = inp.holder
        self._held: dict[str, LockRequest] = {r.request_id: r for r in inp.held}
        self._queue = list(inp.queue)
        self._settled = list(inp.settled)
        self._settled_ids = set(self._settled)
        self._granted = inp.granted
        self._dropped = inp.dropped
        self._dirty = False  # state changed since run() last looked
        self._watched: str | None = None
        self._watch: asyncio.Task[None] | None = None

    @workflow.run
    async def run(self, inp: LockInput) -> LockOutcome:
        """Grant requests in turn until the lock has been idle for ``inp.idle_timeout``.

        Args:
            inp: the lock's scope and, after a continue-as-new, its carried-over state.

        Returns:
            How many requests were granted and dropped over the whole run chain.
        """
        while True:
            await self._grant_ready()
            self._follow_holder()
            self._describe()
            if workflow.info().is_continue_as_new_suggested():
                await self._continue_as_new()
            self._dirty = False
            if not self._idle():
                await workflow.wait_condition(
                    lambda: self._dirty or workflow.info().is_continue_as_new_suggested()
                )
                continue
            try:
                await workflow.wait_condition(
                    lambda: self._dirty, timeout=inp.idle_timeout, timeout_summary="idle"
                )
            except TimeoutError:
                await workflow.wait_condition(workflow.all_handlers_finished)
                # A request may have arrived in the same activation as the timer.
                if self._idle():
                    return LockOutcome(granted=self._granted, dropped=self._dropped)

    @workflow.signal(name=ACQUIRE_SIGNAL)
    def acquire(self, request: LockRequest) -> None:
        """Queue a request; granted at once if its holder already holds the lock.

        Args:
            request: the request; ignored if its ``request_id`` is already known.
        """
        rid = request.request_id
        if rid in self._held or rid in self._settled_ids or any(r.request_id == rid for r in self._queue):
            return
        # insort_right keeps arrival order among equal trigger times.
        bisect.insort_right(self._queue, request, key=lambda r: r.triggered_at)
        self._changed()

    @workflow.signal(name=RELEASE_SIGNAL)
    def release(self, release: LockRelease) -> None:
        """Give back a granted request, or withdraw a queued one.

        A release that arrives before its ``acquire`` (an abort racing the request) is remembered,
        so the late ``acquire`` is ignored.

        Args:
            release: the request to release; ignored if already released.
        """
        rid = release.request_id
        if rid in self._settled_ids:
            return
        known = self._held.get(rid) or next((r for r in self._queue if r.request_id == rid), None)
        if known is not None and known.holder != release.holder:
            workflow.logger.warning(
                "ignoring release of %s by %s: it belongs to %s", rid, release.holder, known.holder
            )
            return
        self._settle(rid)
        if self._held.pop(rid, None) is not None:
            if not self._held:
                self._holder = None
        else:
            self._queue = [r for r in self._queue if r.request_id != rid]
        self._changed()

    @workflow.query(name=STATE_QUERY)
    def state(self) -> LockState:
        """Who holds the lock and who is waiting, next first."""
        return LockState(
            holder=self._holder,
            holds=len(self._held),
            held=list(self._held.values()),
            queue=list(self._queue),
        )

    def _idle(self) -> bool:
        return self._holder is None and not self._queue

    def _changed(self) -> None:
        self._dirty = True

    def _settle(self, request_id: str) -> None:
        self._settled.append(request_id)
        self._settled_ids.add(request_id)
        if len(self._settled) > SETTLED_KEPT:
            self._settled_ids.discard(self._settled.pop(0))

    def _next_grant(self) -> LockRequest | None:
        if self._holder is None:
            return self._queue[0] if self._queue else None
        return next((r for r in self._queue if r.holder == self._holder), None)

    async def _grant_ready(self) -> None:
        while (request := self._next_grant()) is not None:
            self._queue.remove(request)
            self._holder = request.holder
            self._held[request.request_id] = request
            self._changed()
            grant = LockGranted(request_id=request.request_id, lock_id=self._lock_id)
            try:
                await workflow.get_external_workflow_handle(request.holder).signal(GRANTED_SIGNAL, grant)
            except FailureError as err:
                # The server could not deliver it: the requester's workflow is gone (closed or
                # never existed), or cannot take more signals. Either way it cannot use the lock.
                workflow.logger.warning("dropping %s: cannot signal it (%s)", request.holder, err)
                self._drop(request.holder)
            else:
                self._granted += 1

    def _drop(self, holder: str) -> None:
        """Forget every grant and queued request of ``holder``."""
        dropped = [r for r in self._held.values() if r.holder == holder]
        dropped += [r for r in self._queue if r.holder == holder]
        if not dropped:
            return
        for request in dropped:
            self._settle(request.request_id)
            self._held.pop(request.request_id, None)
        self._queue = [r for r in self._queue if r.holder != holder]
        if not self._held:
            self._holder = None
        self._dropped += len(dropped)
        self._changed()

    def _follow_holder(self) -> None:
        """Watch the current holder's workflow, so that a holder that dies frees the lock."""
        if self._watched == self._holder:
            return
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self._watched = self._holder
        if self._holder is not None:
            self._watch = asyncio.create_task(self._watch_holder(self._holder))

    async def _watch_holder(self, holder: str) -> None:
        try:
            closed = await workflow.execute_activity(
                WATCH_HOLDER_ACTIVITY,
                HolderWatch(workflow_id=holder),
                result_type=HolderClosed,
                start_to_close_timeout=_WATCH_ATTEMPT_TIMEOUT,
                heartbeat_timeout=_WATCH_HEARTBEAT_TIMEOUT,
                retry_policy=_WATCH_RETRY,
                summary=f"watch {holder}",
            )
        except asyncio.CancelledError:
            return  # the holder released, or the lock continues as new
        except ActivityError as err:
            if not isinstance(err.cause, CancelledError):
                workflow.logger.warning("stopped watching %s: %s", holder, err)
            return
        if self._holder == holder or any(r.holder == holder for r in self._queue):
            workflow.logger.warning("%s closed (%s) while holding %s", holder, closed.status, self._lock_id)
            self._drop(holder)

    def _describe(self) -> None:
        waiting = f"{len(self._queue)} waiting"
        if self._queue:
            head = self._queue[0]
            waiting += f", next `{head.holder}` ({head.label or head.request_id})"
        if self._holder is None:
            workflow.set_current_details(f"free; {waiting}")
            return
        labels = ", ".join(r.label or r.request_id for r in self._held.values())
        workflow.set_current_details(f"held by `{self._holder}` ({labels}); {waiting}")

    async def _continue_as_new(self) -> NoReturn:
        if self._watch is not None:
            self._watch.cancel()
        await workflow.wait_condition(workflow.all_handlers_finished)
        carried = self._input.model_copy(
            update={
                "holder": self._holder,
                "held": list(self._held.values()),
                "queue": list(self._queue),
                "settled": list(self._settled),
                "granted": self._granted,
                "dropped": self._dropped,
            }
        )
        workflow.continue_as_new(carried)
