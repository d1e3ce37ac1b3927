"""Activities that write Keptn events to the event store."""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from keptn.errors import InvalidInputError
from store.events import insert_event


class StoreEventInput(BaseModel):
    """Input of :meth:`EventActivities.store_event`."""

    event: dict[str, Any]
    """The CloudEvent in structured JSON form; its ``id`` is the store's key."""


class StoreEventResult(BaseModel):
    """Output of :meth:`EventActivities.store_event`."""

    stored: bool
    """True if the event was new, False if an event with its id was already stored."""


class EventActivities:
    """Event-store activities sharing the worker's connection pool.

    Args:
        pool: the worker's asyncpg pool.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="store_event")
    async def store_event(self, input: StoreEventInput) -> StoreEventResult:
        """Store one event; idempotent on the event id, so retries and replays are harmless.

        Raises:
            ApplicationError: the event cannot be stored as it is (non-retryable: a retry would
                fail the same way).
        """
        try:
            stored = await insert_event(self._pool, input.event)
        except InvalidInputError as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from exc
        return StoreEventResult(stored=stored)
