"""Keptn's sequence views: ``GET /controlPlane/v1/sequence/{project}`` and ``/sequence-execution``.

Both read what the context workflow recorded (``store.sequences``); the API never changes
sequence state. Empty query values count as absent, as in Keptn.

Differences from Keptn: an unknown ``state``/``status`` value, a bad timestamp or page key is a 400
naming the parameter (Keptn compared strings and answered an empty list); ``GET /sequence`` answers
404 for an unknown project (Keptn: an empty list); ``GET /sequence-execution`` pages by default (20,
at most 100; Keptn returned everything without ``pageSize``); every stage entry may carry
``blockedBy``, the Keptn context a waiting sequence queues behind (keptn#7635).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import Principal, scoped
from api.deps import PoolDep
from api.schemas.common import DEFAULT_PAGE_SIZE, error_responses, page_offset
from api.schemas.sequences import (
    CurrentTask,
    ExecutionScope,
    ExecutionStatus,
    PreviousTask,
    SequenceDefinition,
    SequenceExecution,
    SequenceExecutions,
    SequenceState,
    SequenceStateEvaluation,
    SequenceStateEvent,
    SequenceStates,
    SequenceStateStage,
    SequenceTask,
    TaskEvent,
)
from capstan.scopes import Scope
from keptn.errors import InvalidInputError, NotFoundError
from keptn.events import format_keptn_time
from store import sequence_states, sequences
from store.events import parse_event_time

router = APIRouter(prefix="/controlPlane/v1", tags=["shipyard-controller"])

TIME_HELP = "RFC 3339 / Keptn time, e.g. 2024-01-02T03:04:05.000Z (UTC when no offset is given)"
MAX_EXECUTION_PAGE_SIZE = 100

EventsReader = Annotated[Principal, scoped(Scope.EVENTS_READ)]


def _given(value: str | None) -> str | None:
    return value if value else None


def _time(value: str | None, field: str) -> datetime | None:
    return parse_event_time(value, field=field) if value else None


def _one_of(value: str | None, allowed: tuple[str, ...], field: str) -> str | None:
    if value and value not in allowed:
        raise InvalidInputError(f"{field} must be one of {', '.join(allowed)}; got {value!r}", field=field)
    return value or None


async def _require_project(pool: PoolDep, project: str) -> None:
    if not await sequences.project_exists(pool, project):
        raise NotFoundError(f"project '{project}' not found", field="project")


def _event(event: sequence_states.StateEvent | None) -> SequenceStateEvent | None:
    if event is None:
        return None
    return SequenceStateEvent(type=event.type, id=event.id, time=format_keptn_time(event.time))


def _stage(stage: sequence_states.StageState) -> SequenceStateStage:
    evaluation = stage.latest_evaluation
    return SequenceStateStage(
        name=stage.name,
        image=stage.image,
        state=stage.state,
        latestEvaluation=(
            SequenceStateEvaluation(result=evaluation.result, score=evaluation.score) if evaluation else None
        ),
        latestEvent=_event(stage.latest_event),
        latestFailedEvent=_event(stage.latest_failed_event),
        blockedBy=stage.blocked_by,
    )


def _state(state: sequence_states.SequenceState) -> SequenceState:
    return SequenceState(
        name=state.name,
        service=state.service,
        project=state.project,
        time=format_keptn_time(state.time),
        shkeptncontext=state.keptn_context,
        state=state.state,
        problemTitle=state.problem_title,
        stages=[_stage(s) for s in state.stages],
    )


@router.get(
    "/sequence/{project}", response_model=SequenceStates, responses=error_responses(400, 401, 404, 503)
)
async def get_sequence_states(
    pool: PoolDep,
    principal: EventsReader,
    project: str,
    name: Annotated[
        str | None, Query(description="the name of the sequence that started the context")
    ] = None,
    state: Annotated[
        str | None, Query(description=f"the overall state: {', '.join(sequences.VIEW_STATES)}")
    ] = None,
    fromTime: Annotated[str | None, Query(description=f"only contexts triggered after; {TIME_HELP}")] = None,
    beforeTime: Annotated[
        str | None, Query(description=f"only contexts triggered before; {TIME_HELP}")
    ] = None,
    keptnContext: Annotated[str | None, Query(description="comma-separated Keptn contexts")] = None,
    pageSize: Annotated[
        int, Query(ge=1, le=sequence_states.MAX_PAGE_SIZE, description="states per page")
    ] = DEFAULT_PAGE_SIZE,
    nextPageKey: Annotated[str | None, Query(description="nextPageKey of the previous page")] = None,
) -> SequenceStates:
    """Keptn's sequence state view of a project: one entry per Keptn context, newest first."""
    principal.check_project(project)
    contexts = tuple(c for c in (keptnContext or "").replace(" ", "").split(",") if c)
    query = sequence_states.StateQuery(
        project=project,
        name=_given(name),
        state=_one_of(state, sequences.VIEW_STATES, "state"),
        from_time=_time(fromTime, "fromTime"),
        before_time=_time(beforeTime, "beforeTime"),
        keptn_contexts=contexts,
        page_size=pageSize,
        offset=page_offset(nextPageKey),
    )
    await _require_project(pool, project)
    page = await sequence_states.get_sequence_states(pool, query)
    return SequenceStates(
        states=[_state(s) for s in page.states],
        nextPageKey=page.next_offset,
        pageSize=pageSize,
        totalCount=page.total_count,
    )


def _execution(record: sequences.ExecutionRecord) -> SequenceExecution:
    current = record.current_task or {}
    return SequenceExecution(
        id=record.triggered_id,
        sequence=SequenceDefinition(name=record.sequence, tasks=[SequenceTask(name=t) for t in record.tasks]),
        status=ExecutionStatus(
            state=record.state,
            previousTasks=[PreviousTask.model_validate(t) for t in record.previous_tasks],
            currentTask=CurrentTask(
                name=current.get("name") or "",
                triggeredID=current.get("triggeredID") or "",
                events=[
                    TaskEvent.model_validate({k: v for k, v in event.items() if v is not None})
                    for event in current.get("events") or []
                ],
            ),
        ),
        scope=ExecutionScope(
            project=record.project,
            stage=record.stage,
            service=record.service,
            keptnContext=record.keptn_context,
            triggeredId=record.triggered_id,
            eventType=f"sh.keptn.event.{record.stage}.{record.sequence}.triggered",
            gitcommitid=record.gitcommitid,
        ),
        inputProperties=record.input_properties,
        triggeredAt=format_keptn_time(record.triggered_at),
    )


@router.get(
    "/sequence-execution", response_model=SequenceExecutions, responses=error_responses(400, 401, 404, 503)
)
async def get_sequence_executions(
    pool: PoolDep,
    principal: EventsReader,
    project: Annotated[str, Query(description="the project (required)")],
    stage: Annotated[str | None, Query(description="the stage")] = None,
    service: Annotated[str | None, Query(description="the service")] = None,
    name: Annotated[str | None, Query(description="the sequence name")] = None,
    status: Annotated[
        str | None, Query(description=f"the execution state: {', '.join(sequences.EXECUTION_STATES)}")
    ] = None,
    keptnContext: Annotated[str | None, Query(description="the Keptn context")] = None,
    pageSize: Annotated[
        int, Query(ge=1, le=MAX_EXECUTION_PAGE_SIZE, description="executions per page")
    ] = DEFAULT_PAGE_SIZE,
    nextPageKey: Annotated[str | None, Query(description="nextPageKey of the previous page")] = None,
) -> SequenceExecutions:
    """Keptn's raw sequence executions: one per sequence run per stage, newest trigger first."""
    if not project:
        raise InvalidInputError("query parameter 'project' must not be empty", field="project")
    principal.check_project(project)
    query = sequences.ExecutionQuery(
        project=project,
        stage=_given(stage),
        service=_given(service),
        name=_given(name),
        state=_one_of(status, sequences.EXECUTION_STATES, "status"),
        keptn_context=_given(keptnContext),
        page_size=pageSize,
        offset=page_offset(nextPageKey),
    )
    await _require_project(pool, project)
    page = await sequences.query_executions(pool, query)
    executions = [_execution(r) for r in page.executions]
    return SequenceExecutions(
        SequenceExecutions=executions,
        nextPageKey=page.next_offset,
        pageSize=len(executions),
        totalCount=page.total_count,
    )
