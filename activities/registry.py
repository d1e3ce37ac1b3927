"""Every activity the worker registers, bound to the worker's shared clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
from temporalio.client import Client

from activities.cdevents import CDEventActivities
from activities.delivery import DeliveryActivities
from activities.events import EventActivities
from activities.lighthouse import LighthouseActivities
from activities.queue_lock import QueueLockActivities
from activities.remediation import RemediationActivities
from activities.sequence import SequenceActivities
from activities.sequence_state import SequenceStateActivities
from activities.sli_providers import SLIProviderActivities, sli_provider_config
from activities.webhooks import WebhookActivities
from capstan.settings import Settings


def build_activities(
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    *,
    client: Client,
    task_queue: str,
    settings: Settings | None = None,
) -> list[Callable[..., Any]]:
    """Build the worker's activities.

    Args:
        pool: the worker's asyncpg pool, shared by all activities.
        http: the worker's HTTP client, shared by the activities that call integrations.
        client: the worker's Temporal client (the queue lock's activities start and watch workflows).
        task_queue: the task queue Capstan's workflows run on.
        settings: the quality-gate settings (SLI providers); None for the defaults.

    Returns:
        The bound activity methods to pass to ``temporalio.worker.Worker(activities=...)``.
    """
    events = EventActivities(pool)
    locks = QueueLockActivities(client, task_queue)
    activities: list[Callable[..., Any]] = [
        events.store_event,
        locks.request_lock,
        locks.release_lock,
        locks.watch_lock_holder,
    ]
    sequences = SequenceActivities(pool)
    activities += [sequences.load_shipyard, sequences.emit_event, sequences.close_tasks]
    activities.append(SequenceStateActivities(pool).record_sequence)
    delivery = DeliveryActivities(pool, http)
    activities += [delivery.push_targets, delivery.push_event]
    settings = settings or Settings()
    lighthouse = LighthouseActivities(
        pool, default_provider=settings.sli_provider, builtin_providers=settings.builtin_sli_provider_names
    )
    activities += [lighthouse.prepare_evaluation, lighthouse.score_evaluation]
    activities.append(SLIProviderActivities(pool, http, sli_provider_config(settings)).fetch_slis)
    activities.append(RemediationActivities(pool).choose_action)
    activities.append(WebhookActivities(pool, settings).run_webhook)
    activities.append(CDEventActivities(pool, settings).forward_cdevents)
    return activities
