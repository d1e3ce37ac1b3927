"""Every activity the worker registers, bound to the worker's shared clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
from temporalio.client import Client

from activities.events import EventActivities
from activities.queue_lock import QueueLockActivities


def build_activities(
    pool: asyncpg.Pool, http: httpx.AsyncClient, *, client: Client, task_queue: str
) -> list[Callable[..., Any]]:
    """Build the worker's activities.

    Args:
        pool: the worker's asyncpg pool, shared by all activities.
        http: the worker's HTTP client, shared by the activities that call integrations.
        client: the worker's Temporal client (the queue lock's activities start and watch workflows).
        task_queue: the task queue Capstan's workflows run on.

    Returns:
        The bound activity methods to pass to ``temporalio.worker.Worker(activities=...)``.
    """
    del http  # used by the delivery activities of the sequence engine
    events = EventActivities(pool)
    locks = QueueLockActivities(client, task_queue)
    return [events.store_event, locks.request_lock, locks.release_lock, locks.watch_lock_holder]
