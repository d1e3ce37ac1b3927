"""Steady load through both gateways of a :class:`DeployStack`, with the fault suite's driver and checks."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from tests.chaos.faults import FaultStack
from tests.chaos.load import Driver, Integrations, StatusLog, Tracker, create_project
from tests.chaos.verify import verify
from tests.deploy.stack import TOKEN, Balancer, DeployStack

VIA_BALANCER = "http://gateways/api"
"""Base URL of every client: the host is replaced by a gateway's address by :class:`Balancer`."""


@dataclass
class LoadResult:
    """What a load run saw: the checks' result, the status log, timings and who did the work."""

    result: dict[str, Any]
    log: StatusLog
    driver: Driver
    served: Counter[int]
    """Requests answered per gateway port (the driver's and the integrations')."""
    drained: bool
    seconds: float
    """From the first trigger to the last sequence seen finished."""
    identities: dict[str, Counter[str]] = field(default_factory=dict)
    """Per history event kind (workflow task / activity started): the worker identities."""
    failed_workflow_tasks: list[str] = field(default_factory=list)
    patched: Counter[str] = field(default_factory=Counter)
    """Per ``workflow.patched`` id: how many of the load's contexts recorded its marker."""


async def run_load(
    stack: DeployStack,
    project: str,
    *,
    interval: float,
    services: int = 6,
    sequences: int | None = None,
    during: Callable[[], Awaitable[None]] | None = None,
) -> LoadResult:
    """Trigger ``sequences`` deliveries through both gateways, or trigger steadily while ``during`` runs.

    Two SDK integrations (pull and push, :class:`tests.chaos.load.Integrations`) answer the tasks,
    also through the balancer. Afterwards every sequence must have finished, and the fault suite's
    :func:`tests.chaos.verify.verify` checks that nothing was lost or done twice.
    """
    log = StatusLog()
    balancer = Balancer(stack.gateway_ports)
    names = [f"svc-{i}" for i in range(services)]
    async with httpx.AsyncClient(
        base_url=VIA_BALANCER, headers={"x-token": TOKEN}, timeout=15, transport=balancer
    ) as api:
        await create_project(api, project, names)
        integrations = Integrations(VIA_BALANCER, TOKEN, project, log)
        for integration in (integrations.puller, integrations.pusher):
            # A registration renews the live one of the same name and namespace and keeps its
            # subscriptions (as Keptn's did): one namespace per run gives each its own.
            integration.namespace = project
        # each its own balancer: an SDK client closes its transport when it stops
        balancers = [balancer, *(Balancer(stack.gateway_ports) for _ in integrations.transports)]
        for transport, own in zip(integrations.transports, balancers[1:], strict=True):
            transport.inner = own  # type: ignore[assignment]
        async with integrations.running():
            driver = Driver(api, project, names, interval=interval, max_backlog=2 * services, log=log)
            tracker = Tracker(driver, stack.database_url)
            stop = asyncio.Event()
            tracking = asyncio.create_task(tracker.run(stop, interval=0.25))
            began = time.monotonic()
            try:
                if during is None:
                    for _ in range(sequences or 0):
                        driver.launch()
                        await asyncio.sleep(interval)
                    stop.set()
                    await driver.run(stop)  # only waits for the sends still retrying
                else:
                    driving = asyncio.create_task(driver.run(stop))
                    try:
                        await during()
                    finally:
                        stop.set()
                        await driving
            finally:
                stop.set()
                await tracking
            drained = await tracker.drain(stall=60)
            finished = [t.finished for t in driver.triggers if t.finished is not None]
            seconds = max(finished, default=began) - began
            # verify reads only the stack's database_url, which a DeployStack has too
            result = await verify(cast(FaultStack, stack), api, project, driver, integrations)
    served = sum((b.served for b in balancers), Counter[int]())
    load_result = LoadResult(result, log, driver, served, drained, seconds)
    await _read_histories(stack, load_result)
    return load_result


async def _read_histories(stack: DeployStack, load: LoadResult) -> None:
    """Who ran each workflow and activity task of the load's contexts, and which tasks failed."""
    client = await Client.connect(stack.temporal_target, namespace=stack.namespace)
    kinds = {
        EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED: "workflow_task",
        EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: "activity",
    }
    load.identities = {kind: Counter() for kind in kinds.values()}
    for trigger in (t for t in load.driver.triggers if t.context):
        workflow_id = f"keptn-{load.driver.project}-{trigger.context}"
        patches: set[str] = set()
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
                for payload in event.marker_recorded_event_attributes.details["patch-data"].payloads:
                    patches.add(json.loads(payload.data)["id"])
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                load.identities["workflow_task"][event.workflow_task_started_event_attributes.identity] += 1
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                load.identities["activity"][event.activity_task_started_event_attributes.identity] += 1
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                failure = event.workflow_task_failed_event_attributes.failure.message
                load.failed_workflow_tasks.append(f"{workflow_id}: {failure}")
        load.patched.update(patches)


def by_worker(identities: Counter[str], pids: list[int]) -> dict[int, int]:
    """Counts per worker pid (the SDK's default identity is ``<pid>@<hostname>``)."""
    counts = dict.fromkeys(pids, 0)
    for identity, count in identities.items():
        pid = int(identity.split("@", 1)[0])
        assert pid in counts, f"a task was run by {identity}, not by one of the stack's workers {pids}"
        counts[pid] += count
    return counts
