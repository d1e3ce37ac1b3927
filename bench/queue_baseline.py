"""The baseline side of the queue hand-over benchmark: :mod:`bench.queue_baseline_workflow` pairs.

Same dev server as Capstan, worker and receiver in this process. Per pair: the lock workflow is
started, then A; once A's task reached the receiver, B is started and the benchmark waits until
the lock's ``queue`` query lists it; then the receiver signals A's ``finished``, and B's task
POST arriving at the receiver ends the hand-over. B is answered at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from bench.baseline import Deliverer
from bench.baseline_workflow import FINISHED_SIGNAL
from bench.queue_baseline_workflow import (
    LOCK_WORKFLOW,
    QUEUE_QUERY,
    QUEUED_WORKFLOW,
    BenchLock,
    BenchQueued,
    QueuedInput,
)
from bench.queue_pairs import PairTimes, handover_metrics
from capstan.sdk._push import PushServer

log = logging.getLogger("bench.queue")


def _receiver(
    client: Client, times: PairTimes, gates: dict[str, asyncio.Event], arrivals: dict[str, asyncio.Event]
) -> Starlette:
    pending: set[asyncio.Task[None]] = set()

    async def answer(workflow_id: str) -> None:
        gate = gates.get(workflow_id)
        if gate is not None:
            await gate.wait()
        times.answer_sent[workflow_id] = time.time()
        await client.get_workflow_handle(workflow_id).signal(FINISHED_SIGNAL, 0)
        times.answer_returned[workflow_id] = time.time()

    async def receive(request: Request) -> JSONResponse:
        now = time.time()
        workflow_id = str((await request.json())["workflow_id"])
        times.arrived.setdefault(workflow_id, now)
        arrivals.setdefault(workflow_id, asyncio.Event()).set()
        task = asyncio.create_task(answer(workflow_id))
        pending.add(task)
        task.add_done_callback(pending.discard)
        return JSONResponse({"accepted": True}, status_code=202)

    return Starlette(routes=[Route("/step", receive, methods=["POST"])])


async def _queued(lock: WorkflowHandle[Any, Any], waiter: str) -> None:
    """Wait until the lock's queue lists ``waiter``."""
    for _ in range(3000):
        if waiter in await lock.query(QUEUE_QUERY):
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{waiter} did not queue")


async def run_baseline_pairs(
    target: str, *, pairs: int, concurrency: int, warmup: int, pair_timeout: float
) -> dict[str, Any]:
    """Run ``pairs`` baseline hand-overs (after ``warmup`` unmeasured ones) and return their metrics."""
    client = await Client.connect(target)
    queue = f"bench-queue-{uuid.uuid4().hex[:8]}"
    times = PairTimes()
    gates: dict[str, asyncio.Event] = {}
    arrivals: dict[str, asyncio.Event] = {}
    server = PushServer(_receiver(client, times, gates, arrivals), host="127.0.0.1", port=0)
    await server.start()
    url = f"http://127.0.0.1:{server.port}/step"
    handles: dict[str, WorkflowHandle[Any, Any]] = {}

    async def one(name: str) -> str:
        lock_id, blocker, waiter = f"{queue}-{name}-lock", f"{queue}-{name}-a", f"{queue}-{name}-b"
        gates[blocker] = asyncio.Event()
        lock = await client.start_workflow(LOCK_WORKFLOW, 2, id=lock_id, task_queue=queue)
        handles[blocker] = await client.start_workflow(
            QUEUED_WORKFLOW, QueuedInput(url=url, lock_id=lock_id), id=blocker, task_queue=queue
        )
        await arrivals.setdefault(blocker, asyncio.Event()).wait()  # A holds the slot
        waiting = await client.start_workflow(
            QUEUED_WORKFLOW, QueuedInput(url=url, lock_id=lock_id), id=waiter, task_queue=queue
        )
        times.waiter_of[blocker] = waiter
        await _queued(lock, waiter)
        gates[blocker].set()
        await waiting.result()
        return blocker

    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)) as http:
            worker = Worker(
                client,
                task_queue=queue,
                workflows=[BenchLock, BenchQueued],
                activities=[Deliverer(http).deliver],
            )
            async with worker:
                await asyncio.gather(*(one(f"warm{i}") for i in range(warmup)))
                slots = asyncio.Semaphore(concurrency)
                failed = 0

                async def limited(index: int) -> str | None:
                    nonlocal failed
                    async with slots:
                        try:
                            return await asyncio.wait_for(one(f"pair{index}"), pair_timeout)
                        except Exception as exc:  # counted: the JSON says how many completed
                            log.error("baseline pair %d failed: %r", index, exc)
                            failed += 1
                            return None

                began = time.perf_counter()
                done = await asyncio.gather(*(limited(i) for i in range(pairs)))
                wall = time.perf_counter() - began
            blockers = [b for b in done if b is not None]
            for blocker in blockers:
                described = await handles[blocker].describe()
                if described.close_time is not None:
                    times.blocker_stored[blocker] = described.close_time.timestamp()
    finally:
        await server.stop()
    return handover_metrics(times, blockers, pairs=pairs, failed=failed, wall_s=wall)
