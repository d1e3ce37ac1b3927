"""Keptn's uniform in PostgreSQL: integrations, their subscriptions and who gets a pushed event.

Liveness follows Keptn's ``UNIFORM_INTEGRATION_TTL``: every registration and heartbeat moves the
integration's ``expires_at`` to ``now + ttl``. Past it the integration is gone: no read returns it,
no event is pushed to its subscriptions, and the next write deletes it with its subscriptions
(Keptn's MongoDB TTL index did the same in the background). The ttl is the gateway's setting,
applied when a heartbeat arrives, so the worker needs none to decide who is alive.

Subscriptions are validated in the store (``keptn.uniform.validate_subscription``) because one rule
depends on the integration's name, which only the store knows for the subscription routes. The
subscription routes' queries are in :mod:`store.uniform_subscriptions`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import asyncpg

from keptn.errors import NotFoundError
from keptn.uniform import SubscriptionFilter, integration_id, subscription_matches, validate_subscription

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection

LIVE = "expires_at > now()"
"""SQL condition on ``uniform_integrations``: the integration is alive."""
_INTEGRATION_COLUMNS = "i.id, i.name, i.metadata, i.last_seen"
INSERT_SUBSCRIPTION = (
    "INSERT INTO uniform_subscriptions (integration_id, id, event, filter, url) VALUES ($1, $2, $3, $4, $5)"
)
"""Insert one subscription: integration id, subscription id, event, filter (see :func:`filter_json`), url."""


@dataclass(frozen=True)
class SubscriptionSpec:
    """A subscription as a client writes it (without its id)."""

    event: str
    """The event type pattern (NATS style, see :mod:`keptn.uniform`)."""
    filter: SubscriptionFilter = SubscriptionFilter()
    """Projects, stages and services; empty means all. Default: all."""
    url: str | None = None
    """Capstan extension: the http(s) URL matching events are pushed to. Default: none (pull only)."""


@dataclass(frozen=True)
class Subscription:
    """A stored subscription."""

    id: str
    event: str
    filter: SubscriptionFilter
    url: str | None = None


@dataclass(frozen=True)
class Registration:
    """What ``POST /uniform/registration`` carries."""

    name: str
    """The integration name."""
    metadata: dict[str, Any]
    """Keptn's metadata (``hostname``, ``integrationversion``, ``distributorversion``, ``location``,
    ``kubernetesmetadata``); ``lastseen`` is ignored."""
    subscriptions: tuple[SubscriptionSpec, ...] = ()
    """The initial subscriptions. Default none."""

    @property
    def namespace(self) -> str:
        """``metadata.kubernetesmetadata.namespace`` (empty if absent)."""
        kubernetes = self.metadata.get("kubernetesmetadata")
        value = kubernetes.get("namespace") if isinstance(kubernetes, dict) else None
        return value if isinstance(value, str) else ""

    @property
    def hostname(self) -> str:
        """``metadata.hostname`` (empty if absent)."""
        value = self.metadata.get("hostname")
        return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Integration:
    """A live integration with its subscriptions."""

    id: str
    name: str
    metadata: dict[str, Any]
    """Keptn's metadata without ``lastseen``."""
    last_seen: datetime
    """The last registration or heartbeat."""
    subscriptions: tuple[Subscription, ...]


@dataclass(frozen=True)
class RegisterResult:
    """The outcome of a registration."""

    id: str
    created: bool
    """True for a new integration (Keptn's 201), False when one with the name and namespace existed (200)."""


@dataclass(frozen=True)
class IntegrationQuery:
    """Filters of ``GET /uniform/registration``; each given one must match."""

    id: str | None = None
    name: str | None = None
    project: str | None = None
    """Some subscription's filter lists this project (Keptn's ``subscriptions.filter.projects`` query)."""
    stage: str | None = None
    """Some subscription's filter lists this stage."""
    service: str | None = None
    """Some subscription's filter lists this service."""


@dataclass(frozen=True)
class PushSubscription:
    """A live subscription with a push URL that matches an event."""

    subscription_id: str
    integration_id: str
    integration_name: str
    url: str


def filter_json(value: SubscriptionFilter) -> dict[str, list[str]]:
    """The stored (and Keptn's JSON) form of a filter."""
    return {"projects": list(value.projects), "stages": list(value.stages), "services": list(value.services)}


def _filter_of(value: Any) -> SubscriptionFilter:
    value = value if isinstance(value, dict) else {}
    return SubscriptionFilter.of(value.get("projects"), value.get("stages"), value.get("services"))


def subscription_of(row: asyncpg.Record) -> Subscription:
    """A subscription from a ``uniform_subscriptions`` row."""
    return Subscription(id=row["id"], event=row["event"], filter=_filter_of(row["filter"]), url=row["url"])


def validate_specs(specs: Sequence[SubscriptionSpec], integration_name: str, *, indexed: bool) -> None:
    """Validate subscriptions of an integration; ``indexed`` names fields ``subscriptions[i].<field>``.

    Raises:
        InvalidInputError: naming the first invalid field.
    """
    for index, spec in enumerate(specs):
        prefix = f"subscriptions[{index}]." if indexed else ""
        validate_subscription(
            spec.event, spec.filter, url=spec.url, integration_name=integration_name, prefix=prefix
        )


async def purge_expired(executor: Executor) -> int:
    """Delete every integration past its ``expires_at`` (with its subscriptions).

    Returns:
        How many integrations were deleted.
    """
    status: str = await executor.execute("DELETE FROM uniform_integrations WHERE NOT " + LIVE)
    return int(status.rsplit(" ", 1)[-1])


async def _insert_subscriptions(
    conn: asyncpg.Connection, integration: str, specs: Sequence[SubscriptionSpec]
) -> None:
    await conn.executemany(
        INSERT_SUBSCRIPTION,
        [(integration, str(uuid.uuid4()), s.event, filter_json(s.filter), s.url) for s in specs],
    )


async def register_integration(
    pool: asyncpg.Pool, registration: Registration, *, ttl: timedelta
) -> RegisterResult:
    """Create an integration, or renew the live one with the same name and namespace (as Keptn).

    A renewed integration keeps its id and its subscriptions (they may have been edited since, e.g.
    in the Bridge); it adopts the registration's subscriptions only if it has none. Its
    ``integrationversion``/``distributorversion`` are updated; the rest of its metadata stays.

    Args:
        pool: the pool.
        registration: the registration.
        ttl: how long the integration lives without a heartbeat.

    Returns:
        Its id and whether it was created.

    Raises:
        InvalidInputError: the name is empty or a subscription is invalid (the message names
            ``subscriptions[i].<field>``).
    """
    new_id = integration_id(registration.name, registration.namespace, registration.hostname)
    validate_specs(registration.subscriptions, registration.name, indexed=True)
    metadata = {k: v for k, v in registration.metadata.items() if k != "lastseen"}
    async with pool.acquire() as conn, conn.transaction():
        # Serialise registrations of one name+namespace so that concurrent replicas get one id.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            json.dumps(["uniform", registration.name, registration.namespace]),
        )
        await purge_expired(conn)
        existing = await conn.fetchrow(
            "SELECT id, metadata FROM uniform_integrations WHERE name = $1 AND namespace = $2"
            " ORDER BY last_seen DESC LIMIT 1",
            registration.name,
            registration.namespace,
        )
        if existing is None:
            await conn.execute(
                "INSERT INTO uniform_integrations (id, name, namespace, metadata, last_seen, expires_at)"
                " VALUES ($1, $2, $3, $4, now(), now() + $5::interval)",
                new_id,
                registration.name,
                registration.namespace,
                metadata,
                ttl,
            )
            await _insert_subscriptions(conn, new_id, registration.subscriptions)
            return RegisterResult(id=new_id, created=True)
        found: str = existing["id"]
        updated = dict(existing["metadata"])
        for key in ("integrationversion", "distributorversion"):
            if key in metadata:
                updated[key] = metadata[key]
        await conn.execute(
            "UPDATE uniform_integrations SET metadata = $2, last_seen = now(),"
            " expires_at = now() + $3::interval WHERE id = $1",
            found,
            updated,
            ttl,
        )
        has_any = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM uniform_subscriptions WHERE integration_id = $1)", found
        )
        if not has_any:
            await _insert_subscriptions(conn, found, registration.subscriptions)
        return RegisterResult(id=found, created=False)


async def _load(executor: Executor, rows: Sequence[asyncpg.Record]) -> list[Integration]:
    ids = [row["id"] for row in rows]
    subscriptions: dict[str, list[Subscription]] = {i: [] for i in ids}
    for sub in await executor.fetch(
        "SELECT integration_id, id, event, filter, url FROM uniform_subscriptions"
        " WHERE integration_id = ANY($1::text[]) ORDER BY seq",
        ids,
    ):
        subscriptions[sub["integration_id"]].append(subscription_of(sub))
    return [
        Integration(
            id=row["id"],
            name=row["name"],
            metadata=row["metadata"],
            last_seen=row["last_seen"],
            subscriptions=tuple(subscriptions[row["id"]]),
        )
        for row in rows
    ]


async def list_integrations(executor: Executor, query: IntegrationQuery | None = None) -> list[Integration]:
    """Live integrations matching every given filter, in registration order."""
    query = query or IntegrationQuery()
    conditions = ["i." + LIVE]
    args: list[Any] = []
    for column, value in (("id", query.id), ("name", query.name)):
        if value:
            args.append(value)
            conditions.append(f"i.{column} = ${len(args)}")
    for key, value in (("projects", query.project), ("stages", query.stage), ("services", query.service)):
        if value:
            args.append(value)
            # Each dimension may match a different subscription, as Keptn's MongoDB query did.
            conditions.append(
                "EXISTS (SELECT 1 FROM uniform_subscriptions s WHERE s.integration_id = i.id"
                f" AND s.filter -> '{key}' ? ${len(args)})"
            )
    rows = await executor.fetch(
        f"SELECT {_INTEGRATION_COLUMNS} FROM uniform_integrations i"
        f" WHERE {' AND '.join(conditions)} ORDER BY i.seq",
        *args,
    )
    return await _load(executor, rows)


async def get_integration(executor: Executor, integration: str) -> Integration | None:
    """The live integration with this id, or None."""
    found = await list_integrations(executor, IntegrationQuery(id=integration))
    return found[0] if found else None


def integration_not_found(integration: str) -> NotFoundError:
    """The error for an integration id that is unknown or no longer alive."""
    return NotFoundError(
        f"integration '{integration}' not found (unknown, unregistered, or no heartbeat within its TTL)",
        field="integrationID",
    )


async def delete_integration(pool: asyncpg.Pool, integration: str) -> None:
    """Unregister an integration and drop its subscriptions.

    Raises:
        NotFoundError: no live integration has this id.
    """
    async with pool.acquire() as conn, conn.transaction():
        await purge_expired(conn)
        if (
            await conn.fetchval("DELETE FROM uniform_integrations WHERE id = $1 RETURNING id", integration)
            is None
        ):
            raise integration_not_found(integration)


async def heartbeat(pool: asyncpg.Pool, integration: str, *, ttl: timedelta) -> Integration:
    """Renew an integration for another ``ttl`` and return it with its current subscriptions.

    Raises:
        NotFoundError: no live integration has this id (it has to register again).
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE uniform_integrations i SET last_seen = now(), expires_at = now() + $2::interval"
            f" WHERE i.id = $1 AND i.{LIVE} RETURNING {_INTEGRATION_COLUMNS}",
            integration,
            ttl,
        )
        if row is None:
            raise integration_not_found(integration)
        return (await _load(conn, [row]))[0]


async def push_subscriptions(executor: Executor, event: dict[str, Any]) -> list[PushSubscription]:
    """Every live subscription with a push URL whose pattern and filter match the event.

    One entry per matching subscription, as Keptn's connector handed an event to its integration
    once per matching subscription (each with its own ``subscriptionID``).

    Args:
        executor: a pool or connection.
        event: the Keptn wire event.
    """
    rows = await executor.fetch(
        "SELECT s.id, s.integration_id, i.name, s.event, s.filter, s.url"
        " FROM uniform_subscriptions s JOIN uniform_integrations i ON i.id = s.integration_id"
        f" WHERE s.url IS NOT NULL AND i.{LIVE} ORDER BY i.seq, s.seq"
    )
    return [
        PushSubscription(
            subscription_id=row["id"],
            integration_id=row["integration_id"],
            integration_name=row["name"],
            url=row["url"],
        )
        for row in rows
        if subscription_matches(row["event"], _filter_of(row["filter"]), event)
    ]
