"""The queue baseline: the smallest plain-Temporal queue with Capstan's hand-over shape.

A :class:`BenchLock` workflow per pair keeps a FIFO of holders: ``acquire`` queues one, the head
is granted by an external ``granted`` signal, ``release`` frees the slot and grants the next. A
:class:`BenchQueued` sequence acquires, runs one task (an activity that POSTs it to the receiver,
then waits for the receiver's ``finished`` signal), releases, and ends. Deterministic, and free of
I/O imports for the sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bench.baseline_workflow import DELIVER_ACTIVITY, FINISHED_SIGNAL, DeliverInput

LOCK_WORKFLOW = "BenchQueueLock"
QUEUED_WORKFLOW = "BenchQueuedSequence"
ACQUIRE, RELEASE, GRANTED, QUEUE_QUERY = "acquire", "release", "granted", "queue"


@dataclass
class QueuedInput:
    """Input of a queued sequence."""

    url: str
    """Where its task is POSTed."""
    lock_id: str


@workflow.defn(name=LOCK_WORKFLOW)
class BenchLock:
    """FIFO lock; ends after ``releases`` releases (two per pair)."""

    def __init__(self) -> None:
        self.queue: list[str] = []
        self.holder: str | None = None
        self.released = 0

    @workflow.signal(name=ACQUIRE)
    def acquire(self, holder: str) -> None:
        """Queue ``holder``."""
        self.queue.append(holder)

    @workflow.signal(name=RELEASE)
    def release(self, holder: str) -> None:
        """``holder`` gives the slot back."""
        if self.holder == holder:
            self.holder = None
            self.released += 1

    @workflow.query(name=QUEUE_QUERY)
    def waiting(self) -> list[str]:
        """Who waits, next first."""
        return list(self.queue)

    @workflow.run
    async def run(self, releases: int) -> int:
        """Grant in turn until ``releases`` holders have released."""
        while self.released < releases:
            await workflow.wait_condition(lambda: self.holder is None and bool(self.queue))
            self.holder = self.queue.pop(0)
            await workflow.get_external_workflow_handle(self.holder).signal(GRANTED)
        return self.released


@workflow.defn(name=QUEUED_WORKFLOW)
class BenchQueued:
    """Acquire, run one task, release."""

    def __init__(self) -> None:
        self.granted = False
        self.finished = False

    @workflow.signal(name=GRANTED)
    def on_granted(self) -> None:
        """The lock is ours."""
        self.granted = True

    @workflow.signal(name=FINISHED_SIGNAL)
    def on_finished(self, step: int) -> None:
        """The receiver finished the task."""
        self.finished = True

    @workflow.run
    async def run(self, inp: QueuedInput) -> None:
        """The sequence."""
        me = workflow.info().workflow_id
        lock = workflow.get_external_workflow_handle(inp.lock_id)
        await lock.signal(ACQUIRE, me)
        await workflow.wait_condition(lambda: self.granted)
        await workflow.execute_activity(
            DELIVER_ACTIVITY,
            DeliverInput(url=inp.url, workflow_id=me, step=0),
            start_to_close_timeout=timedelta(seconds=30),
        )
        await workflow.wait_condition(lambda: self.finished)
        await lock.signal(RELEASE, me)
