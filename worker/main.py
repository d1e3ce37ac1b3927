"""The worker process: Capstan's workflows and activities on the task queue, until told to stop."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

import httpx
import structlog
from temporalio.worker import Worker

from activities.registry import build_activities
from capstan.settings import Settings
from capstan.telemetry import configure_tracing, flush_tracing
from capstan.temporal import connect_temporal, ensure_search_attributes
from keptn.errors import UnavailableError
from store.db import create_pool, migrate
from worker.health import MetricsServer
from workflows.cdevents_models import start_forwarder
from workflows.registry import ALL_WORKFLOWS

GRACEFUL_SHUTDOWN = timedelta(seconds=10)
"""How long running activities get to finish after SIGTERM before they are cancelled."""

MAX_CONCURRENT_ACTIVITIES = 2000
"""Activity slots of the worker (Temporal's default is 100); see the comment where it is used."""

EAGER_ACTIVITIES_PER_TASK = 10
"""Activities a workflow task may start eagerly on this worker (Temporal's default is 3)."""

HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
"""Timeouts of the shared client the activities call integrations with."""

_log = structlog.get_logger(__name__)


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Run the worker until ``stop`` is set, then shut it down gracefully.

    Args:
        settings: where Temporal and PostgreSQL are, and the task queue to poll.
        stop: set it to stop the worker.

    Raises:
        UnavailableError: no database is configured.
        RuntimeError: Temporal cannot be reached.
    """
    if settings.database_url is None:
        raise UnavailableError(
            "CAPSTAN_DATABASE_URL is not set: start the worker with `capstan up`, "
            "or point CAPSTAN_DATABASE_URL at a PostgreSQL database"
        )
    # before the client is made: its tracing interceptor (inherited by the worker) is chosen at connect
    configure_tracing("capstan-worker")
    client = await connect_temporal(settings)
    await ensure_search_attributes(client, settings.temporal_namespace)
    pool = await create_pool(settings.database_url.get_secret_value())
    try:
        await migrate(pool)
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            worker = Worker(
                client,
                task_queue=settings.temporal_task_queue,
                workflows=ALL_WORKFLOWS,
                activities=build_activities(
                    pool, http, client=client, task_queue=settings.temporal_task_queue, settings=settings
                ),
                # Fall back to any worker quickly when the one holding a workflow in its sticky
                # cache is gone (e.g. a replica was stopped), instead of after the 10 s default.
                sticky_queue_schedule_to_start_timeout=timedelta(seconds=2),
                # Every held queue lock keeps one idle, long-polling watch_lock_holder activity in a
                # slot; with the default 100 slots, 100 concurrently started services would starve
                # every other activity. Idle async slots are cheap; a dedicated watcher task queue
                # is the lasting fix.
                max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
                # A task hand-off schedules pushes and bookkeeping in the same workflow task as the
                # next task's emit; with the default 3 eager slots the emit often waited in the
                # queue (bench/README.md). Eager dispatch skips the task-queue round trip.
                max_eager_activity_reservations_per_workflow_task=EAGER_ACTIVITIES_PER_TASK,
                graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
            )
            metrics_server = MetricsServer(settings) if settings.worker_metrics_port is not None else None
            if metrics_server is not None:
                metrics_server.start()
                _log.info("worker metrics served", port=metrics_server.port, path="/metrics")
            try:
                async with worker:
                    # CDEvents subscribers are served by one forwarder workflow; the first worker starts it.
                    await start_forwarder(client, settings.temporal_task_queue)
                    _log.info("worker started", task_queue=settings.temporal_task_queue)
                    await stop.wait()
                    _log.info("worker stopping")
            finally:
                if metrics_server is not None:
                    metrics_server.stop()
    finally:
        await pool.close()
        flush_tracing()  # export buffered spans: the process exits without finalizers
    _log.info("worker stopped")


async def main_async(settings: Settings) -> None:
    """Run the worker until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_worker(settings, stop)
