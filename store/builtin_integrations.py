"""The control plane's own uniform integrations, and the subscriptions that reach them.

Keptn's webhook-service was an integration like any other: the Bridge added subscriptions to it
and wrote a matching entry into ``webhook/webhook.yaml``. Capstan's built-in webhook service is
registered the same way, so Keptn's tooling (and the uniform API) can manage its subscriptions;
it lives as long as the control plane, not by heartbeat, so its subscriptions are never lost
while no worker runs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg

from keptn.uniform import subscription_matches
from store.uniform import LIVE, RegisterResult, Registration, _filter_of, register_integration

WEBHOOK_SERVICE = "webhook-service"
"""Name of the built-in webhook integration (Keptn's name)."""
BUILTIN_NAMESPACE = "capstan"
BUILTIN_TTL = timedelta(days=3650)
"""Built-in integrations do not heartbeat; each start of the gateway renews them."""
BUILTIN_VERSION = "capstan-builtin"


async def ensure_webhook_service(pool: asyncpg.Pool) -> RegisterResult:
    """Register (or renew) the built-in webhook integration; its subscriptions are kept."""
    registration = Registration(
        name=WEBHOOK_SERVICE,
        metadata={
            "integrationversion": BUILTIN_VERSION,
            "distributorversion": BUILTIN_VERSION,
            "location": "control-plane",
            "kubernetesmetadata": {"namespace": BUILTIN_NAMESPACE},
        },
    )
    return await register_integration(pool, registration, ttl=BUILTIN_TTL)


async def webhook_subscriptions(
    executor: asyncpg.Pool | asyncpg.Connection, event: dict[str, Any]
) -> list[str]:
    """Ids of the built-in webhook integration's subscriptions that match an event, in order."""
    rows = await executor.fetch(
        "SELECT s.id, s.event, s.filter FROM uniform_subscriptions s"
        " JOIN uniform_integrations i ON i.id = s.integration_id"
        f" WHERE i.name = $1 AND i.namespace = $2 AND i.{LIVE} ORDER BY s.seq",
        WEBHOOK_SERVICE,
        BUILTIN_NAMESPACE,
    )
    return [row["id"] for row in rows if subscription_matches(row["event"], _filter_of(row["filter"]), event)]
