"""SIGKILL the worker process, start a new one: every sequence still finishes, and nothing doubles.

The worker runs as a separate process (``python -m worker``, configured only through ``CAPSTAN_*``
variables, as ``capstan up`` and docker-compose start it), so a real SIGKILL takes its sticky
cache, its running activities and its database connections with it. The gateway is served over
loopback HTTP by the test process. The integration is an SDK integration in push mode behind a
small recording proxy: the test sees every delivery attempt and can hold one open while it kills.

What a kill costs, by Temporal's rules (the test prints the measured times):

* the workflow was waiting on signals: its next workflow task goes to the dead worker's sticky
  queue and moves to the normal queue after ``sticky_queue_schedule_to_start_timeout`` (2 s);
* an activity was running: the server retries it on another worker once its
  ``start_to_close_timeout`` has passed (10 s for store writes, 30 s for pushes) — at least once, and
  always with the same event, so receivers and the store deduplicate by id.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from capstan.sdk import Integration
from capstan.sdk._push import PushServer
from capstan.settings import Settings
from tests.chaos.harness import (
    ROOT,
    SHIPYARD,
    TASKS,
    TOKEN,
    Answerer,
    Chaos,
    Delivery,
    PushProxy,
    RecordingTransport,
    WorkerProcesses,
    eventually,
    processes_with_env,
    report,
)
from tests.workflows.stack import terminate_open_workflows
from workflows.context_models import context_workflow_id
from workflows.queue_lock_models import lock_workflow_id

pytestmark = [pytest.mark.slow, pytest.mark.timeout(110)]


async def create_project(api: httpx.AsyncClient, project: str) -> None:
    body = {"name": project, "shipyard": base64.b64encode(SHIPYARD.encode()).decode()}
    created = await api.post("/controlPlane/v1/project", json=body)
    assert created.status_code == 201, created.text
    service = await api.post(f"/controlPlane/v1/project/{project}/service", json={"serviceName": "carts"})
    assert service.status_code == 200, service.text


@pytest.fixture
async def chaos(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[Chaos]:
    client = temporal_env.client
    address = client.service_client.config.target_host
    queue = f"chaos-{uuid.uuid4()}"
    project = f"chaos-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url=db_url, api_token=TOKEN, temporal_address=address, temporal_task_queue=queue
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSTAN_")}
    env.update(
        PYTHONPATH=str(ROOT),
        CAPSTAN_DATABASE_URL=db_url,
        CAPSTAN_TEMPORAL_ADDRESS=address,
        CAPSTAN_TEMPORAL_TASK_QUEUE=queue,
        CAPSTAN_API_TOKEN=TOKEN,
        CAPSTAN_DATA_DIR=str(tmp_path / "data"),
        CAPSTAN_LOG_FORMAT="json",
    )
    workers = WorkerProcesses(env, tmp_path)
    answerer = Answerer()
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(timeout=10) as forwarder:
            proxy = PushProxy(forwarder)
            gateway, proxy_server = (
                PushServer(app, host="127.0.0.1", port=0),
                PushServer(proxy.app(), host="127.0.0.1", port=0),
            )
            await gateway.start()
            await proxy_server.start()
            api_url = f"http://127.0.0.1:{gateway.port}/api"
            sent = RecordingTransport()
            integration = Integration(
                "chaos-tester",
                api_url=api_url,
                token=TOKEN,
                mode="push",
                host="127.0.0.1",
                port=0,
                public_url=f"http://127.0.0.1:{proxy_server.port}/",
                heartbeat_interval=1.0,
                shutdown_grace=1.0,
                transport=sent,
            )
            for task in TASKS:
                integration.task(task, projects=[project])(answerer.handle)
            try:
                async with (
                    httpx.AsyncClient(base_url=api_url, headers={"x-token": TOKEN}, timeout=10) as api,
                    integration.running(),
                ):
                    await create_project(api, project)
                    await asyncio.wait_for(integration.wait_until_registered(), 20)
                    proxy.target = f"http://127.0.0.1:{integration.port}/"
                    await workers.start()
                    try:
                        yield Chaos(api, pool, client, project, workers, proxy, answerer, sent)
                    finally:
                        answerer.holds.release_all()
                        proxy.holds.release_all()
                        await terminate_open_workflows(client, queue)
                        await workers.stop()
            finally:
                # bounded: uvicorn waits for open connections, and a failed test may leave one
                await asyncio.wait_for(proxy_server.stop(), 10)
                await asyncio.wait_for(gateway.stop(), 10)
    finally:
        workers.kill_all()
        left = processes_with_env(queue)
        assert not left, f"processes left behind: {left}"


async def kill_mid_task(chaos: Chaos) -> tuple[str, float]:
    """Kill while test.triggered is with the integration and its push activity still runs.

    Returns:
        The context, and when the interrupted push started (monotonic).
    """
    push = chaos.proxy.holds.arm("sh.keptn.event.test.triggered")
    task = chaos.answerer.holds.arm("test")
    context = await chaos.trigger()
    await asyncio.wait_for(asyncio.gather(push.reached.wait(), task.reached.wait()), 20)
    pushed_at = time.monotonic()
    await chaos.settled(context_workflow_id(chaos.project, context), "push_event")
    killed = chaos.workers.kill()
    task.released.set()  # the integration answers while no worker runs
    push.released.set()  # the push's response goes to a dead worker
    restart = await chaos.workers.start()
    done = await chaos.finished(context, within=30)
    report(f"killed mid-task: kill -> sequence finished {done - killed:.1f} s (worker start {restart:.1f} s)")
    return context, pushed_at


async def kill_while_idle(chaos: Chaos) -> list[str]:
    """Run a sequence, let everything settle, kill; trigger the next one while no worker runs."""
    before = await chaos.trigger()
    await chaos.finished(before, within=30)
    await chaos.client.get_workflow_handle(context_workflow_id(chaos.project, before)).result()
    await chaos.settled(lock_workflow_id(chaos.project, "dev", "carts"))
    killed = chaos.workers.kill()
    after = await chaos.trigger()  # accepted: the gateway needs no worker
    restart = await chaos.workers.start()
    done = await chaos.finished(after, within=30)
    report(
        f"killed while idle: kill -> sequence finished {done - killed:.1f} s (worker start {restart:.1f} s)"
    )
    return [before, after]


async def kill_mid_store_write(chaos: Chaos, db_url: str) -> str:
    """Kill while the emit of deployment.triggered is inside its database transaction.

    The event row is written, the open-event row waits for a table lock the test holds: the dead
    worker's transaction never commits, and the new worker's retry writes both once.
    """
    blocker = await asyncpg.connect(db_url)
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE open_triggered_events IN SHARE MODE")
        context = await chaos.trigger()

        async def emit_blocked() -> bool:
            # from another connection: inside a transaction, pg_stat_activity is a frozen snapshot
            waiting: int = await chaos.pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO open_triggered_events%'"
            )
            return waiting > 0

        await eventually(emit_blocked, "the emit to wait for the table lock", within=20)
        await chaos.settled(context_workflow_id(chaos.project, context), "emit_event")
        killed = chaos.workers.kill()
        await transaction.rollback()
    finally:
        await blocker.close()
    stored = [row["type"] for row in await chaos.stored(context)]
    assert stored == ["sh.keptn.event.dev.delivery.triggered"], stored
    restart = await chaos.workers.start()
    done = await chaos.finished(context, within=45)
    report(
        f"killed mid-store-write: kill -> sequence finished {done - killed:.1f} s (worker start "
        f"{restart:.1f} s; the emit is retried once its start-to-close timeout is over)"
    )
    return context


async def test_sigkilled_workers_lose_nothing_and_deliver_nothing_twice(chaos: Chaos, db_url: str) -> None:
    contexts = await kill_while_idle(chaos)
    interrupted, pushed_at = await kill_mid_task(chaos)
    contexts += [interrupted, await kill_mid_store_write(chaos, db_url)]

    # The push the mid-task kill interrupted is retried by a later worker once its start-to-close
    # timeout (30 s) is over: the same event again, which the integration takes as a duplicate.
    async def redelivered() -> list[Delivery]:
        attempts = [
            d
            for d in chaos.proxy.deliveries
            if d.context == interrupted and d.type.endswith("test.triggered")
        ]
        return attempts if len(attempts) > 1 else []

    attempts = await eventually(redelivered, "the interrupted push to be retried", within=45)
    report(f"interrupted push retried {attempts[1].at - pushed_at:.1f} s after it started")
    for context in contexts:
        await chaos.assert_delivered_once(context)
        await chaos.assert_replayed_cleanly(context_workflow_id(chaos.project, context))
    await chaos.assert_replayed_cleanly(lock_workflow_id(chaos.project, "dev", "carts"))
