"""Capstan on separately run services, scaled out to two workers and two gateways, upgraded in place.

One :class:`tests.deploy.stack.DeployStack` serves the module (separate processes are slow to
start): a Temporal dev server started on its own with a non-default namespace and no search
attributes, a fresh database on the machine's PostgreSQL service, two workers and two gateways on
one task queue. The tests skip when that PostgreSQL service (``CAPSTAN_DEPLOY_POSTGRES_URL``,
default ``postgresql://postgres@127.0.0.1:5432/postgres``) is not there.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from capstan.temporal import SEARCH_ATTRIBUTES
from tests.chaos.harness import report
from tests.deploy.load import LoadResult, by_worker, run_load
from tests.deploy.stack import DeployStack, deploy_stack, postgres_reachable

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SCALE_OUT = 20
"""Sequences driven through both gateways in the scale-out test."""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack() -> AsyncIterator[DeployStack]:
    if not await postgres_reachable():
        pytest.skip("no PostgreSQL service at CAPSTAN_DEPLOY_POSTGRES_URL (default 127.0.0.1:5432)")
    async with deploy_stack() as started:
        yield started


def _assert_clean(load: LoadResult, stack: DeployStack) -> None:
    result = load.result
    assert load.drained, f"sequences did not all finish{stack.logs()}"
    assert not result["problems"], json.dumps(result["problems"][:10], indent=1) + stack.logs()
    sequences = result["sequences"]
    assert sequences["accepted"] == sequences["triggered"] == sequences["finished"] == sequences["passed"]
    assert (result["duplicates"], result["losses"], result["integration_violations"]) == (0, 0, 0)
    assert not load.log.server_errors(), load.log.server_errors()[:5]
    assert not load.failed_workflow_tasks, load.failed_workflow_tasks[:5]


async def test_external_temporal_and_postgres(stack: DeployStack) -> None:
    """Nothing assumes the embedded defaults: namespace, database, search attributes all external."""
    client = await Client.connect(stack.temporal_target, namespace=stack.namespace)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=stack.namespace)
    )
    # the dev server was started without them: the workers registered them
    assert set(SEARCH_ATTRIBUTES) <= set(listed.custom_attributes)

    project = f"ext-{uuid.uuid4().hex[:6]}"
    load = await run_load(stack, project, interval=0.2, services=1, sequences=1)
    _assert_clean(load, stack)
    context = load.driver.triggers[0].context
    described = await client.get_workflow_handle(f"keptn-{project}-{context}").describe()
    assert described.namespace == stack.namespace
    assert described.task_queue == stack.task_queue
    conn = await asyncpg.connect(stack.database_url)  # the machine's PostgreSQL, the run's database
    try:
        stored = await conn.fetchval("SELECT count(*) FROM events WHERE shkeptncontext = $1", context)
    finally:
        await conn.close()
    assert stored == 11  # trigger, 3 tasks x (triggered, started, finished), finished


async def test_two_workers_two_gateways_share_the_work_once(stack: DeployStack) -> None:
    cpu_before = stack.cpu()
    load = await run_load(
        stack, f"scale-{uuid.uuid4().hex[:6]}", interval=0.1, services=6, sequences=SCALE_OUT
    )
    cpu_per_sequence_ms = {
        name: round(1000 * (used - cpu_before[name]) / SCALE_OUT) for name, used in stack.cpu().items()
    }
    _assert_clean(load, stack)
    workflow_tasks = by_worker(load.identities["workflow_task"], stack.worker_pids())
    activities = by_worker(load.identities["activity"], stack.worker_pids())
    report(
        f"scale-out: {SCALE_OUT} sequences in {load.seconds:.1f} s ({SCALE_OUT / load.seconds:.2f}/s, "
        f"load average {os.getloadavg()[0]:.1f}); requests per gateway {dict(load.served)}; "
        f"workflow tasks per worker {workflow_tasks}; activities per worker {activities}; "
        f"CPU ms per sequence {cpu_per_sequence_ms}"
    )
    # both gateways answered (the driver's triggers and the integrations' answers and polls)
    assert len(load.served) == 2 and min(load.served.values()) >= SCALE_OUT, load.served
    # both workers ran workflow tasks and activities of these sequences, and nobody else did
    assert all(count > 0 for count in workflow_tasks.values()), workflow_tasks
    assert all(count > 0 for count in activities.values()), activities


async def test_rolling_restart_under_load_loses_nothing(stack: DeployStack) -> None:
    """Each worker, then each gateway, stopped (SIGTERM) and started again while the other serves."""
    before = stack.worker_pids()

    async def roll() -> None:
        for index in range(2):
            await stack.workers[index].stop()
            await stack.start_worker(index)
        for index in range(2):
            await stack.gateways[index].stop()
            await stack.start_gateway(index)

    load = await run_load(stack, f"roll-{uuid.uuid4().hex[:6]}", interval=0.4, services=4, during=roll)
    _assert_clean(load, stack)
    after = [pid for pid in stack.worker_pids() if pid not in before]
    assert len(after) == 2
    sequences = load.result["sequences"]
    codes = load.log.between(0, float("inf"))
    report(f"rolling restart: {sequences}; status codes {codes}")
    assert sequences["accepted"] >= 8, sequences
    # the restarted workers took over: they ran workflow tasks of the load
    workflow_tasks = by_worker(load.identities["workflow_task"], stack.worker_pids())
    assert all(workflow_tasks[pid] > 0 for pid in after), workflow_tasks
