"""The Capstan side of the queue hand-over benchmark: pairs of sequences on one service.

Per pair, on a service of its own: sequence A is triggered and its one task (``deployment``)
arrives at an SDK integration, which sends ``.started`` and then holds the task; sequence B is
triggered for the same project/stage/service and queues behind A (the benchmark waits until the
queue lock's ``state`` query lists B). Then A's ``.finished`` is sent: A ends, frees the slot, and
the lock grants it to B, whose ``deployment.triggered`` is pushed to the integration. B answers at
once, and the pair is done when B's sequence end reaches an observer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from temporalio.client import Client

from bench.capstan_phase import SEQUENCE_FINISHED, STAGE, _observer, _received_at
from bench.history import delta, history_counts, load_history, segment_table
from bench.queue_pairs import PairTimes, handover_metrics
from bench.recorder import Recorder
from bench.stack import Stack
from capstan.sdk import Integration, TaskContext
from workflows.context_models import TASK_EVENT_SIGNAL, context_workflow_id
from workflows.queue_lock_models import GRANTED_SIGNAL, RELEASE_SIGNAL, STATE_QUERY, lock_workflow_id

log = logging.getLogger("bench.queue")

TASK = "deployment"
SHIPYARD = f"""apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {{name: shipyard-queue-bench}}
spec:
  stages:
    - name: {STAGE}
      sequences:
        - name: delivery
          tasks: [{{name: {TASK}}}]
"""
ROLE_LABEL = "bench-role"
QUEUED_TIMEOUT_S = 60.0


@dataclass
class _Pair:
    service: str
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the blocker may answer."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the blocker's task arrived (it holds the slot)."""
    blocker: str = ""
    waiter: str = ""


async def _queued(client: Client, project: str, pair: _Pair) -> None:
    """Wait until the lock of the pair's service lists the waiter in its queue."""
    handle = client.get_workflow_handle(lock_workflow_id(project, STAGE, pair.service))
    holder = context_workflow_id(project, pair.waiter)
    deadline = time.monotonic() + QUEUED_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # the lock may not answer queries yet
            state: dict[str, Any] = await handle.query(STATE_QUERY)
            if any(request.get("holder") == holder for request in state.get("queue", [])):
                return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{pair.waiter} did not queue behind {pair.blocker} on {pair.service}")


async def run_capstan_pairs(
    stack: Stack, *, pairs: int, concurrency: int, warmup: int, pair_timeout: float, profile: int
) -> dict[str, Any]:
    """Run ``pairs`` hand-overs (after ``warmup`` unmeasured ones) and return their metrics."""
    project = f"queue-{uuid.uuid4().hex[:8]}"
    times = PairTimes()
    done = Recorder(steps=(TASK,))  # only its sequence-end events are used
    names = [f"warm-{i}" for i in range(warmup)] + [f"svc-{i}" for i in range(pairs)]
    by_service = {name: _Pair(name) for name in names}
    client = await Client.connect(stack.temporal_target)
    integration = Integration(
        "bench-queue-deployment",
        api_url=stack.api_url,
        token=stack.token,
        mode="push",
        port=0,
        heartbeat_interval=10.0,
        max_concurrency=max(10, 4 * concurrency),
        shutdown_grace=5.0,
    )

    @integration.task(TASK, projects=[project], auto_response=False)
    async def handle(ctx: TaskContext) -> None:
        times.arrived.setdefault(ctx.keptn_context, time.time())
        await ctx.send_started()
        if ctx.labels.get(ROLE_LABEL) == "blocker":
            by_service[ctx.service].arrived.set()
            await by_service[ctx.service].gate.wait()
        times.answer_sent[ctx.keptn_context] = time.time()
        times.answer_ids[ctx.keptn_context] = await ctx.send_finished({TASK: {"bench": True}})
        times.answer_returned[ctx.keptn_context] = time.time()

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers={"x-token": stack.token}, timeout=30.0, limits=limits
    ) as http:
        shipyard = base64.b64encode(SHIPYARD.encode()).decode()
        (
            await http.post("/controlPlane/v1/project", json={"name": project, "shipyard": shipyard})
        ).raise_for_status()
        for name in names:
            answer = await http.post(
                f"/controlPlane/v1/project/{project}/service", json={"serviceName": name}
            )
            answer.raise_for_status()

        async def trigger(service: str, role: str) -> str:
            event = {
                "type": f"sh.keptn.event.{STAGE}.delivery.triggered",
                "source": "bench",
                "specversion": "1.0",
                "data": {
                    "project": project,
                    "stage": STAGE,
                    "service": service,
                    "labels": {ROLE_LABEL: role},
                },
            }
            accepted = await http.post("/v1/event", json=event)
            accepted.raise_for_status()
            return str(accepted.json()["keptnContext"])

        async def one(pair: _Pair) -> None:
            pair.blocker = await trigger(pair.service, "blocker")
            await pair.arrived.wait()  # A holds the slot once its task arrived
            pair.waiter = await trigger(pair.service, "waiter")
            times.waiter_of[pair.blocker] = pair.waiter
            times.service_of[pair.blocker] = pair.service
            await _queued(client, project, pair)
            pair.gate.set()
            if not await done.wait_done(pair.waiter, pair_timeout):
                raise TimeoutError(f"the waiting sequence {pair.waiter} did not end")

        async with contextlib.AsyncExitStack() as running, _observer(http, project, done):
            await running.enter_async_context(integration.running())
            await asyncio.wait_for(integration.wait_until_registered(), 30)
            warm = [by_service[f"warm-{i}"] for i in range(warmup)]
            measured = [by_service[f"svc-{i}"] for i in range(pairs)]
            await asyncio.gather(*(one(p) for p in warm))
            slots = asyncio.Semaphore(concurrency)
            failed = 0

            async def limited(pair: _Pair) -> None:
                nonlocal failed
                async with slots:
                    try:
                        await asyncio.wait_for(one(pair), pair_timeout)
                    except Exception as exc:  # counted: the JSON says how many completed
                        log.error("pair on %s failed: %r", pair.service, exc)
                        failed += 1

            began = time.perf_counter()
            await asyncio.gather(*(limited(p) for p in measured))
            wall = time.perf_counter() - began

    received = await _received_at(stack, project)
    blockers = [p.blocker for p in measured if p.waiter and p.waiter in done.done_seen]
    for blocker in blockers:
        stored = received.get((blocker, SEQUENCE_FINISHED))
        if stored is not None:
            times.blocker_stored[blocker] = stored
    metrics = handover_metrics(times, blockers, pairs=pairs, failed=failed, wall_s=wall)
    metrics["profile"] = await _profile(client, project, times, blockers[:profile], received)
    return metrics


async def _profile(
    client: Client,
    project: str,
    times: PairTimes,
    blockers: list[str],
    received: dict[tuple[str, str], float],
) -> dict[str, Any]:
    """Split sampled hand-overs at the server times of the two context workflows' histories."""
    rows: list[dict[str, float | None]] = []
    histories = []
    for blocker in blockers:
        waiter = times.waiter_of[blocker]
        first = await load_history(client, context_workflow_id(project, blocker))
        second = await load_history(client, context_workflow_id(project, waiter))
        histories.append(second)
        finished_id = times.answer_ids.get(blocker)
        signal = first.signal(TASK_EVENT_SIGNAL, _id_is(finished_id))
        granted = second.signal(GRANTED_SIGNAL, lambda _: True)
        lock = await load_history(client, lock_workflow_id(project, STAGE, times.service_of[blocker]))
        released = lock.signal(RELEASE_SIGNAL, _holder_is(context_workflow_id(project, blocker)))
        emit = second.activity("emit_event", lambda v: _event_type(v).endswith(f"{TASK}.triggered"))
        push = second.activity("push_event", lambda v: _event_type(v).endswith(f"{TASK}.triggered"))
        returned, arrived = times.answer_returned.get(blocker), times.arrived.get(waiter)
        rows.append(
            {
                "answer_to_signaled": delta(times.answer_sent.get(blocker), signal.time if signal else None),
                "signaled_to_blocker_stored": delta(
                    signal.time if signal else None, times.blocker_stored.get(blocker)
                ),
                "blocker_stored_to_granted": delta(
                    times.blocker_stored.get(blocker), granted.time if granted else None
                ),
                "blocker_stored_to_released": delta(
                    times.blocker_stored.get(blocker), released.time if released else None
                ),
                "released_to_granted": delta(
                    released.time if released else None, granted.time if granted else None
                ),
                "granted_to_emit_scheduled": delta(
                    granted.time if granted else None, emit.scheduled if emit else None
                ),
                "emit_run": delta(emit.started if emit else None, emit.completed if emit else None),
                "emitted_to_push_started": delta(
                    emit.completed if emit else None, push.started if push else None
                ),
                "push_started_to_received": delta(push.started if push else None, arrived),
                "handover_total": delta(returned, arrived),
            }
        )
    return {
        "pairs_sampled": len(rows),
        "segments_ms": segment_table(rows),
        "waiter_per_sequence": history_counts(histories),
        "received_events": len(received),
    }


def _holder_is(holder: str) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, dict) and value.get("holder") == holder


def _id_is(event_id: str | None) -> Callable[[Any], bool]:
    return lambda value: event_id is not None and _event_id(value) == event_id


def _event_id(value: Any) -> Any:
    return (value.get("event") or {}).get("id") if isinstance(value, dict) else None


def _event_type(value: Any) -> str:
    return str((value.get("event") or {}).get("type", "")) if isinstance(value, dict) else ""
