"""One sequence execution in one stage: Keptn's shipyard-controller loop, as workflow code.

Deterministic: every side effect goes through ``workflows.activity_calls``. The decisions (payload
merge, result aggregation, follow-up sequences) are ``keptn.sequence``'s pure functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from datetime import timedelta
from typing import Any, Literal, Protocol

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.sequence_state_models import (
        CurrentTaskSnapshot,
        PreviousTaskSnapshot,
        SequenceExecutionState,
        SequenceExecutionUpdate,
        TaskEventSnapshot,
    )
    from keptn.durations import format_duration, parse_duration
    from keptn.errors import InvalidInputError
    from keptn.event_types import EventKind, SequenceEventType, parse_event_type, task_event_type
    from keptn.events import KeptnEvent, parse_keptn_time
    from keptn.sequence import (
        Scope,
        TaskOutcome,
        aggregate_task,
        follow_up_sequences,
        next_task_payload,
        sequence_continues,
        sequence_finished_data,
        unknown_sequence_message,
    )
    from keptn.shipyard import Shipyard, Task
    from workflows import activity_calls as calls
    from workflows.approval import Approval
    from workflows.builtin_task import BuiltinHost, BuiltinTask
    from workflows.get_action import GetAction
    from workflows.lighthouse import Lighthouse
    from workflows.queue_lock_requester import LockRequester
    from workflows.task_tracker import TaskTracker
    from workflows.webhooks import TaskDelivery

APPROVAL_TASK = "approval"
EVALUATION_TASK = "evaluation"
"""The task the built-in lighthouse answers (``workflows/lighthouse.py``)."""
GET_ACTION_TASK = "get-action"
"""The task the built-in remediation service answers (``workflows/get_action.py``)."""
EMIT_WITH_TARGETS_PATCH = "emit-with-targets"
"""From this marker on, a task ``.triggered`` is pushed to the targets ``emit_event`` returned
instead of a separate ``push_targets`` activity's (which is still asked if that lookup failed)."""
CLOSE_BEFORE_END_PATCH = "close-before-end"
"""From this marker on, a task that ended the sequence (aborted, timed out) is closed before the
sequence's ``.finished``: before, the close ran beside it and a poll just after the abort could
still list the task's ``.triggered`` (seen in CI)."""
BUILTIN_LIGHTHOUSE_PATCH = "builtin-lighthouse"
BUILTIN_APPROVAL_PATCH = "builtin-approval"
BUILTIN_GET_ACTION_PATCH = "builtin-get-action"
"""The one task name with special controller semantics: it does not hold the queue slot."""
CONTROLLER_SOURCE = "shipyard-controller"
SPEC_VERSION = "0.2.4"
WAITING_AFTER = 1.0
"""Seconds to wait for the queue lock before the execution shows as ``waiting``."""

Ending = Literal["done", "aborted", "timedOut"]


class SequenceHost(BuiltinHost, Protocol):
    """What a sequence execution needs from its context workflow."""

    project: str
    locks: LockRequester
    approvals: dict[str, Approval]
    """Approvals waiting for a human decision, by triggered id (for the ``approve`` update)."""

    def is_paused(self, stage: str) -> bool:
        """Whether sequences of this stage must not start their next task."""


def _finish_timeout(task: Task, default: timedelta | None) -> timedelta | None:
    raw = (task.properties or {}).get("timeout")
    if not raw:
        return default
    try:
        return parse_duration(str(raw), field=f"tasks.{task.name}.properties.timeout")
    except InvalidInputError as err:
        # Shipyard properties are free-form (Keptn passes them to integrations), so a value that
        # is not a duration must not wedge the sequence: keep the default and say so.
        workflow.logger.warning("task %s: ignoring properties.timeout: %s", task.name, err)
        return default


class SequenceRun:
    """One execution of one sequence in one stage of a Keptn context.

    Args:
        host: the context workflow.
        trigger: the stored ``<stage>.<sequence>.triggered`` wire event.
    """

    def __init__(self, host: SequenceHost, trigger: dict[str, Any]) -> None:
        self.host = host
        self.trigger = trigger
        parsed = parse_event_type(str(trigger["type"]))
        assert isinstance(parsed, SequenceEventType)  # the gateway routes only sequence triggers here
        self.stage, self.sequence = parsed.stage, parsed.sequence
        self.input: dict[str, Any] = dict(trigger.get("data") or {})
        self.scope = Scope(project=host.project, stage=self.stage, service=str(self.input.get("service", "")))
        self.triggered_id = str(trigger["id"])
        self.triggered_at = parse_keptn_time(str(trigger["time"]))
        self.commit: str | None = trigger.get("gitcommitid")
        self.state: SequenceExecutionState = "triggered"
        self.aborted = False
        self.tasks: list[str] = []
        self.previous: list[TaskOutcome] = []
        self.current: TaskTracker | None = None
        self.result: str | None = None
        self.status: str | None = None
        self.message: str | None = None
        self.follow_ups: list[dict[str, Any]] = []
        self._lock_request: str | None = None
        self._service: BuiltinTask | None = None
        """The built-in service answering the current task, if any."""
        self._dirty = True
        self._closed = False

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Execute the sequence to its end; follow-up triggers are left in :attr:`follow_ups`.

        The follow-ups are prepared events, not yet emitted: the context emits those that no
        abort has dropped by the time it picks them up.
        """
        writer = asyncio.create_task(self._write_state())
        try:
            await self._run()
        except GeneratorExit:
            # The workflow instance is being discarded (its coroutines garbage-collected, e.g. a
            # worker shutting down): nothing may be awaited now, and the workflow's replay on
            # another worker does the cleanup.
            raise
        except BaseException:
            await self._wind_up(writer)
            raise
        await self._wind_up(writer)

    async def _wind_up(self, writer: asyncio.Task[None]) -> None:
        """Free the queue slot and write the final picture, however the execution ended."""
        await self._release_lock()
        self._closed = True
        self._changed()
        await writer

    async def _run(self) -> None:
        try:
            snapshot = await calls.load_shipyard(self.host.project, self.stage)
        except ActivityError as err:
            cause = err.cause.message if err.cause is not None else str(err)  # type: ignore[attr-defined]
            await self._end(
                "finished", "fail", "errored", f"Unable to start sequence {self.sequence}: {cause}"
            )
            return
        shipyard = snapshot.shipyard
        problem = unknown_sequence_message(shipyard, self.stage, self.sequence)
        if problem is not None:
            await self._end("finished", "fail", "errored", problem)
            return
        stage = shipyard.stage(self.stage)
        definition = stage.sequence(self.sequence) if stage else None
        assert definition is not None  # unknown_sequence_message returned None
        self.tasks = [task.name for task in definition.tasks]
        self.commit = self.commit or snapshot.commit_id
        ending = await self._run_tasks(list(definition.tasks))
        if ending == "aborted":
            await self._end("aborted", "pass", "aborted", "sequence aborted")
        elif ending == "timedOut":
            await self._end("timedOut", "fail", "errored", self.message)
        else:
            await self._complete(shipyard)

    async def _run_tasks(self, tasks: list[Task]) -> Ending:
        for task in tasks:
            if not await self._await_turn(task):
                return "aborted"
            delay = task.triggered_after_delta()
            if delay > timedelta(0):
                with suppress(asyncio.TimeoutError):
                    await workflow.wait_condition(lambda: self.aborted, timeout=delay)
                if self.aborted:
                    return "aborted"
            tracker = await self._trigger(task)
            ending = await self._await_answers(task, tracker)
            self.host.unregister_task(tracker.triggered_id)
            if ending != "done" and workflow.patched(CLOSE_BEFORE_END_PATCH):
                await calls.close_tasks([tracker.triggered_id])
            else:
                self.host.background(calls.close_tasks([tracker.triggered_id]))
            if ending != "done":
                return ending
            outcome = aggregate_task(task.name, tracker.triggered_id, tracker.finished_data)
            self.previous.append(outcome)
            self._changed()
            if not sequence_continues(outcome):
                break
        return "done"

    async def _await_turn(self, task: Task) -> bool:
        """Wait until the next task may be triggered; False if the sequence was aborted.

        Keptn's rules (§3.6): a paused sequence holds its next task and not the queue slot; an
        approval task does not hold the slot either; every other task needs the slot of
        (project, stage, service), taken in trigger order.
        """
        while not self.aborted:
            if self.host.is_paused(self.stage):
                await self._release_lock()
                self._set_state("paused")
                await workflow.wait_condition(lambda: self.aborted or not self.host.is_paused(self.stage))
                continue
            if task.name == APPROVAL_TASK:
                await self._release_lock()
                self._set_state("waitingForApproval")
                return True
            if self._lock_request is None and not await self._acquire_lock():
                return False
            if self.host.is_paused(self.stage):
                continue  # paused while queued
            self._set_state("started")
            return True
        return False

    async def _acquire_lock(self) -> bool:
        acquire = asyncio.create_task(
            self.host.locks.acquire(
                self.host.project,
                self.stage,
                self.scope.service,
                triggered_at=self.triggered_at,
                label=f"{self.host.keptn_context} {self.stage}.{self.sequence}",
            )
        )
        done, _ = await workflow.wait([acquire], timeout=WAITING_AFTER)
        if not done:
            self._set_state("waiting")
            await workflow.wait_condition(lambda: acquire.done() or self.aborted)
        if not acquire.done():
            acquire.cancel()  # aborted while queued: the requester withdraws the request
            with suppress(asyncio.CancelledError):
                await acquire
            return False
        self._lock_request = acquire.result()
        return True

    async def _release_lock(self) -> None:
        if self._lock_request is not None:
            request, self._lock_request = self._lock_request, None
            await self.host.locks.release(request)

    async def _trigger(self, task: Task) -> TaskTracker:
        payload = next_task_payload(self.input, self.scope, self.previous, task)
        triggered_id = str(workflow.uuid4())
        tracker = TaskTracker(task.name, triggered_id, self.host.settings.completion)
        event = self._event(task_event_type(task.name, EventKind.TRIGGERED), payload, event_id=triggered_id)
        service = self._service = self._builtin_service(task, event, tracker)
        # Registered before the event exists anywhere, so no answer can arrive unrouted.
        self.host.register_task(tracker, self._changed, service.intercept if service else None)
        self.current = tracker
        targets = None
        if workflow.patched(EMIT_WITH_TARGETS_PATCH):
            # emit_event looks the push targets up too: one activity and one workflow task less
            # between storing the task and pushing it (bench/README.md, "Profiles").
            targets = (await calls.emit_event(event, open_task=True, with_targets=True)).targets
        else:
            await calls.emit_event(event, open_task=True)
        self.host.background(TaskDelivery(self.host, event, self._task_over(tracker), targets).run())
        if service is not None:
            self.host.background(service.run())
        self._changed()
        return tracker

    def _task_over(self, tracker: TaskTracker) -> Callable[[], bool]:
        """Whether the sequence stopped waiting for this task (answers then come too late)."""
        return lambda: self.aborted or self.current is not tracker

    def _builtin_service(self, task: Task, event: dict[str, Any], tracker: TaskTracker) -> BuiltinTask | None:
        """The control plane's own answer to a task, if the task is one of Keptn's built-in services'.

        ``workflow.patched`` markers: contexts started before a service existed replay without it.
        """
        settings = self.host.settings
        over = self._task_over(tracker)

        if (
            task.name == EVALUATION_TASK
            and settings.lighthouse
            and workflow.patched(BUILTIN_LIGHTHOUSE_PATCH)
        ):
            return Lighthouse(self.host, event, over)
        if (
            task.name == APPROVAL_TASK
            and settings.approval_service
            and workflow.patched(BUILTIN_APPROVAL_PATCH)
        ):
            return Approval(self.host, event, over, self.host.approvals)
        if (
            task.name == GET_ACTION_TASK
            and settings.remediation_service
            and workflow.patched(BUILTIN_GET_ACTION_PATCH)
        ):
            return GetAction(self.host, event, over)
        return None

    async def _await_answers(self, task: Task, tracker: TaskTracker) -> Ending:
        event_type = task_event_type(task.name, EventKind.TRIGGERED)
        try:
            await workflow.wait_condition(
                lambda: tracker.answered or self.aborted,
                timeout=self.host.settings.started_timeout,
                timeout_summary=f"{event_type} waiting for .started",
            )
        except TimeoutError:
            self.message = (
                f"sequence timed out while waiting for task {event_type} to receive a correlating "
                ".started or .finished event"
            )
            return "timedOut"
        # The built-in approval has its own timeout (properties.timeout with an outcome); a human
        # taking long is not a stuck integration.
        builtin_approval = isinstance(self._service, Approval)
        finish_timeout = (
            None if builtin_approval else _finish_timeout(task, self.host.settings.finished_timeout)
        )
        try:
            await workflow.wait_condition(
                lambda: tracker.complete or self.aborted,
                timeout=finish_timeout,
                timeout_summary=f"{event_type} waiting for .finished",
            )
        except TimeoutError:
            self.message = (
                f"sequence timed out after {format_duration(finish_timeout or timedelta(0))} while "
                f"waiting for task {event_type} to "
                "receive a .finished event from every integration that started it"
            )
            return "timedOut"
        return "aborted" if self.aborted else "done"

    # -- ending ------------------------------------------------------------------------------

    async def _complete(self, shipyard: Shipyard) -> None:
        last = self.previous[-1] if self.previous else None
        data = sequence_finished_data(
            self.scope, self._labels(), self.current.last_finished_data if self.current else None, last
        )
        self.result, self.status = data.get("result"), data.get("status")
        await self._emit_sequence_finished(data)
        self.current = None
        self._set_state("finished")
        result = str(self.result or "fail")
        for stage, sequence in follow_up_sequences(
            shipyard, self.stage, self.sequence, result, last.name if last else None
        ):
            payload = next_task_payload(self.input, self.scope, self.previous, None)
            payload["stage"] = stage
            # Only prepared here: the context emits it when it picks it up, unless an abort that
            # arrived meanwhile dropped it.
            self.follow_ups.append(
                self._event(f"sh.keptn.event.{stage}.{sequence}.triggered", payload, commit=False)
            )

    async def _end(
        self, state: SequenceExecutionState, result: str, status: str, message: str | None
    ) -> None:
        self.result, self.status, self.message = result, status, message
        data: dict[str, Any] = {
            "project": self.scope.project,
            "stage": self.stage,
            "service": self.scope.service,
        }
        if self._labels():
            data["labels"] = self._labels()
        data.update(result=result, status=status, message=message or "")
        await self._emit_sequence_finished(data)
        self.current = None
        self._set_state(state)

    async def _emit_sequence_finished(self, data: dict[str, Any]) -> None:
        finished = self._event(f"sh.keptn.event.{self.stage}.{self.sequence}.finished", data)
        finished["triggeredid"] = self.triggered_id
        await calls.emit_event(finished)
        self.host.background(calls.push(finished))

    # -- helpers -----------------------------------------------------------------------------

    def _labels(self) -> dict[str, str] | None:
        labels = self.input.get("labels")
        return labels if isinstance(labels, dict) else None

    def _event(
        self, event_type: str, data: dict[str, Any], *, event_id: str | None = None, commit: bool = True
    ) -> dict[str, Any]:
        event = KeptnEvent(
            id=event_id or str(workflow.uuid4()),
            source=CONTROLLER_SOURCE,
            type=event_type,
            time=workflow.now(),
            shkeptncontext=self.host.keptn_context,
            gitcommitid=self.commit if commit else None,
            shkeptnspecversion=SPEC_VERSION,
            data=data,
        )
        return event.to_wire()

    def _set_state(self, state: SequenceExecutionState) -> None:
        if state != self.state:
            self.state = state
            self._changed()

    def _changed(self) -> None:
        self._dirty = True

    async def _write_state(self) -> None:
        """Write the execution's picture whenever it changed, one write at a time, newest last.

        One writer per execution keeps the writes ordered and coalesces bursts of changes.
        """
        while True:
            await workflow.wait_condition(lambda: self._dirty or self._closed)
            if not self._dirty:
                return
            self._dirty = False
            await calls.record_sequence(self.snapshot())

    def snapshot(self) -> SequenceExecutionUpdate:
        """The execution's current picture for the state views."""
        current = None
        if self.current is not None:
            current = CurrentTaskSnapshot(
                name=self.current.name,
                triggeredID=self.current.triggered_id,
                events=[
                    TaskEventSnapshot(
                        eventType=str(ev.get("type")),
                        source=str(ev.get("source")),
                        result=(ev.get("data") or {}).get("result"),
                        status=(ev.get("data") or {}).get("status"),
                        time=str(ev.get("time")),
                    )
                    for ev in self.current.events
                ],
            )
        return SequenceExecutionUpdate(
            triggered_id=self.triggered_id,
            keptn_context=self.host.keptn_context,
            project=self.host.project,
            stage=self.stage,
            service=self.scope.service,
            sequence=self.sequence,
            state=self.state,
            triggered_at=self.triggered_at,
            updated_at=workflow.now(),
            tasks=self.tasks,
            current_task=current,
            previous_tasks=[
                PreviousTaskSnapshot(
                    name=o.name, triggeredID=o.triggered_id, result=o.result, status=o.status
                )
                for o in self.previous
            ],
            result=self.result,
            status=self.status,
            message=self.message,
            input_properties=self.input,
            gitcommitid=self.commit,
        )
