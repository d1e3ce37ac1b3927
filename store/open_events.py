"""Open ``.triggered`` events: emitted by the control plane and not yet answered, aborted or timed out.

This is Keptn's per-project ``triggeredEvents`` collection, which remote execution planes and SLI
providers poll through ``GET /controlPlane/v1/event/triggered/{eventType}``. The context workflow
opens an event when it emits it (the event is stored in ``events`` as well) and closes it when
the task ends; both are idempotent, so activity retries are harmless. Events of projects that no
longer exist are never listed, as Keptn only read the collections of existing projects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeAlias

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from keptn.errors import InvalidInputError, NotFoundError
from store.events import parse_event_time

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection

TRIGGERED_SUFFIX = ".triggered"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


async def open_triggered(conn_or_pool: Executor, event: dict[str, Any]) -> None:
    """List a ``.triggered`` event as open (nothing happens if it is listed already).

    Args:
        conn_or_pool: a pool, or a connection (possibly inside the caller's transaction).
        event: the Keptn wire event.

    Raises:
        InvalidInputError: the event has no id, its type does not end in ``.triggered``, or its
            time cannot be parsed.
    """
    event_id, event_type = _text(event.get("id")), _text(event.get("type"))
    if event_id is None:
        raise InvalidInputError("the event has no id", field="id")
    if event_type is None or not event_type.endswith(TRIGGERED_SUFFIX):
        raise InvalidInputError(f"only .triggered events can be open, got type {event_type!r}", field="type")
    raw_time = event.get("time")
    when = parse_event_time(raw_time) if isinstance(raw_time, str) else datetime.now(UTC)
    data = event.get("data")
    data = data if isinstance(data, dict) else {}
    await conn_or_pool.execute(
        "INSERT INTO open_triggered_events"
        " (event_id, type, time, shkeptncontext, project, stage, service, event)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING",
        event_id,
        event_type,
        when,
        _text(event.get("shkeptncontext")),
        _text(data.get("project")),
        _text(data.get("stage")),
        _text(data.get("service")),
        event,
    )


async def close_triggered(conn_or_pool: Executor, event_ids: list[str]) -> None:
    """Stop listing these events as open (unknown or already closed ids are ignored).

    Args:
        conn_or_pool: a pool, or a connection.
        event_ids: ids of ``.triggered`` events.
    """
    if event_ids:
        await conn_or_pool.execute(
            "DELETE FROM open_triggered_events WHERE event_id = ANY($1::text[])", list(event_ids)
        )


class OpenTriggeredQuery(BaseModel):
    """The filters of ``GET /event/triggered/{eventType}``; every given filter must match."""

    model_config = ConfigDict(frozen=True)

    event_type: str
    """The exact event type (no wildcards)."""
    event_id: str | None = None
    """Event ``id``. Default: any."""
    project: str | None = None
    """``data.project``. Default: any."""
    stage: str | None = None
    """``data.stage``. Default: any."""
    service: str | None = None
    """``data.service``. Default: any."""
    page_size: int = Field(default=20, ge=1)
    """Events per page. Default 20."""
    offset: int = Field(default=0, ge=0)
    """Events to skip (the ``nextPageKey`` of the previous page). Default 0."""


class OpenTriggeredPage(BaseModel):
    """A page of open events, newest first."""

    events: list[dict[str, Any]]
    """The wire events."""
    next_page_key: str
    """Offset of the next page as a string; ``"0"`` on the last page (Keptn's convention)."""
    page_size: int
    """The requested page size."""
    total_count: int
    """How many events match in all."""


async def list_open_triggered(pool: Executor, query: OpenTriggeredQuery) -> OpenTriggeredPage:
    """The open events matching the query, newest first (Keptn sorted by ``time`` descending).

    Raises:
        NotFoundError: ``project`` is given and no such project exists (Keptn's 404).
    """
    if query.project is not None and not await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM projects WHERE name = $1)", query.project
    ):
        raise NotFoundError(f"project '{query.project}' not found", field="project")
    args: list[Any] = [query.event_type]
    conditions = ["o.type = $1", "EXISTS (SELECT 1 FROM projects p WHERE p.name = o.project)"]
    for column, value in (
        ("event_id", query.event_id),
        ("project", query.project),
        ("stage", query.stage),
        ("service", query.service),
    ):
        if value is not None:
            args.append(value)
            conditions.append(f"o.{column} = ${len(args)}")
    where = " AND ".join(conditions)
    total: int = await pool.fetchval(f"SELECT count(*) FROM open_triggered_events o WHERE {where}", *args)
    rows = await pool.fetch(
        f"SELECT o.event FROM open_triggered_events o WHERE {where}"
        f" ORDER BY o.time DESC, o.seq DESC LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
        *args,
        query.page_size,
        query.offset,
    )
    following = query.offset + query.page_size
    return OpenTriggeredPage(
        events=[row["event"] for row in rows],
        next_page_key=str(following) if following < total else "0",
        page_size=query.page_size,
        total_count=total,
    )
