"""Error logs of integrations: ``GET|POST|DELETE /controlPlane/v1/log`` (Keptn's log handler).

Entries older than ``LOG_TTL`` (setting ``integration_log_ttl``) are never returned. Differences
from Keptn: a bad ``fromTime``/``beforeTime``/``nextPageKey`` or entry ``time`` is a 400 naming it
(Keptn answered 404 "unable to retrieve logs" or ignored it), and timestamps may carry any RFC 3339
offset (Keptn required ``2006-01-02T15:04:05.000Z``).

Reading needs the scope ``integrations:read``, writing and deleting ``integrations:write``; logs
belong to integrations, not projects, so a token restricted to a project gets 403.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import scoped
from api.deps import PoolDep, ServicesDep
from api.schemas.common import PG_BIGINT_MAX, error_responses, page_offset
from api.schemas.uniform import CreateLogsBody, EmptyBody, LogEntryOut, LogsPage, go_time
from capstan.scopes import Scope
from store import integration_logs as log_store
from store.events import parse_event_time

router = APIRouter(prefix="/controlPlane/v1", tags=["log"])

_GO_ZERO_DATE = date(1, 1, 1)  # Go's zero time.Time, which Keptn replaced by now


def _log_ttl(services: ServicesDep) -> timedelta:
    return services.settings.integration_log_ttl


LogTTL = Annotated[timedelta, Depends(_log_ttl)]
_READ = scoped(Scope.INTEGRATIONS_READ, all_projects=True)
_WRITE = scoped(Scope.INTEGRATIONS_WRITE, all_projects=True)
TIME_HELP = "RFC 3339, e.g. 2024-01-02T03:04:05.000Z (inclusive)"


def _time(value: str | None, field: str) -> datetime | None:
    return parse_event_time(value, field=field) if value else None


def _query(integrationId: str | None, fromTime: str | None, beforeTime: str | None) -> log_store.LogQuery:
    return log_store.LogQuery(
        integration_id=integrationId or None,
        from_time=_time(fromTime, "fromTime"),
        before_time=_time(beforeTime, "beforeTime"),
    )


@router.post(
    "/log", response_model=EmptyBody, responses=error_responses(400, 401, 503), dependencies=[_WRITE]
)
async def create_log_entries(pool: PoolDep, ttl: LogTTL, body: CreateLogsBody) -> EmptyBody:
    """Store error log entries; an entry without ``time`` (or with Go's zero time) happened now."""
    entries = []
    for index, entry in enumerate(body.logs):
        when = _time(entry.time, f"logs[{index}].time")
        if when is not None and when.date() == _GO_ZERO_DATE:
            when = None
        entries.append(
            log_store.LogEntry(
                integration_id=entry.integrationid,
                message=entry.message,
                time=when,
                keptn_context=entry.shkeptncontext,
                task=entry.task,
                triggered_id=entry.triggeredid,
                git_commit_id=entry.gitcommitid,
            )
        )
    await log_store.create_log_entries(pool, entries, ttl=ttl)
    return EmptyBody()


@router.get("/log", response_model=LogsPage, responses=error_responses(400, 401, 503), dependencies=[_READ])
async def get_log_entries(
    pool: PoolDep,
    ttl: LogTTL,
    integrationId: Annotated[str | None, Query(description="the integration's id")] = None,
    fromTime: Annotated[str | None, Query(description=f"only entries at or after; {TIME_HELP}")] = None,
    beforeTime: Annotated[str | None, Query(description=f"only entries at or before; {TIME_HELP}")] = None,
    pageSize: Annotated[
        int | None, Query(ge=1, le=PG_BIGINT_MAX, description="entries per page; all when absent")
    ] = None,
    nextPageKey: Annotated[str | None, Query(description="nextPageKey of the previous page")] = None,
) -> LogsPage:
    """Error log entries, newest first."""
    base = _query(integrationId, fromTime, beforeTime)
    query = log_store.LogQuery(
        integration_id=base.integration_id,
        from_time=base.from_time,
        before_time=base.before_time,
        page_size=pageSize,
        offset=page_offset(nextPageKey),
    )
    page = await log_store.get_log_entries(pool, query, ttl=ttl)
    return LogsPage(
        nextPageKey=page.next_page_key,
        pageSize=len(page.entries),
        totalCount=page.total_count,
        logs=[
            LogEntryOut(
                integrationid=e.integration_id,
                message=e.message,
                time=go_time(e.time) if e.time else "",
                shkeptncontext=e.keptn_context,
                task=e.task,
                triggeredid=e.triggered_id,
                gitcommitid=e.git_commit_id,
            )
            for e in page.entries
        ],
    )


@router.delete(
    "/log", response_model=EmptyBody, responses=error_responses(400, 401, 503), dependencies=[_WRITE]
)
async def delete_log_entries(
    pool: PoolDep,
    integrationId: Annotated[str | None, Query(description="the integration's id")] = None,
    fromTime: Annotated[str | None, Query(description=f"only entries at or after; {TIME_HELP}")] = None,
    beforeTime: Annotated[str | None, Query(description=f"only entries at or before; {TIME_HELP}")] = None,
) -> EmptyBody:
    """Delete matching error log entries (Keptn's internal endpoint)."""
    await log_store.delete_log_entries(pool, _query(integrationId, fromTime, beforeTime))
    return EmptyBody()
