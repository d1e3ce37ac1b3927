"""The worker process's main loop against the session's Temporal dev server and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.events import StoreEventInput, StoreEventResult
from capstan.settings import Settings
from capstan.temporal import task_queue_pollers
from store.events import get_event
from tests.store.factories import wire
from worker.main import run_worker


@workflow.defn(sandboxed=False)
class StoreOneEvent:
    """Calls the worker's store_event activity by name, as the context workflow will."""

    @workflow.run
    async def run(self, event: dict[str, object]) -> bool:
        result = await workflow.execute_activity(
            "store_event",
            StoreEventInput(event=event),
            result_type=StoreEventResult,
            start_to_close_timeout=timedelta(seconds=10),
        )
        stored: bool = result.stored
        return stored


async def _wait_polling(client, settings: Settings) -> None:
    for _ in range(400):
        pollers = await task_queue_pollers(client, settings.temporal_namespace, settings.temporal_task_queue)
        if any(identity.startswith(f"{os.getpid()}@") for identity in pollers):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the worker never polled its task queue")


async def test_worker_runs_activities_and_stops_gracefully(temporal_env, db_url, pool):
    client = temporal_env.client
    settings = Settings(
        temporal_address=client.service_client.config.target_host,
        temporal_task_queue=f"tq-{uuid.uuid4()}",
        database_url=db_url,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(settings, stop))
    try:
        await _wait_polling(client, settings)
        event = wire(id=str(uuid.uuid4()))
        # Workflow tasks go to this worker, activity tasks to run_worker's (the only activity poller).
        async with Worker(
            client,
            task_queue=settings.temporal_task_queue,
            workflows=[StoreOneEvent],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            stored = await client.execute_workflow(
                StoreOneEvent.run,
                event,
                id=f"store-{uuid.uuid4()}",
                task_queue=settings.temporal_task_queue,
                execution_timeout=timedelta(seconds=30),
            )
        assert stored is True
        assert await get_event(pool, event["id"]) is not None
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)


async def test_worker_needs_a_database(temporal_env):
    import pytest

    from keptn.errors import UnavailableError

    with pytest.raises(UnavailableError, match="CAPSTAN_DATABASE_URL"):
        await run_worker(Settings(database_url=None), asyncio.Event())
