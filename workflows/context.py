"""The Keptn context workflow: every sequence of one ``shkeptncontext``, durably.

One workflow per Keptn context (id ``keptn-{project}-{shkeptncontext}``), started or joined by the
gateway with signal-with-start when a sequence is triggered. It runs each triggered sequence
(:class:`workflows.sequence_run.SequenceRun`) concurrently — parallel stages are just sequences
triggered together — routes integration answers to their task by ``triggeredid``, triggers the
follow-up sequences Keptn's ``triggeredOn`` asks for, and ends when nothing is left to run.
Long contexts (remediation loops) continue-as-new between sequences.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keptn.approval import Vote
    from keptn.event_types import SequenceEventType, maybe_parse_event_type
    from workflows import activity_calls as calls
    from workflows.approval import Approval
    from workflows.builtin_task import Intercept
    from workflows.context_models import (
        APPROVE_UPDATE,
        CONTEXT_WORKFLOW,
        CONTROL_SIGNAL,
        SEQUENCE_TRIGGERED_SIGNAL,
        STATE_QUERY,
        TASK_EVENT_SIGNAL,
        ApprovalDecision,
        ApprovalState,
        ContextInput,
        ContextResult,
        ContextState,
        ControlRequest,
        SequenceSummary,
        SequenceTriggered,
        TaskEventReceived,
    )
    from workflows.queue_lock_models import GRANTED_SIGNAL, LockGranted
    from workflows.queue_lock_requester import LockRequester
    from workflows.sequence_run import SequenceRun
    from workflows.task_tracker import TaskTracker

SEEN_IDS_KEPT = 2000
"""Event ids remembered for de-duplication (signals are at-least-once)."""
SEEN_IDS_CARRIED = 500
"""Of those, how many survive a continue-as-new."""
COMPLETE_TASK_PATCH = "answers-after-completion"
"""Marks contexts that ignore answers to a task completed earlier in the same workflow activation."""
REAP_WHILE_WAITING_PATCH = "reap-while-waiting"
"""Marks contexts that end once their last sequence ends, also when sequences ran side by side."""


def _event_stage(event: dict[str, Any]) -> str:
    parsed = maybe_parse_event_type(str(event.get("type", "")))
    return parsed.stage if isinstance(parsed, SequenceEventType) else ""


@workflow.defn(name=CONTEXT_WORKFLOW)
class ContextWorkflow:
    """All sequences of one Keptn context."""

    @workflow.init
    def __init__(self, input: ContextInput) -> None:
        self.project = input.project
        self.keptn_context = input.keptn_context
        self.settings = input.settings
        self.locks = LockRequester()
        self.pending: list[SequenceTriggered] = list(input.pending)
        self.paused_all = input.paused_all
        self.paused_stages: set[str] = set(input.paused_stages)
        self.sequences_run = input.sequences_run
        self._seen: dict[str, None] = dict.fromkeys(input.seen_event_ids)
        self._runs: dict[str, tuple[SequenceRun, asyncio.Task[None]]] = {}
        self._tasks: dict[str, tuple[TaskTracker, Callable[[], None], Intercept | None]] = {}
        self._background: list[asyncio.Task[Any]] = []
        self.approvals: dict[str, Approval] = {}

    # -- signals and queries -----------------------------------------------------------------

    def _first_time(self, event_id: str) -> bool:
        """Remember an event id; False if it was seen before (a duplicate delivery)."""
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        if len(self._seen) > SEEN_IDS_KEPT:
            del self._seen[next(iter(self._seen))]
        return True

    @workflow.signal(name=SEQUENCE_TRIGGERED_SIGNAL)
    def sequence_triggered(self, trigger: SequenceTriggered) -> None:
        """A sequence trigger of this context was stored (duplicates are ignored)."""
        if self._first_time(str(trigger.event.get("id", ""))):
            self.pending.append(trigger)
            self.background(calls.push(trigger.event))

    @workflow.signal(name=TASK_EVENT_SIGNAL)
    def task_event(self, received: TaskEventReceived) -> None:
        """An integration answered a task; route it to the task by ``triggeredid``.

        An answer for a task that is not open (answered, aborted or timed out already) is ignored,
        as Keptn ignored it, but still delivered to subscribers like every stored event.
        """
        self.answer(received.event)

    def answer(self, event: dict[str, Any]) -> None:
        """Route a stored task answer to its task, once, and deliver it to subscribers."""
        if not self._first_time(str(event.get("id", ""))):
            return
        entry = self._tasks.get(str(event.get("triggeredid", "")))
        if entry is None:
            workflow.logger.info("answer %s for a task that is not open ignored", event.get("id"))
        else:
            tracker, on_answer, intercept = entry
            if tracker.complete and workflow.patched(COMPLETE_TASK_PATCH):
                # The task was completed by an answer of this same activation and is unregistered
                # only once its sequence looks again. Keptn completed a task on the answer that
                # made the counts match and ignored the rest; counting this one too would make a
                # second .finished (#finished 2 != #started 1) wedge the task for good.
                workflow.logger.info("answer %s for a completed task ignored", event.get("id"))
            elif (intercept is None or not intercept(event)) and tracker.record(event):
                on_answer()
        self.background(calls.push(event))

    @workflow.signal(name=CONTROL_SIGNAL)
    def control(self, request: ControlRequest) -> None:
        """Pause, resume or abort sequences of the context (Keptn's sequence control, §3.7)."""
        if request.state == "pause":
            if request.stage:
                self.paused_stages.add(request.stage)
            else:
                self.paused_all = True
        elif request.state == "resume":
            if request.stage:
                self.paused_stages.discard(request.stage)
            else:
                self.paused_all = False
                self.paused_stages.clear()
        else:
            for run, _ in self._runs.values():
                if request.stage in (None, run.stage):
                    run.aborted = True
                # A run that has just finished may hold follow-ups not yet picked up.
                run.follow_ups = [f for f in run.follow_ups if request.stage not in (None, _event_stage(f))]
            self.pending = [t for t in self.pending if request.stage not in (None, _event_stage(t.event))]

    @workflow.signal(name=GRANTED_SIGNAL)
    async def lock_granted(self, grant: LockGranted) -> None:
        """The queue lock of a project/stage/service was granted to one of our sequences."""
        await self.locks.on_granted(grant)

    @workflow.update(name=APPROVE_UPDATE, description="Approve or decline an open approval task")
    async def approve(self, decision: ApprovalDecision) -> ApprovalState:
        """Decide an open approval (the Temporal Web UI's "Send an Update", or the SDK)."""
        approval = self._open_approval(decision)
        await approval.vote(Vote(user=decision.user, approved=decision.approved, message=decision.message))
        outcome = approval.tally.decision(approval.required)
        return ApprovalState(
            triggeredid=approval.triggered_id,
            decision=outcome or "waiting",
            approvers=[vote.user for vote in approval.tally.votes if vote.approved],
            required=approval.required,
        )

    @approve.validator
    def _validate_approve(self, decision: ApprovalDecision) -> None:
        # Rejected updates leave no trace in the history: a wrong id costs nothing.
        self._open_approval(decision)

    def _open_approval(self, decision: ApprovalDecision) -> Approval:
        """The approval a decision is about; ValueError with the reason if it cannot be taken."""
        open_ids = [tid for tid, approval in self.approvals.items() if approval.is_open()]
        if decision.triggeredid is None:
            if not open_ids:
                raise ValueError("no approval of this Keptn context is waiting for a decision")
            if len(open_ids) > 1:
                raise ValueError(f"several approvals are open, give triggeredid: {', '.join(open_ids)}")
            triggered_id = open_ids[0]
        else:
            triggered_id = decision.triggeredid
        approval = self.approvals.get(triggered_id)
        if approval is None or not approval.is_open():
            listed = ", ".join(open_ids) or "none"
            raise ValueError(
                f"approval '{triggered_id}' is not open in this Keptn context (already decided, "
                f"automatic or unknown); open approvals: {listed}"
            )
        if any(vote.user == decision.user for vote in approval.tally.votes):
            raise ValueError(f"user '{decision.user}' has already decided approval '{triggered_id}'")
        return approval

    @workflow.query(name=STATE_QUERY)
    def state(self) -> ContextState:
        """What the context is doing right now."""
        return ContextState(
            project=self.project,
            keptn_context=self.keptn_context,
            running=[
                SequenceSummary(
                    triggered_id=run.triggered_id,
                    stage=run.stage,
                    sequence=run.sequence,
                    state=run.state,
                    current_task=run.current.name if run.current else None,
                    result=run.result,
                    status=run.status,
                )
                for run, _ in self._runs.values()
            ],
            pending=len(self.pending),
            paused_all=self.paused_all,
            paused_stages=sorted(self.paused_stages),
            sequences_run=self.sequences_run,
        )

    # -- the host interface of SequenceRun ---------------------------------------------------

    def register_task(
        self, tracker: TaskTracker, on_answer: Callable[[], None], intercept: Intercept | None = None
    ) -> None:
        """Route answers with the tracker's triggered id to it, after ``intercept`` if given."""
        self._tasks[tracker.triggered_id] = (tracker, on_answer, intercept)

    def unregister_task(self, triggered_id: str) -> None:
        """Stop routing answers to a task."""
        self._tasks.pop(triggered_id, None)

    def is_paused(self, stage: str) -> bool:
        """Whether sequences of this stage must hold their next task."""
        return self.paused_all or stage in self.paused_stages

    def background(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run work beside the sequences; the context waits for it before it ends."""
        self._background = [task for task in self._background if not task.done()]
        self._background.append(asyncio.create_task(work))

    # -- the run loop ------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: ContextInput) -> ContextResult:
        """Run every triggered sequence and its follow-ups; end when none is left."""
        # Before this patch the loop's first wait ignored runs that had finished: with two
        # sequences running side by side (parallel stages), the one that finished second was
        # never reaped and the context never ended. Old histories replay the old wait.
        reap_while_waiting = workflow.patched(REAP_WHILE_WAITING_PATCH)
        while True:
            await workflow.wait_condition(
                lambda: bool(self.pending) or not self._runs or (reap_while_waiting and self._any_done())
            )
            if reap_while_waiting:
                self._reap()
            if self.pending and not self._runs and workflow.info().is_continue_as_new_suggested():
                await self._drain()
                workflow.continue_as_new(self._carry_over())
            while self.pending:
                self._start(self.pending.pop(0))
            if not self._runs:
                await self._drain()
                if not self.pending:
                    return ContextResult(sequences_run=self.sequences_run)
                continue
            await workflow.wait_condition(lambda: bool(self.pending) or self._any_done())
            self._reap()

    def _any_done(self) -> bool:
        return any(task.done() for _, task in self._runs.values())

    def _start(self, trigger: SequenceTriggered) -> None:
        run = SequenceRun(self, trigger.event)
        self.sequences_run += 1
        self._runs[run.triggered_id] = (run, asyncio.create_task(run.run()))

    def _reap(self) -> None:
        for triggered_id, (run, task) in list(self._runs.items()):
            if not task.done():
                continue
            del self._runs[triggered_id]
            task.result()  # a bug in a run fails the workflow task, so it is retried after a fix
            for follow_up in run.follow_ups:
                if self._first_time(str(follow_up["id"])):
                    self.background(calls.emit_event(follow_up))
                    self.background(calls.push(follow_up))
                    self.pending.append(SequenceTriggered(event=follow_up))

    async def _drain(self) -> None:
        """Wait for background work (deliveries) and for signal and update handlers."""
        while self._background:
            work = self._background
            self._background = []
            await asyncio.gather(*work)
        await workflow.wait_condition(workflow.all_handlers_finished)

    def _carry_over(self) -> ContextInput:
        return ContextInput(
            project=self.project,
            keptn_context=self.keptn_context,
            settings=self.settings,
            pending=self.pending,
            seen_event_ids=list(self._seen)[-SEEN_IDS_CARRIED:],
            paused_stages=sorted(self.paused_stages),
            paused_all=self.paused_all,
            sequences_run=self.sequences_run,
        )
