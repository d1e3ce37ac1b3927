"""What the context workflow reports about a sequence execution at every state change.

The context workflow is the only writer of sequence state (DESIGN invariant); it sends one of these
to the ``record_sequence`` activity on every transition, and the API's sequence views read what
that activity stored. The shape follows Keptn's ``SequenceExecution`` (behaviour spec §3.1).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

SequenceExecutionState = Literal[
    "triggered", "waiting", "started", "waitingForApproval", "paused", "finished", "aborted", "timedOut"
]
"""Keptn's execution states, plus ``waiting`` (queued behind another sequence) and ``aborted``,
which Keptn showed only in its state view."""


class TaskEventSnapshot(BaseModel):
    """One answer to the current task (Keptn's ``TaskEvent``)."""

    eventType: str
    source: str
    result: str | None = None
    status: str | None = None
    time: str
    """Keptn wire time of the answer."""


class CurrentTaskSnapshot(BaseModel):
    """The task being executed (Keptn's ``TaskExecutionState``)."""

    name: str
    triggeredID: str
    events: list[TaskEventSnapshot] = Field(default_factory=list)


class PreviousTaskSnapshot(BaseModel):
    """A finished task (Keptn's ``TaskExecutionResult`` without its properties)."""

    name: str
    triggeredID: str
    result: str
    status: str


class SequenceExecutionUpdate(BaseModel):
    """The whole current picture of one sequence execution; the latest update replaces the last.

    One execution is one run of one sequence in one stage of one Keptn context; a loop iteration
    (a sequence re-triggering itself) is a new execution with a new ``triggered_id``.
    """

    triggered_id: str
    """Id of the ``<stage>.<sequence>.triggered`` event: the execution's key."""
    keptn_context: str
    project: str
    stage: str
    service: str
    sequence: str
    """The sequence name."""
    state: SequenceExecutionState
    triggered_at: datetime
    """When the sequence was triggered (its place in the queue)."""
    updated_at: datetime
    """When this picture was taken (``workflow.now()``); a store ignores an older picture."""
    tasks: list[str] = Field(default_factory=list)
    """The sequence's task names, in order (Keptn's snapshot of the shipyard sequence)."""
    current_task: CurrentTaskSnapshot | None = None
    previous_tasks: list[PreviousTaskSnapshot] = Field(default_factory=list)
    result: str | None = None
    """Set when the execution ended: pass, warning or fail."""
    status: str | None = None
    """Set when the execution ended: succeeded, errored, aborted or unknown."""
    message: str | None = None
    """Why it ended, when that is worth saying (timeouts, unknown sequences, aborts)."""
    input_properties: dict[str, Any] = Field(default_factory=dict)
    """``data`` of the triggering event (the image to deploy, a problem's title, labels)."""
    gitcommitid: str | None = None
    """The resource version the sequence runs with."""
    blocked_by: str | None = None
    """While ``waiting``: the Keptn context holding the project/stage/service slot, if known."""
