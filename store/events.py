"""The event store: every accepted Keptn CloudEvent, stored once, and the datastore queries.

Events are stored and returned as their original wire dicts (``KeptnEvent.to_wire()``); the
columns beside the jsonb copy exist for the queries of Keptn's mongodb-datastore. Inserting an event
also maintains two small read models the API needs: the root (oldest) event of each context of a
project, and each service's newest task event per type (Keptn's ``lastEventTypes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from keptn.errors import InvalidInputError
from store.filters import FilterClause, SqlConditions

DEPLOYMENT_FINISHED = "sh.keptn.event.deployment.finished"
_TASK_EVENT_PARTS = 5  # sh.keptn.event.<task>.<kind>


def parse_event_time(value: str, *, field: str = "time") -> datetime:
    """Parse a CloudEvent or query timestamp (RFC 3339, or Keptn's ``2006-01-02T15:04:05.000Z``).

    A timestamp without an offset is UTC (Keptn writes UTC). Digits beyond microseconds are cut.

    Args:
        value: the timestamp text.
        field: the name to report when it is invalid.

    Raises:
        InvalidInputError: the text is not such a timestamp.
    """
    try:
        parsed = datetime.fromisoformat(value.strip())
        # In UTC (as PostgreSQL takes it), 0001-01-01T00:00:00+01:00 lies before year 1:
        # OverflowError here rather than in the database driver.
        return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidInputError(
            f"{field} must be an RFC 3339 timestamp such as 2006-01-02T15:04:05.000Z, got {value!r}",
            field=field,
        ) from None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class _Row:
    id: str
    type: str
    source: str
    time: datetime
    shkeptncontext: str | None
    triggeredid: str | None
    project: str | None
    stage: str | None
    service: str | None


def _row(event: dict[str, Any]) -> _Row:
    for required in ("id", "type", "source"):
        if not _text(event.get(required)):
            raise InvalidInputError(f"the event has no {required}", field=required)
    raw_time = event.get("time")
    when = parse_event_time(raw_time) if isinstance(raw_time, str) else datetime.now(UTC)
    data = event.get("data")
    data = data if isinstance(data, dict) else {}
    return _Row(
        id=event["id"],
        type=event["type"],
        source=event["source"],
        time=when,
        shkeptncontext=_text(event.get("shkeptncontext")),
        triggeredid=_text(event.get("triggeredid")),
        project=_text(data.get("project")),
        stage=_text(data.get("stage")),
        service=_text(data.get("service")),
    )


def _is_task_event(event_type: str) -> bool:
    return event_type.startswith("sh.keptn.event.") and len(event_type.split(".")) == _TASK_EVENT_PARTS


async def insert_event(conn_or_pool: asyncpg.Pool | asyncpg.Connection, event: dict[str, Any]) -> bool:
    """Store an event unless one with its id is stored already.

    Args:
        conn_or_pool: a pool, or a connection (possibly inside the caller's transaction).
        event: the Keptn wire dict (``specversion``, ``id``, ``source``, ``type``, ``time``, ...).

    Returns:
        True if the event was stored, False if an event with that id already existed (the stored
        one is left unchanged).

    Raises:
        InvalidInputError: the event has no id, type or source, or an unparsable time.
    """
    row = _row(event)
    if isinstance(conn_or_pool, asyncpg.Pool):
        async with conn_or_pool.acquire() as conn:
            return await _insert(conn, row, event)
    return await _insert(conn_or_pool, row, event)


async def _insert(conn: asyncpg.Connection, row: _Row, event: dict[str, Any]) -> bool:
    async with conn.transaction():
        seq = await conn.fetchval(
            "INSERT INTO events (id, type, source, time, shkeptncontext, triggeredid,"
            " project, stage, service, event)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (id) DO NOTHING RETURNING seq",
            row.id,
            row.type,
            row.source,
            row.time,
            row.shkeptncontext,
            row.triggeredid,
            row.project,
            row.stage,
            row.service,
            event,
        )
        if seq is None:
            return False
        if row.project and row.shkeptncontext:
            await conn.execute(
                "INSERT INTO context_roots (project, shkeptncontext, event_id, time, seq)"
                " VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (project, shkeptncontext) DO UPDATE"
                " SET event_id = EXCLUDED.event_id, time = EXCLUDED.time, seq = EXCLUDED.seq"
                " WHERE EXCLUDED.time < context_roots.time",
                row.project,
                row.shkeptncontext,
                row.id,
                row.time,
                seq,
            )
        if row.project and row.stage and row.service and _is_task_event(row.type):
            await _update_service_view(conn, row, seq)
    return True


async def _update_service_view(conn: asyncpg.Connection, row: _Row, seq: int) -> None:
    await conn.execute(
        "INSERT INTO service_last_events"
        " (project, stage, service, type, event_id, shkeptncontext, time, seq)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (project, stage, service, type) DO UPDATE"
        " SET event_id = EXCLUDED.event_id, shkeptncontext = EXCLUDED.shkeptncontext,"
        " time = EXCLUDED.time, seq = EXCLUDED.seq"
        " WHERE (EXCLUDED.time, EXCLUDED.seq) > (service_last_events.time, service_last_events.seq)",
        row.project,
        row.stage,
        row.service,
        row.type,
        row.id,
        row.shkeptncontext,
        row.time,
        seq,
    )
    if row.type == DEPLOYMENT_FINISHED and row.triggeredid:
        # Keptn's deployedImage: the image the answered deployment.triggered event asked for.
        await conn.execute(
            "UPDATE services SET deployed_image = t.event #>> '{data,configurationChange,values,image}'"
            " FROM events t"
            " WHERE t.id = $1 AND services.project = $2 AND services.stage = $3 AND services.name = $4"
            " AND jsonb_typeof(t.event #> '{data,configurationChange,values,image}') = 'string'",
            row.triggeredid,
            row.project,
            row.stage,
            row.service,
        )


async def get_event(pool: asyncpg.Pool | asyncpg.Connection, event_id: str) -> dict[str, Any] | None:
    """The stored wire dict of the event with this id, or None."""
    event: dict[str, Any] | None = await pool.fetchval("SELECT event FROM events WHERE id = $1", event_id)
    return event


async def delete_project_events(conn: asyncpg.Connection, project: str) -> int:
    """Delete every event of a project and the read models built from them.

    Args:
        conn: a connection, normally inside the transaction that deletes the project.
        project: the project name (``data.project`` of the events).

    Returns:
        How many events were deleted.
    """
    await conn.execute("DELETE FROM context_roots WHERE project = $1", project)
    await conn.execute("DELETE FROM service_last_events WHERE project = $1", project)
    status: str = await conn.execute("DELETE FROM events WHERE project = $1", project)
    return int(status.rsplit(" ", 1)[-1])


class EventQuery(BaseModel):
    """The filters of ``GET /mongodb-datastore/event``; every given filter must match."""

    model_config = ConfigDict(frozen=True)

    keptn_context: str | None = None
    """``shkeptncontext``. Default: any."""
    type: str | None = None
    """Event type. Default: any."""
    project: str | None = None
    """``data.project``. Default: any (but project or keptn_context is required)."""
    stage: str | None = None
    """``data.stage``. Default: any."""
    service: str | None = None
    """``data.service``. Default: any."""
    event_id: str | None = None
    """Event ``id``. Default: any."""
    source: str | None = None
    """Event ``source``. Default: any."""
    from_time: datetime | None = None
    """Only events strictly after this time. Default: no bound."""
    before_time: datetime | None = None
    """Only events strictly before this time. Default: no bound."""
    root: bool = False
    """Only the first (oldest) event of each context. Default false."""
    page_size: int = Field(default=20, ge=1, le=100)
    """Events per page. Default 20."""
    offset: int = Field(default=0, ge=0)
    """Events to skip (the ``nextPageKey`` of the previous page). Default 0."""


class EventTypeQuery(BaseModel):
    """The filters of ``GET /mongodb-datastore/event/type/{eventType}``."""

    model_config = ConfigDict(frozen=True)

    event_type: str
    """Event type."""
    clauses: tuple[FilterClause, ...]
    """The parsed ``filter``; must name ``data.project`` or ``shkeptncontext``."""
    exclude_invalidated: bool = False
    """Drop events whose ``triggeredid`` was invalidated by a ``<task>.invalidated`` event. Default false."""
    from_time: datetime | None = None
    """Only events strictly after this time. Default: no bound."""
    limit: int = Field(default=20, ge=1, le=100)
    """At most this many events. Default 20."""


class EventPage(BaseModel):
    """A page of events, newest first, in Keptn's datastore shape."""

    events: list[dict[str, Any]]
    """The wire events of the page."""
    next_page_key: str | None
    """Offset of the next page as a string, None on the last page."""
    page_size: int
    """The requested page size."""
    total_count: int
    """How many events match in all."""


def _event_conditions(query: EventQuery) -> tuple[SqlConditions, bool]:
    """The WHERE conditions of a query, and whether they need the events table.

    For root events the project, context and time conditions go to ``context_roots`` (which
    mirrors them for the root event), so that counting roots of a project needs no join.
    """
    sql = SqlConditions()
    scope = "r" if query.root else "e"
    needs_events = not query.root
    for column, value in (("project", query.project), ("shkeptncontext", query.keptn_context)):
        if value is not None:
            sql.add(f"{scope}.{column} = {sql.param(value)}")
    if query.from_time is not None:
        sql.add(f"{scope}.time > {sql.param(query.from_time)}")
    if query.before_time is not None:
        sql.add(f"{scope}.time < {sql.param(query.before_time)}")
    for column, value in (
        ("type", query.type),
        ("stage", query.stage),
        ("service", query.service),
        ("id", query.event_id),
        ("source", query.source),
    ):
        if value is not None:
            sql.column_equals(column, value)
            needs_events = True
    return sql, needs_events


async def get_events(pool: asyncpg.Pool | asyncpg.Connection, query: EventQuery) -> EventPage:
    """Keptn's ``GET /event``: the matching events, newest first, one page at a time.

    Raises:
        InvalidInputError: neither ``keptn_context`` nor ``project`` is given.
    """
    if not query.keptn_context and not query.project:
        raise InvalidInputError("either keptnContext or project must be given", field="keptnContext")
    sql, needs_events = _event_conditions(query)
    if query.root:
        joined = "context_roots r JOIN events e ON e.id = r.event_id"
        counted = joined if needs_events else "context_roots r"
        order = "r.time DESC, r.seq DESC"
    else:
        joined = counted = "events e"
        order = "e.time DESC, e.seq DESC"
    total: int = await pool.fetchval(f"SELECT count(*) FROM {counted} {sql.where()}", *sql.args)
    limit, offset = sql.param(query.page_size), sql.param(query.offset)
    rows = await pool.fetch(
        f"SELECT e.event FROM {joined} {sql.where()} ORDER BY {order} LIMIT {limit} OFFSET {offset}",
        *sql.args,
    )
    following = query.offset + query.page_size
    return EventPage(
        events=[row["event"] for row in rows],
        next_page_key=str(following) if following < total else None,
        page_size=query.page_size,
        total_count=total,
    )


def invalidated_type(event_type: str) -> str:
    """The type that invalidates events of ``event_type``: ``a.b.finished`` → ``a.b.invalidated``."""
    head, _, _ = event_type.rpartition(".")
    return f"{head}.invalidated" if head else f"{event_type}.invalidated"


async def get_events_by_type(
    pool: asyncpg.Pool | asyncpg.Connection, query: EventTypeQuery
) -> list[dict[str, Any]]:
    """Keptn's ``GET /event/type/{eventType}``: matching events, newest first, at most ``limit``.

    Raises:
        InvalidInputError: the filter names neither ``data.project`` nor ``shkeptncontext``.
    """
    if not any(c.key in ("data.project", "shkeptncontext") for c in query.clauses):
        raise InvalidInputError("the filter must contain data.project or shkeptncontext", field="filter")
    sql = SqlConditions()
    sql.column_equals("type", query.event_type)
    for clause in query.clauses:
        sql.add_clause(clause)
    if query.from_time is not None:
        sql.add(f"e.time > {sql.param(query.from_time)}")
    if query.exclude_invalidated:
        sql.add(
            "NOT EXISTS (SELECT 1 FROM events i WHERE i.triggeredid = e.triggeredid"
            f" AND i.type = {sql.param(invalidated_type(query.event_type))})"
        )
    rows = await pool.fetch(
        f"SELECT e.event FROM events e {sql.where()}"
        f" ORDER BY e.time DESC, e.seq DESC LIMIT {sql.param(query.limit)}",
        *sql.args,
    )
    return [row["event"] for row in rows]
