"""Open ``.triggered`` events for pull clients: ``GET /controlPlane/v1/event/triggered/{eventType}``.

Remote execution planes (go-utils' HTTP event source, the distributor in HTTP mode) and Bridge-like
clients poll this for each subscription; an event is listed from the moment the control plane
emits it until its task is answered, aborted or timed out. Empty query values count as absent, and
an unknown ``project`` is a 404, as in Keptn.

Any other event type (``.finished``, a wildcard pattern) is answered with an empty list, as Keptn
did, not with a 400: go-utils' poller polls *every* subscription of an integration, stops at the
first failing one and gives up for good after ten failed polls, so a 400 would silently cut off
integrations that also subscribe to non-``.triggered`` events. ``pageSize`` is always in the body
(Keptn left it out).

A token restricted to project P lists only P's events; without a ``project`` parameter that is an
empty list while P does not exist (not a 404: the poller did not name the project).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import Principal, scoped
from api.deps import PoolDep
from api.schemas.common import DEFAULT_PAGE_SIZE, PG_BIGINT_MAX, error_responses, page_offset
from api.schemas.uniform import OpenEventsPage
from capstan.scopes import Scope
from keptn.errors import NotFoundError
from store.open_events import OpenTriggeredQuery, list_open_triggered

router = APIRouter(prefix="/controlPlane/v1", tags=["shipyard-controller"])


def _given(value: str | None) -> str | None:
    return value if value else None


@router.get(
    "/event/triggered/{eventType}",
    response_model=OpenEventsPage,
    responses=error_responses(400, 401, 404, 503),
)
async def list_open_triggered_events(
    pool: PoolDep,
    principal: Annotated[Principal, scoped(Scope.EVENTS_READ)],
    eventType: str,
    eventID: Annotated[str | None, Query(description="event id")] = None,
    project: Annotated[
        str | None, Query(description="data.project; 404 if the project does not exist")
    ] = None,
    stage: Annotated[str | None, Query(description="data.stage")] = None,
    service: Annotated[str | None, Query(description="data.service")] = None,
    pageSize: Annotated[
        int, Query(ge=1, le=PG_BIGINT_MAX, description="events per page")
    ] = DEFAULT_PAGE_SIZE,
    nextPageKey: Annotated[str | None, Query(description="nextPageKey of the previous page")] = None,
) -> OpenEventsPage:
    """Open (not yet answered, aborted or timed-out) ``.triggered`` events of one type, newest first."""
    query = OpenTriggeredQuery(
        event_type=eventType,
        event_id=_given(eventID),
        project=principal.project_filter(_given(project)),
        stage=_given(stage),
        service=_given(service),
        page_size=pageSize,
        offset=page_offset(nextPageKey),
    )
    try:
        page = await list_open_triggered(pool, query)
    except NotFoundError:
        if _given(project):
            raise
        return OpenEventsPage(events=[], nextPageKey="0", pageSize=pageSize, totalCount=0)
    return OpenEventsPage(
        events=page.events,
        nextPageKey=page.next_page_key,
        pageSize=page.page_size,
        totalCount=page.total_count,
    )
