"""CDEvents subscriptions, their outbox, and the lookups the translation needs (``0007_cdevents.sql``).

Rows enter ``cdevent_outbox`` only through the trigger on ``events`` (same transaction as the
event); this module reads them in order, deletes what a subscriber acknowledged and records
failures on the subscription, which holds its backoff.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

__all__ = [
    "OUTBOX_CHANNEL",
    "CDEventSubscription",
    "OutboxItem",
    "acknowledge",
    "create_subscription",
    "deleted_subscription",
    "deployed_before",
    "due_items",
    "get_event",
    "list_subscriptions",
    "record_failure",
    "seconds_until_due",
    "task_sequence",
]

OUTBOX_CHANNEL = "cdevent_outbox"
"""The ``pg_notify`` channel the outbox trigger signals."""


@dataclass(frozen=True)
class CDEventSubscription:
    """A subscriber to CDEvents, with how delivery to it is going."""

    id: str
    url: str
    project: str | None
    types: list[str]
    created_at: datetime
    failures: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered: int
    pending: int


@dataclass(frozen=True)
class OutboxItem:
    """One stored Keptn event still to be forwarded to one subscriber."""

    seq: int
    subscription_id: str
    url: str
    types: list[str]
    event: dict[str, Any] | None
    """The stored wire event; None if it was deleted since (its project was deleted)."""
    event_seq: int | None


_SELECT = (
    "SELECT s.id, s.url, s.project, s.types, s.created_at, s.failures, s.last_error, s.delivered,"
    " CASE WHEN s.next_attempt_at = '-infinity' THEN NULL ELSE s.next_attempt_at END AS next_attempt_at,"
    " (SELECT count(*) FROM cdevent_outbox o WHERE o.subscription_id = s.id) AS pending"
    " FROM cdevent_subscriptions s"
)


def _subscription(row: asyncpg.Record) -> CDEventSubscription:
    return CDEventSubscription(
        id=row["id"],
        url=row["url"],
        project=row["project"],
        types=list(row["types"]),
        created_at=row["created_at"],
        failures=row["failures"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        delivered=row["delivered"],
        pending=row["pending"],
    )


async def create_subscription(
    pool: asyncpg.Pool, *, url: str, project: str | None, types: list[str]
) -> CDEventSubscription:
    """Store a new subscription; events stored from now on are queued for it."""
    subscription_id = str(uuid.uuid4())
    await pool.execute(
        "INSERT INTO cdevent_subscriptions (id, url, project, types) VALUES ($1, $2, $3, $4)",
        subscription_id,
        url,
        project,
        types,
    )
    found = await list_subscriptions(pool, subscription_id=subscription_id)
    return found[0]


async def list_subscriptions(
    pool: asyncpg.Pool, *, project: str | None = None, subscription_id: str | None = None
) -> list[CDEventSubscription]:
    """Subscriptions, oldest first; ``project`` keeps those of that project only."""
    rows = await pool.fetch(
        f"{_SELECT} WHERE ($1::text IS NULL OR s.project = $1) AND ($2::text IS NULL OR s.id = $2)"
        " ORDER BY s.created_at, s.id",
        project,
        subscription_id,
    )
    return [_subscription(row) for row in rows]


async def deleted_subscription(pool: asyncpg.Pool, subscription_id: str) -> CDEventSubscription | None:
    """Delete a subscription and its queue; return it as it was, or None if there was none."""
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetchrow(f"{_SELECT} WHERE s.id = $1 FOR UPDATE OF s", subscription_id)
        if found is None:
            return None
        await conn.execute("DELETE FROM cdevent_subscriptions WHERE id = $1", subscription_id)
    return _subscription(found)


async def due_items(pool: asyncpg.Pool, limit: int) -> list[OutboxItem]:
    """The oldest queued items of subscribers not backing off, in queue order."""
    rows = await pool.fetch(
        "SELECT o.seq, o.subscription_id, s.url, s.types, e.event, e.seq AS event_seq"
        " FROM cdevent_outbox o"
        " JOIN cdevent_subscriptions s ON s.id = o.subscription_id"
        " LEFT JOIN events e ON e.id = o.event_id"
        " WHERE s.next_attempt_at <= now()"
        " ORDER BY o.seq LIMIT $1",
        limit,
    )
    return [
        OutboxItem(
            seq=row["seq"],
            subscription_id=row["subscription_id"],
            url=row["url"],
            types=list(row["types"]),
            event=row["event"],
            event_seq=row["event_seq"],
        )
        for row in rows
    ]


async def seconds_until_due(pool: asyncpg.Pool) -> float | None:
    """Seconds until some queued item may be sent (0 if now); None if the outbox is empty."""
    value = await pool.fetchval(
        "SELECT greatest(0, extract(epoch FROM min(s.next_attempt_at) - now()))::float8"
        " FROM cdevent_subscriptions s"
        " WHERE s.next_attempt_at > '-infinity' AND EXISTS"
        " (SELECT 1 FROM cdevent_outbox o WHERE o.subscription_id = s.id)"
    )
    if value is not None:
        return float(value)
    pending = await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM cdevent_outbox o JOIN cdevent_subscriptions s"
        " ON s.id = o.subscription_id WHERE s.next_attempt_at = '-infinity')"
    )
    return 0.0 if pending else None


async def acknowledge(pool: asyncpg.Pool, subscription_id: str, seqs: list[int], sent: int) -> None:
    """Remove forwarded items and count ``sent`` CDEvents; a success ends the subscriber's backoff."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM cdevent_outbox WHERE seq = ANY($1::bigint[])", seqs)
        await conn.execute(
            "UPDATE cdevent_subscriptions SET delivered = delivered + $2, failures = 0,"
            " next_attempt_at = '-infinity', last_error = NULL WHERE id = $1",
            subscription_id,
            sent,
        )


async def record_failure(
    pool: asyncpg.Pool, subscription_id: str, error: str, *, initial: timedelta, maximum: timedelta
) -> int:
    """Note a failed attempt and back off: nothing is sent to the subscriber for a while.

    The pause doubles with each consecutive failure, from ``initial`` up to ``maximum``.

    Returns:
        The consecutive failures so far.
    """
    failures = await pool.fetchval(
        "UPDATE cdevent_subscriptions SET failures = failures + 1, last_error = $2,"
        " next_attempt_at = now() + least($4::interval, $3::interval * power(2, failures))"
        " WHERE id = $1 RETURNING failures",
        subscription_id,
        error[:1000],
        initial,
        maximum,
    )
    return int(failures or 0)


async def get_event(pool: asyncpg.Pool, event_id: str) -> dict[str, Any] | None:
    """A stored wire event by id."""
    event: dict[str, Any] | None = await pool.fetchval("SELECT event FROM events WHERE id = $1", event_id)
    return event


async def task_sequence(pool: asyncpg.Pool, *, context: str, stage: str, before_seq: int) -> str | None:
    """The sequence a task event of ``stage`` belongs to: the newest stage trigger before it."""
    event_type: str | None = await pool.fetchval(
        "SELECT type FROM events WHERE shkeptncontext = $1 AND stage = $2 AND seq < $3"
        " AND type LIKE 'sh.keptn.event.' || $2 || '.%.triggered'"
        " ORDER BY seq DESC LIMIT 1",
        context,
        stage,
        before_seq,
    )
    if event_type is None:
        return None
    return event_type.split(".")[4]


async def deployed_before(
    pool: asyncpg.Pool, *, project: str, stage: str, service: str, before_seq: int
) -> bool:
    """Whether the service had a successful deployment in the stage before this event."""
    found = await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM events WHERE project = $1 AND service = $3 AND stage = $2"
        " AND type = 'sh.keptn.event.deployment.finished' AND seq < $4"
        " AND coalesce(event -> 'data' ->> 'result', 'pass') <> 'fail'"
        " AND coalesce(event -> 'data' ->> 'status', 'succeeded') NOT IN ('errored', 'aborted'))",
        project,
        stage,
        service,
        before_seq,
    )
    return bool(found)
