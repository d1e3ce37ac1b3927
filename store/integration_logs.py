"""Error logs that integrations report (Keptn's ``keptnErrorLogs``, ``/controlPlane/v1/log``).

Entries live for ``LOG_TTL`` after their ``time`` (Keptn's MongoDB TTL index, default 120 h):
reads never return older ones and writes delete them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg


@dataclass(frozen=True)
class LogEntry:
    """One error log entry (go-utils ``models.LogEntry``)."""

    integration_id: str
    message: str
    time: datetime | None = None
    """When it happened; None means now (as Keptn filled in a zero time)."""
    keptn_context: str = ""
    task: str = ""
    triggered_id: str = ""
    git_commit_id: str = ""


@dataclass(frozen=True)
class LogQuery:
    """Filters of ``GET /log``; every given one must match."""

    integration_id: str | None = None
    from_time: datetime | None = None
    """Only entries at or after this time (Keptn's ``$gte``)."""
    before_time: datetime | None = None
    """Only entries at or before this time (Keptn's ``$lte``)."""
    page_size: int | None = None
    """Entries per page; None returns all of them, as Keptn did without ``pageSize``."""
    offset: int = 0
    """Entries to skip (the previous page's ``nextPageKey``)."""


@dataclass(frozen=True)
class LogPage:
    """Entries newest first, with Keptn's paging numbers."""

    entries: list[LogEntry]
    next_page_key: int
    """Offset of the next page; 0 on the last page."""
    total_count: int


def _conditions(query: LogQuery, ttl: timedelta | None) -> tuple[str, list[Any]]:
    args: list[Any] = []
    conditions = ["true"]
    if ttl is not None:
        args.append(ttl)
        conditions.append("time > now() - $1::interval")
    for condition, value in (
        ("integration_id = ${}", query.integration_id),
        ("time >= ${}", query.from_time),
        ("time <= ${}", query.before_time),
    ):
        if value is not None:
            args.append(value)
            conditions.append(condition.format(len(args)))
    return " AND ".join(conditions), args


async def create_log_entries(pool: asyncpg.Pool, entries: list[LogEntry], *, ttl: timedelta) -> None:
    """Store entries, after deleting the ones older than ``ttl``."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM integration_logs WHERE time <= now() - $1::interval", ttl)
        await conn.executemany(
            "INSERT INTO integration_logs"
            " (integration_id, message, time, shkeptncontext, task, triggeredid, gitcommitid)"
            " VALUES ($1, $2, coalesce($3, now()), $4, $5, $6, $7)",
            [
                (
                    e.integration_id,
                    e.message,
                    e.time,
                    e.keptn_context,
                    e.task,
                    e.triggered_id,
                    e.git_commit_id,
                )
                for e in entries
            ],
        )


async def get_log_entries(pool: asyncpg.Pool, query: LogQuery, *, ttl: timedelta) -> LogPage:
    """Entries matching the query and younger than ``ttl``, newest first."""
    where, args = _conditions(query, ttl)
    total: int = await pool.fetchval(f"SELECT count(*) FROM integration_logs WHERE {where}", *args)
    limit = ""
    if query.page_size is not None:
        args.append(query.page_size)
        limit = f" LIMIT ${len(args)}"
    args.append(query.offset)
    rows = await pool.fetch(
        "SELECT integration_id, message, time, shkeptncontext, task, triggeredid, gitcommitid"
        f" FROM integration_logs WHERE {where} ORDER BY time DESC, seq DESC{limit} OFFSET ${len(args)}",
        *args,
    )
    following = query.offset + (query.page_size or 0)
    return LogPage(
        entries=[
            LogEntry(
                integration_id=row["integration_id"],
                message=row["message"],
                time=row["time"],
                keptn_context=row["shkeptncontext"],
                task=row["task"],
                triggered_id=row["triggeredid"],
                git_commit_id=row["gitcommitid"],
            )
            for row in rows
        ],
        next_page_key=following if query.page_size and following < total else 0,
        total_count=total,
    )


async def delete_log_entries(pool: asyncpg.Pool, query: LogQuery) -> int:
    """Delete matching entries (Keptn's internal ``DELETE /log``); paging fields are ignored.

    Returns:
        How many entries were deleted.
    """
    where, args = _conditions(query, None)
    status: str = await pool.execute(f"DELETE FROM integration_logs WHERE {where}", *args)
    return int(status.rsplit(" ", 1)[-1])
