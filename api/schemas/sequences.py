"""Bodies of Keptn's sequence views: ``GET /sequence/{project}`` and ``GET /sequence-execution``.

Field names and omissions follow Keptn's Go structs (go-utils ``SequenceState``, shipyard-controller
``SequenceExecution`` and ``GetSequenceExecutionResponse``); where Keptn omitted an empty field
(``omitempty``) it is omitted here too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


def _absent(value: Any) -> bool:
    return value is None


class SequenceStateEvaluation(BaseModel):
    """The newest lighthouse evaluation of a stage."""

    result: str = Field(description="pass, warning or fail")
    score: float = Field(description="the evaluation score, 0-100")


class SequenceStateEvent(BaseModel):
    """An event of the stage's sequences."""

    type: str
    id: str
    time: str = Field(description="Keptn time of the event, e.g. 2024-01-02T03:04:05.000Z")


class SequenceStateStage(BaseModel):
    """One stage of a sequence state (Keptn's ``SequenceStateStage``)."""

    name: str
    image: str | None = Field(
        default=None,
        description="image of the stage's newest deployment.triggered; absent before one",
        exclude_if=_absent,
    )
    state: str = Field(
        description="triggered while the stage's sequence runs, paused, or the status of its "
        ".finished: succeeded, errored, aborted, unknown"
    )
    latestEvaluation: SequenceStateEvaluation | None = Field(default=None, exclude_if=_absent)
    latestEvent: SequenceStateEvent | None = Field(default=None, exclude_if=_absent)
    latestFailedEvent: SequenceStateEvent | None = Field(
        default=None, description="newest event with result fail or status errored", exclude_if=_absent
    )
    blockedBy: str | None = Field(
        default=None,
        description="Capstan extension: while the stage's sequence waits in the queue of its "
        "project/stage/service, the Keptn context holding it",
        exclude_if=_absent,
    )


class SequenceState(BaseModel):
    """The state of one Keptn context (Keptn's ``SequenceState``)."""

    name: str = Field(description="the sequence that started the context")
    service: str
    project: str
    time: str = Field(description="Keptn time of the context's first sequence trigger")
    shkeptncontext: str
    state: str = Field(description="triggered, started, waiting, paused, finished, aborted or timedOut")
    problemTitle: str | None = Field(
        default=None, description="the problem of a remediation sequence", exclude_if=_absent
    )
    stages: list[SequenceStateStage]


class SequenceStates(BaseModel):
    """A page of sequence states, newest first (Keptn's ``SequenceStates``)."""

    states: list[SequenceState]
    nextPageKey: int | None = Field(
        default=None, description="offset of the next page; absent on the last page", exclude_if=_absent
    )
    pageSize: int = Field(description="the requested page size")
    totalCount: int = Field(description="how many contexts match in all")


class SequenceTask(BaseModel):
    """A task of the sequence definition."""

    name: str


class SequenceDefinition(BaseModel):
    """The sequence as it was when triggered (Keptn's ``keptnv2.Sequence``, names only)."""

    name: str
    tasks: list[SequenceTask]


class TaskEvent(BaseModel):
    """An answer to the current task (Keptn's ``TaskEvent``, without ``properties``)."""

    eventType: str
    source: str
    result: str = ""
    status: str = ""
    time: str


class CurrentTask(BaseModel):
    """The task being executed; empty strings when there is none (as Keptn's zero value)."""

    name: str = ""
    triggeredID: str = ""
    events: list[TaskEvent] = Field(default_factory=list)


class PreviousTask(BaseModel):
    """A completed task with its aggregated outcome."""

    name: str
    triggeredID: str
    result: str
    status: str


class ExecutionStatus(BaseModel):
    """Where the execution stands."""

    state: str = Field(
        description="triggered, waiting, started, waitingForApproval, paused, finished, aborted or timedOut"
    )
    previousTasks: list[PreviousTask]
    currentTask: CurrentTask


class ExecutionScope(BaseModel):
    """What the execution runs on (Keptn's ``EventScope``)."""

    project: str
    stage: str
    service: str
    keptnContext: str
    triggeredId: str = Field(description="id of the <stage>.<sequence>.triggered event")
    eventType: str = Field(description="type of that event")
    gitcommitid: str | None = Field(default=None, exclude_if=_absent)


class SequenceExecution(BaseModel):
    """One run of one sequence in one stage (Keptn's ``SequenceExecution``)."""

    id: str = Field(serialization_alias="_id", description="the triggeredId")
    sequence: SequenceDefinition
    status: ExecutionStatus
    scope: ExecutionScope
    inputProperties: dict[str, Any] = Field(description="data of the triggering event")
    triggeredAt: str = Field(description="Keptn time of the trigger")


class SequenceExecutions(BaseModel):
    """A page of executions, newest trigger first (Keptn's ``GetSequenceExecutionResponse``).

    Keptn's Go struct had no JSON tag on the list, so its key is ``SequenceExecutions``.
    """

    SequenceExecutions: list[SequenceExecution]
    nextPageKey: int | None = Field(
        default=None, description="offset of the next page; absent on the last page", exclude_if=_absent
    )
    pageSize: int = Field(description="how many executions this page holds (Keptn's meaning)")
    totalCount: int = Field(description="how many executions match in all")
