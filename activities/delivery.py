"""Push delivery: POST an event the control plane emits to every matching push subscription.

Keptn's integrations received events through NATS or by polling; Capstan adds HTTP push for
subscriptions with a ``url``. The workflow first asks ``push_targets`` who should get an event,
then runs one ``push_event`` per target, each with bounded retries (``PUSH_EVENT_OPTIONS``), so one
dead integration never holds a sequence up. Pull clients are served by the open-event list instead.

Every attempt sends the same body with the same CloudEvent ``id``: receivers deduplicate on it,
as delivery is at least once.
"""

from __future__ import annotations

import copy
import email.utils
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypedDict

import asyncpg
import httpx
from pydantic import BaseModel
from temporalio import activity
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from capstan.metrics import PUSHES
from capstan.telemetry import client_span, inject_traceparent, traceparent_headers
from store.builtin_integrations import WEBHOOK_SERVICE, webhook_subscriptions
from store.uniform import push_subscriptions

__all__ = [
    "CLOUDEVENTS_JSON",
    "PUSH_EVENT_ACTIVITY",
    "PUSH_EVENT_OPTIONS",
    "PUSH_TARGETS_ACTIVITY",
    "PUSH_TARGETS_OPTIONS",
    "ActivityOptions",
    "DeliveryActivities",
    "PushEventInput",
    "PushResult",
    "PushTarget",
    "PushTargets",
    "PushTargetsInput",
    "find_push_targets",
    "with_subscription_id",
]

PUSH_TARGETS_ACTIVITY = "push_targets"
PUSH_EVENT_ACTIVITY = "push_event"
CLOUDEVENTS_JSON = "application/cloudevents+json"
INTEGRATION_UNAVAILABLE = "IntegrationUnavailable"
"""Error type of a delivery worth retrying: 408, 429, 5xx or no connection."""
INTEGRATION_REJECTED = "IntegrationRejected"
"""Error type of a delivery the integration refused (other 3xx/4xx): retrying cannot help."""
MAX_RETRY_AFTER = timedelta(minutes=5)
"""A longer ``Retry-After`` is cut to this, so that the push still fits its 10-minute budget."""


class ActivityOptions(TypedDict):
    """Keyword arguments for ``workflow.execute_activity``/``start_activity``."""

    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    retry_policy: RetryPolicy


PUSH_TARGETS_OPTIONS = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=15),
    schedule_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
    ),
)
"""Options of ``push_targets``: a store read, retried for up to 2 minutes (e.g. PostgreSQL restarting)."""

PUSH_EVENT_OPTIONS = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(minutes=10),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=0,  # bounded by schedule_to_close_timeout instead
        non_retryable_error_types=[INTEGRATION_REJECTED],
    ),
)
"""Options of ``push_event``: retried with backoff (1 s doubling to 1 min) for at most 10 minutes;
an integration that rejects the event (4xx) is not retried."""


class PushTargetsInput(BaseModel):
    """Input of ``push_targets``."""

    event: dict[str, Any]
    """The Keptn wire event (``KeptnEvent.to_wire()``)."""


class PushTarget(BaseModel):
    """One subscription to deliver an event to."""

    subscription_id: str
    integration_id: str
    integration_name: str
    url: str = ""
    """Where the event is POSTed (empty for the built-in webhook service)."""
    kind: Literal["push", "webhook"] = "push"
    """``push``: POST the event to ``url``; ``webhook``: run the built-in webhook service's
    webhook for this subscription (``run_webhook``)."""


class PushTargets(BaseModel):
    """Output of ``push_targets``."""

    targets: list[PushTarget]
    """One per matching subscription, in registration order; empty if nobody subscribed by push."""


class PushEventInput(BaseModel):
    """Input of ``push_event``."""

    event: dict[str, Any]
    """The Keptn wire event."""
    target: PushTarget
    """Where to deliver it."""


class PushResult(BaseModel):
    """Output of ``push_event``."""

    status_code: int
    """The integration's 2xx status."""


def with_subscription_id(event: dict[str, Any], subscription_id: str) -> dict[str, Any]:
    """A copy of the event with ``data.temporaryData.distributor.subscriptionID`` set.

    Keptn's connector added this before handing an event to its integration, and integrations
    (e.g. the webhook-service) read it to find their subscription.
    """
    delivered = copy.deepcopy(event)
    data = delivered.get("data")
    data = data if isinstance(data, dict) else {}
    temporary = data.get("temporaryData")
    temporary = temporary if isinstance(temporary, dict) else {}
    temporary["distributor"] = {"subscriptionID": subscription_id}
    data["temporaryData"] = temporary
    delivered["data"] = data
    return delivered


async def find_push_targets(pool: asyncpg.Pool, event: dict[str, Any]) -> list[PushTarget]:
    """The subscriptions an event goes to: live push subscriptions, then the webhook service's.

    ``push_targets`` answers with this, and ``emit_event`` returns it for a task ``.triggered``
    so that the workflow can push without a separate lookup.
    """
    found = await push_subscriptions(pool, event)
    targets = [
        PushTarget(
            subscription_id=s.subscription_id,
            integration_id=s.integration_id,
            integration_name=s.integration_name,
            url=s.url,
        )
        for s in found
    ]
    targets += [
        PushTarget(
            subscription_id=subscription,
            integration_id="",
            integration_name=WEBHOOK_SERVICE,
            kind="webhook",
        )
        for subscription in await webhook_subscriptions(pool, event)
    ]
    return targets


def _retry_after(response: httpx.Response) -> timedelta | None:
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        delay = timedelta(seconds=int(value))
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delay = max(when - datetime.now(UTC), timedelta(0))
    return min(delay, MAX_RETRY_AFTER)


class DeliveryActivities:
    """The push activities, sharing the worker's pool and HTTP client.

    Args:
        pool: the worker's asyncpg pool.
        http: the worker's HTTP client (its timeouts bound each attempt).
    """

    def __init__(self, pool: asyncpg.Pool, http: httpx.AsyncClient) -> None:
        self._pool = pool
        self._http = http

    @activity.defn(name=PUSH_TARGETS_ACTIVITY)
    async def push_targets(self, input: PushTargetsInput) -> PushTargets:
        """Every live integration subscription with a ``url`` whose pattern and filter match the event."""
        return PushTargets(targets=await find_push_targets(self._pool, input.event))

    @activity.defn(name=PUSH_EVENT_ACTIVITY)
    async def push_event(self, input: PushEventInput) -> PushResult:
        """POST the event to the target as a structured CloudEvent.

        Raises:
            ApplicationError: ``IntegrationUnavailable`` (retried; ``next_retry_delay`` from
                ``Retry-After``) on 408, 429, 5xx or a transport error; ``IntegrationRejected``
                (not retried) on any other non-2xx status or an unusable URL.
        """
        target = input.target
        where = f"{target.integration_name} ({target.url})"
        attributes = {"cloudevents.event_type": str(input.event.get("type")), "url.full": target.url}
        with client_span(f"push {input.event.get('type')}", attributes):
            # A single hop: the event's traceparent is this push's span, as is the HTTP header's.
            event = inject_traceparent(
                with_subscription_id(input.event, target.subscription_id), replace=True
            )
            body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
            try:
                response = await self._http.post(
                    target.url,
                    content=body,
                    headers={"content-type": CLOUDEVENTS_JSON, **traceparent_headers()},
                )
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                PUSHES.labels("rejected").inc()
                raise ApplicationError(
                    f"cannot push to {where}: {exc}", type=INTEGRATION_REJECTED, non_retryable=True
                ) from exc
            except httpx.TransportError as exc:
                PUSHES.labels("unavailable").inc()
                raise ApplicationError(
                    f"{where} is unreachable: {type(exc).__name__}: {exc}", type=INTEGRATION_UNAVAILABLE
                ) from exc
        code = response.status_code
        if 200 <= code < 300:
            PUSHES.labels("ok").inc()
            return PushResult(status_code=code)
        detail = response.text[:200]
        if code in (408, 429) or code >= 500:
            PUSHES.labels("unavailable").inc()
            raise ApplicationError(
                f"{where} answered {code}: {detail}",
                type=INTEGRATION_UNAVAILABLE,
                next_retry_delay=_retry_after(response),
            )
        PUSHES.labels("rejected").inc()
        raise ApplicationError(
            f"{where} rejected the event with {code}: {detail}", type=INTEGRATION_REJECTED, non_retryable=True
        )
