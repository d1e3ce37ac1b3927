"""Forwarding CDEvents to subscribers from the outbox (the activity of the CDEvents forwarder).

Each call of :meth:`CDEventActivities.forward_cdevents` waits (LISTEN, bounded, heartbeating)
until the outbox has something due, takes the oldest due items, translates each stored Keptn
event with :func:`keptn.cdevents.to_cdevents` and POSTs the CDEvents, as structured CloudEvents,
to the subscriber through the outbound policy (``activities/outbound.py``). An item leaves the
outbox only after the subscriber answered 2xx for all of its CDEvents; a failure stops that
subscriber (only that one) and backs it off, so it still gets every event, in order, later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from pydantic import BaseModel
from temporalio import activity

from activities.outbound import OutboundPolicy, outbound_client, send
from capstan.settings import Settings
from keptn.cdevents import Related, to_cdevents, to_cloudevent
from keptn.errors import KeptnError
from keptn.event_types import EventKind, TaskEventType, maybe_parse_event_type
from store import cdevents as cdevent_store

__all__ = [
    "FORWARD_CDEVENTS_ACTIVITY",
    "CDEventActivities",
    "ForwardInput",
    "ForwardResult",
]

FORWARD_CDEVENTS_ACTIVITY = "forward_cdevents"
CLOUDEVENTS_JSON = "application/cloudevents+json"
MAX_RESPONSE_BYTES = 64 * 1024
"""A subscriber's answer is not used; read a little of it for the error message."""
HEARTBEAT_EVERY = 5.0
_LOCK_KEY = 0x43444576_656E7473  # "CDEvents": one forwarding activity at a time per database

_log = structlog.get_logger(__name__)


class ForwardInput(BaseModel):
    """How one forwarding round behaves."""

    batch: int = 100
    """Most outbox items handled in one round. Default 100."""
    idle_wait_seconds: float = 20.0
    """Longest wait for new work before the round returns empty. Default 20 s."""
    backoff_initial_seconds: float = 1.0
    """Pause after a subscriber's first failure; it doubles per consecutive failure. Default 1 s."""
    backoff_max_seconds: float = 300.0
    """Longest pause between attempts at one subscriber. Default 5 min."""


class ForwardResult(BaseModel):
    """What a round did."""

    delivered: int = 0
    """CDEvents the subscribers acknowledged."""
    items: int = 0
    """Outbox items done (including stored events that translate to no CDEvent)."""
    failed_subscribers: int = 0
    """Subscribers whose delivery failed this round (they are backing off)."""


class _Failed(Exception):
    """A subscriber did not acknowledge a CDEvent."""


def _wanted(types: list[str], cdevent: dict[str, Any]) -> bool:
    return not types or any(str(cdevent["context"]["type"]).startswith(prefix) for prefix in types)


class CDEventActivities:
    """The forwarder's activity, bound to the worker's pool and settings."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
        self._policy: OutboundPolicy | None = None

    @activity.defn(name=FORWARD_CDEVENTS_ACTIVITY)
    async def forward_cdevents(self, input: ForwardInput) -> ForwardResult:
        """Wait for due outbox items, then forward one batch of them; see the module docstring."""
        async with self._exclusive() as conn:
            if conn is None:
                # Another attempt (a zombie of a timed-out one) still runs: let it finish.
                await self._sleep(input.idle_wait_seconds)
                return ForwardResult()
            await self._wait_for_work(conn, input.idle_wait_seconds)
            items = await cdevent_store.due_items(self._pool, input.batch)
            by_subscriber: dict[str, list[cdevent_store.OutboxItem]] = {}
            for item in items:
                by_subscriber.setdefault(item.subscription_id, []).append(item)
            if self._policy is None:
                self._policy = OutboundPolicy.from_settings(self._settings)
            async with outbound_client() as http:
                rounds = await asyncio.gather(
                    *(self._forward(http, queue, input) for queue in by_subscriber.values())
                )
        return ForwardResult(
            delivered=sum(r.delivered for r in rounds),
            items=sum(r.items for r in rounds),
            failed_subscribers=sum(r.failed_subscribers for r in rounds),
        )

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[asyncpg.Connection | None]:
        """A connection holding the forwarder's lock, or None if another round holds it."""
        async with self._pool.acquire() as conn:
            mine = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY))
            try:
                yield conn if mine else None
            finally:
                if mine:
                    await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)

    async def _sleep(self, seconds: float) -> None:
        await self._wait(asyncio.Event(), seconds)

    async def _wait(self, woken: asyncio.Event, seconds: float) -> None:
        """Wait until ``woken`` is set, ``seconds`` passed or the worker shuts down; heartbeat."""
        # An idle round must not hold a stopping worker for its whole graceful-shutdown time.
        shutdown = asyncio.ensure_future(activity.wait_for_worker_shutdown())
        wake = asyncio.ensure_future(woken.wait())
        try:
            deadline = time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0 and not (wake.done() or shutdown.done()):
                activity.heartbeat()
                await asyncio.wait({wake, shutdown}, timeout=min(left, HEARTBEAT_EVERY))
        finally:
            shutdown.cancel()
            wake.cancel()

    async def _wait_for_work(self, conn: asyncpg.Connection, limit: float) -> None:
        """Return when an item is due, a new one is queued, or ``limit`` seconds have passed."""
        due = await cdevent_store.seconds_until_due(self._pool)
        if due == 0:
            return
        woken = asyncio.Event()

        def wake(*_: object) -> None:
            woken.set()

        await conn.add_listener(cdevent_store.OUTBOX_CHANNEL, wake)
        try:
            # Checked again now that we listen: an item queued in between sent no wake-up.
            due = await cdevent_store.seconds_until_due(self._pool)
            await self._wait(woken, limit if due is None else min(limit, due))
        finally:
            await conn.remove_listener(cdevent_store.OUTBOX_CHANNEL, wake)

    async def _forward(
        self, http: Any, queue: list[cdevent_store.OutboxItem], input: ForwardInput
    ) -> ForwardResult:
        """Forward one subscriber's items in order; stop at its first failure."""
        result = ForwardResult()
        for item in queue:
            try:
                sent = await self._forward_item(http, item)
            except _Failed as failure:
                failures = await cdevent_store.record_failure(
                    self._pool,
                    item.subscription_id,
                    str(failure),
                    initial=timedelta(seconds=input.backoff_initial_seconds),
                    maximum=timedelta(seconds=input.backoff_max_seconds),
                )
                _log.warning(
                    "CDEvents delivery failed",
                    subscription_id=item.subscription_id,
                    event_id=item.event.get("id") if item.event else None,
                    failures=failures,
                    error=str(failure),
                )
                result.failed_subscribers = 1
                return result
            await cdevent_store.acknowledge(self._pool, item.subscription_id, [item.seq], sent)
            result.delivered += sent
            result.items += 1
            activity.heartbeat()
        return result

    async def _forward_item(self, http: Any, item: cdevent_store.OutboxItem) -> int:
        if item.event is None:
            return 0  # the event was deleted with its project: nothing left to say
        cdevents = [c for c in to_cdevents(item.event, await self._related(item)) if _wanted(item.types, c)]
        assert self._policy is not None
        for cdevent in cdevents:
            envelope = to_cloudevent(cdevent, shkeptncontext=item.event.get("shkeptncontext"))
            try:
                response = await send(
                    http,
                    self._policy,
                    "POST",
                    item.url,
                    {"Content-Type": CLOUDEVENTS_JSON},
                    json.dumps(envelope, ensure_ascii=False),
                    timeout=self._settings.webhook_timeout,
                    max_bytes=MAX_RESPONSE_BYTES,
                )
            except KeptnError as err:  # denied URL, connection failure, timeout
                raise _Failed(f"{cdevent['context']['type']}: {err.message}") from None
            if not 200 <= response.status < 300:
                raise _Failed(
                    f"{cdevent['context']['type']}: HTTP {response.status} {response.body_text[:200]}"
                )
        return len(cdevents)

    async def _related(self, item: cdevent_store.OutboxItem) -> Related:
        """What the translation needs beyond the event: looked up only for the events that use it."""
        event = item.event or {}
        base_url = (
            self._settings.cdevents_base_url or f"http://{self._settings.api_host}:{self._settings.api_port}"
        )
        parsed = maybe_parse_event_type(str(event.get("type", "")))
        if not isinstance(parsed, TaskEventType) or item.event_seq is None:
            return Related(base_url=base_url)
        found = event.get("data")
        data: dict[str, Any] = found if isinstance(found, dict) else {}
        stage = str(data.get("stage") or "")
        context = str(event.get("shkeptncontext") or "")
        sequence = await cdevent_store.task_sequence(
            self._pool, context=context, stage=stage, before_seq=item.event_seq
        )
        trigger_data = None
        deployed_before = False
        if parsed.kind is EventKind.FINISHED and parsed.task in ("deployment", "rollback"):
            triggered = await cdevent_store.get_event(self._pool, str(event.get("triggeredid") or ""))
            trigger_data = triggered.get("data") if isinstance(triggered, dict) else None
            deployed_before = await cdevent_store.deployed_before(
                self._pool,
                project=str(data.get("project") or ""),
                stage=stage,
                service=str(data.get("service") or ""),
                before_seq=item.event_seq,
            )
        return Related(
            sequence=sequence, trigger_data=trigger_data, deployed_before=deployed_before, base_url=base_url
        )
