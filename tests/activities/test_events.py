from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.events import EventActivities, StoreEventInput, StoreEventResult
from activities.registry import build_activities
from store.events import get_event
from tests.store.factories import wire


async def test_store_event_is_idempotent(pool):
    activities = EventActivities(pool)
    event = wire(id="e2f1c7f4-0000-4000-8000-000000000001")
    env = ActivityEnvironment()
    assert await env.run(activities.store_event, StoreEventInput(event=event)) == StoreEventResult(
        stored=True
    )
    assert await env.run(activities.store_event, StoreEventInput(event=event)) == StoreEventResult(
        stored=False
    )
    stored = await get_event(pool, event["id"])
    assert stored is not None and stored["type"] == event["type"]


async def test_invalid_event_fails_without_retry(pool):
    event = wire()
    del event["type"]
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(EventActivities(pool).store_event, StoreEventInput(event=event))
    assert caught.value.non_retryable


async def test_registry_names(pool, temporal_client):
    import httpx

    async with httpx.AsyncClient() as http:
        activities = build_activities(pool, http, client=temporal_client, task_queue="q")
    names = [fn.__temporal_activity_definition.name for fn in activities]  # type: ignore[attr-defined]
    assert set(names) >= {
        "store_event",
        "request_lock",
        "release_lock",
        "watch_lock_holder",
        "load_shipyard",
        "emit_event",
        "close_tasks",
        "record_sequence",
        "push_targets",
        "push_event",
    }
    assert len(names) == len(set(names)), "an activity is registered twice"
