"""Keptn's mongodb-datastore: ``/api/mongodb-datastore/event`` and ``/event/type/{eventType}``.

Empty query values count as absent, as in Keptn. Where Capstan is stricter: a bad timestamp, page
key or filter is a 400 naming the parameter (Keptn compared timestamps as strings and ignored
what it could not parse), and ``root`` is a boolean (Keptn took any value, even ``false``, as true).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import Principal, scoped
from api.deps import PoolDep
from api.schemas.common import DEFAULT_PAGE_SIZE, error_responses, page_offset
from api.schemas.datastore import EventsByType, EventsPage
from capstan.scopes import Scope
from keptn.errors import InvalidInputError
from store.events import EventQuery, EventTypeQuery, get_events, get_events_by_type, parse_event_time
from store.filters import FilterClause, parse_filter

router = APIRouter(prefix="/mongodb-datastore", tags=["mongodb-datastore"])

EventsReader = Annotated[Principal, scoped(Scope.EVENTS_READ)]
PROJECT_KEY = "data.project"

TIME_HELP = "RFC 3339 / Keptn time, e.g. 2024-01-02T03:04:05.000Z (UTC when no offset is given)"


def _given(value: str | None) -> str | None:
    return value if value else None


def _time(value: str | None, field: str) -> datetime | None:
    return parse_event_time(value, field=field) if value else None


@router.get("/event", response_model=EventsPage, responses=error_responses(400, 401, 503))
async def list_events(
    pool: PoolDep,
    principal: EventsReader,
    keptnContext: Annotated[str | None, Query(description="shkeptncontext of the events")] = None,
    type: Annotated[str | None, Query(description="event type")] = None,
    project: Annotated[str | None, Query(description="data.project")] = None,
    stage: Annotated[str | None, Query(description="data.stage")] = None,
    service: Annotated[str | None, Query(description="data.service")] = None,
    eventID: Annotated[str | None, Query(description="event id")] = None,
    source: Annotated[str | None, Query(description="event source")] = None,
    fromTime: Annotated[str | None, Query(description=f"only events after this time; {TIME_HELP}")] = None,
    beforeTime: Annotated[str | None, Query(description=f"only events before this time; {TIME_HELP}")] = None,
    root: Annotated[
        bool, Query(description="only the first (oldest) event of each Keptn context: the sequence triggers")
    ] = False,
    pageSize: Annotated[int, Query(ge=1, le=100, description="events per page")] = DEFAULT_PAGE_SIZE,
    nextPageKey: Annotated[str | None, Query(description="nextPageKey of the previous page")] = None,
) -> EventsPage:
    """Stored events matching every given filter, newest first. keptnContext or project is required.

    A token restricted to a project sees only that project's events.
    """
    if not keptnContext and not project:
        raise InvalidInputError(
            "either keptnContext or project must be given (query parameters 'keptnContext', 'project')",
            field="keptnContext",
        )
    query = EventQuery(
        keptn_context=_given(keptnContext),
        type=_given(type),
        project=principal.project_filter(_given(project)),
        stage=_given(stage),
        service=_given(service),
        event_id=_given(eventID),
        source=_given(source),
        from_time=_time(fromTime, "fromTime"),
        before_time=_time(beforeTime, "beforeTime"),
        root=root,
        page_size=pageSize,
        offset=page_offset(nextPageKey),
    )
    page = await get_events(pool, query)
    return EventsPage(
        events=page.events,
        nextPageKey=page.next_page_key,
        pageSize=page.page_size,
        totalCount=page.total_count,
    )


def _restricted(principal: Principal, clauses: list[FilterClause]) -> tuple[FilterClause, ...]:
    """The filter, plus ``data.project:<P>`` for a token restricted to project P.

    A clause naming another project is a 403, not an empty answer, as everywhere else.
    """
    if principal.project is None:
        return tuple(clauses)
    for clause in clauses:
        if clause.key == PROJECT_KEY:
            for value in clause.values:
                principal.check_project(value, field=f"filter {PROJECT_KEY}")
    return (*clauses, FilterClause(PROJECT_KEY, (principal.project,)))


@router.get("/event/type/{eventType}", response_model=EventsByType, responses=error_responses(400, 401, 503))
async def list_events_by_type(
    pool: PoolDep,
    principal: EventsReader,
    eventType: str,
    filter: Annotated[
        str,
        Query(
            description="clauses 'key:value' or 'key:v1,v2' (any of) joined by ' AND '; keys are JSON "
            "paths such as data.project, data.result, shkeptncontext, source, id, triggeredid; "
            "data.project or shkeptncontext is required"
        ),
    ],
    excludeInvalidated: Annotated[
        bool, Query(description="leave out events whose triggeredid was invalidated (<task>.invalidated)")
    ] = False,
    fromTime: Annotated[str | None, Query(description=f"only events after this time; {TIME_HELP}")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="at most this many events")] = DEFAULT_PAGE_SIZE,
) -> EventsByType:
    """Stored events of one type matching a filter, newest first.

    A token restricted to a project sees only that project's events.
    """
    query = EventTypeQuery(
        event_type=eventType,
        clauses=_restricted(principal, parse_filter(filter)),
        exclude_invalidated=excludeInvalidated,
        from_time=_time(fromTime, "fromTime"),
        limit=limit,
    )
    return EventsByType(events=await get_events_by_type(pool, query))
