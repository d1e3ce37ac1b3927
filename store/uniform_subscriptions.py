"""The subscriptions of one integration: Keptn's ``/uniform/registration/{id}/subscription`` routes.

Every write locks the live integration row first, so a concurrent unregister cannot leave an
orphan, and validates the subscription against the integration's name (``webhook-service`` rule).
"""

from __future__ import annotations

import uuid

import asyncpg

from keptn.errors import NotFoundError
from store.uniform import (
    INSERT_SUBSCRIPTION,
    LIVE,
    Executor,
    Subscription,
    SubscriptionSpec,
    filter_json,
    get_integration,
    integration_not_found,
    validate_specs,
)


def _subscription_not_found(integration: str, subscription: str) -> NotFoundError:
    return NotFoundError(
        f"subscription '{subscription}' not found in integration '{integration}'", field="subscriptionID"
    )


async def _live_name(conn: asyncpg.Connection, integration: str) -> str:
    # FOR UPDATE: a concurrent unregister cannot slip between this check and the write.
    name: str | None = await conn.fetchval(
        f"SELECT name FROM uniform_integrations WHERE id = $1 AND {LIVE} FOR UPDATE", integration
    )
    if name is None:
        raise integration_not_found(integration)
    return name


async def list_subscriptions(executor: Executor, integration: str) -> list[Subscription]:
    """The subscriptions of a live integration, oldest first.

    Raises:
        NotFoundError: no live integration has this id.
    """
    found = await get_integration(executor, integration)
    if found is None:
        raise integration_not_found(integration)
    return list(found.subscriptions)


async def get_subscription(executor: Executor, integration: str, subscription: str) -> Subscription:
    """One subscription of a live integration.

    Raises:
        NotFoundError: the integration or the subscription does not exist.
    """
    for item in await list_subscriptions(executor, integration):
        if item.id == subscription:
            return item
    raise _subscription_not_found(integration, subscription)


async def create_subscription(pool: asyncpg.Pool, integration: str, spec: SubscriptionSpec) -> str:
    """Add a subscription under a new UUID.

    Raises:
        NotFoundError: no live integration has this id.
        InvalidInputError: the subscription is invalid (naming ``event``, ``filter.*`` or ``url``).
    """
    async with pool.acquire() as conn, conn.transaction():
        validate_specs([spec], await _live_name(conn, integration), indexed=False)
        new_id = str(uuid.uuid4())
        await conn.execute(
            INSERT_SUBSCRIPTION,
            integration,
            new_id,
            spec.event,
            filter_json(spec.filter),
            spec.url,
        )
        return new_id


async def put_subscription(
    pool: asyncpg.Pool, integration: str, subscription: str, spec: SubscriptionSpec
) -> None:
    """Replace a subscription, or create it under the given id (Keptn's upsert).

    Raises:
        NotFoundError: no live integration has this id.
        InvalidInputError: the subscription is invalid.
    """
    async with pool.acquire() as conn, conn.transaction():
        validate_specs([spec], await _live_name(conn, integration), indexed=False)
        await conn.execute(
            INSERT_SUBSCRIPTION + " ON CONFLICT (integration_id, id) DO UPDATE"
            " SET event = EXCLUDED.event, filter = EXCLUDED.filter, url = EXCLUDED.url",
            integration,
            subscription,
            spec.event,
            filter_json(spec.filter),
            spec.url,
        )


async def delete_subscription(pool: asyncpg.Pool, integration: str, subscription: str) -> None:
    """Remove one subscription.

    Raises:
        NotFoundError: the integration or the subscription does not exist.
    """
    async with pool.acquire() as conn, conn.transaction():
        await _live_name(conn, integration)
        deleted = await conn.fetchval(
            "DELETE FROM uniform_subscriptions WHERE integration_id = $1 AND id = $2 RETURNING id",
            integration,
            subscription,
        )
    if deleted is None:
        raise _subscription_not_found(integration, subscription)
