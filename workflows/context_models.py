"""Inputs, signals, queries and results of the Keptn context workflow (one pydantic model each)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

CONTEXT_WORKFLOW = "KeptnContext"
"""Workflow type name of the context workflow."""
SEQUENCE_TRIGGERED_SIGNAL = "sequence_triggered"
TASK_EVENT_SIGNAL = "task_event"
CONTROL_SIGNAL = "control"
STATE_QUERY = "state"
APPROVE_UPDATE = "approve"
"""The update an operator sends (e.g. from the Temporal Web UI) to decide an open approval."""

TaskCompletion = Literal["keptn", "per-source"]
"""How a task's answers are counted.

``keptn``: finished when as many ``.finished`` as ``.started`` events arrived (at least one), as
Keptn counted (duplicates by event id are ignored). ``per-source``: finished when every source that
answered has sent a ``.finished``; a ``.finished`` without a ``.started`` counts for its source.
"""


def context_workflow_id(project: str, keptn_context: str) -> str:
    """The id of a Keptn context's workflow: derivable from any of its events."""
    return f"keptn-{project}-{keptn_context}"


class TaskSettings(BaseModel):
    """Timeouts and counting rules a context runs with, fixed when the context starts."""

    started_timeout: timedelta = timedelta(minutes=10)
    """Keptn's ``TASK_STARTED_WAIT_DURATION``: the first answer must come within this long."""
    finished_timeout: timedelta | None = None
    """Beyond Keptn: once answered, the task must finish within this long. None = wait forever
    (Keptn). A task's shipyard ``properties.timeout`` (a Go duration) overrides it."""
    completion: TaskCompletion = "keptn"
    lighthouse: bool = True
    """Whether the built-in lighthouse answers ``evaluation`` tasks."""
    approval_service: bool = True
    """Whether the built-in approval service answers ``approval`` tasks."""
    remediation_service: bool = True
    """Whether the built-in remediation service answers ``get-action`` tasks."""
    get_sli_timeout: timedelta = timedelta(minutes=10)
    """Beyond Keptn: how long an evaluation waits for ``get-sli.finished``."""


class SequenceTriggered(BaseModel):
    """Signal: a ``sh.keptn.event.<stage>.<sequence>.triggered`` event was stored."""

    event: dict[str, Any]
    """The stored wire event."""


class TaskEventReceived(BaseModel):
    """Signal: an integration's task event (``.started``, ``.status.changed``, ``.finished``) was stored."""

    event: dict[str, Any]


class ControlRequest(BaseModel):
    """Signal: pause, resume or abort the context's sequences (Keptn's sequence control, §3.7)."""

    state: Literal["pause", "resume", "abort"]
    stage: str | None = None
    """Only the sequences of this stage; None for every stage of the context."""


class ContextInput(BaseModel):
    """Input of the context workflow, and what it carries over a continue-as-new."""

    project: str
    keptn_context: str
    settings: TaskSettings = Field(default_factory=TaskSettings)
    pending: list[SequenceTriggered] = Field(default_factory=list)
    """Sequence triggers not yet started (carried over a continue-as-new)."""
    seen_event_ids: list[str] = Field(default_factory=list)
    """Recently applied event ids, so duplicates arriving after a continue-as-new are ignored."""
    paused_stages: list[str] = Field(default_factory=list)
    paused_all: bool = False
    sequences_run: int = 0
    """How many sequence executions earlier runs of this context performed."""


class SequenceSummary(BaseModel):
    """One sequence execution of the context, as the ``state`` query reports it."""

    triggered_id: str
    stage: str
    sequence: str
    state: str
    current_task: str | None = None
    result: str | None = None
    status: str | None = None


class ContextState(BaseModel):
    """Answer of the ``state`` query: what the context is doing right now."""

    project: str
    keptn_context: str
    running: list[SequenceSummary]
    pending: int
    paused_all: bool
    paused_stages: list[str]
    sequences_run: int


class ContextResult(BaseModel):
    """Result of a context workflow run that ended because nothing was left to do."""

    sequences_run: int


class ApprovalDecision(BaseModel):
    """Update ``approve``: a human's decision on an open approval of the context.

    What an operator types into the Temporal Web UI's "Send an Update" dialog, e.g.
    ``{"triggeredid": "…", "approved": true, "user": "alice", "message": "looks good"}``.
    """

    triggeredid: str | None = None
    """The ``approval.triggered`` event id; may be left out when exactly one approval is open."""
    approved: bool
    """true to approve, false to decline."""
    user: str = Field(min_length=1)
    """Who decides; recorded in ``approval.finished``."""
    message: str = ""
    """Why; recorded in ``approval.finished``."""


class ApprovalState(BaseModel):
    """Answer of the ``approve`` update."""

    triggeredid: str
    decision: Literal["approved", "declined", "waiting"]
    """``waiting`` while more approvers are needed."""
    approvers: list[str]
    """Users who approved so far."""
    required: int
    """Distinct approvers the task needs."""
