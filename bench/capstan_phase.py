"""The Capstan phase: delivery sequences of a one-stage, three-task shipyard through the real stack.

Three SDK integrations (one per task) answer the tasks over HTTP, in push or pull mode. Their
handlers answer by hand (``auto_response=False``) so that the benchmark sees both ends of a hand-off:
a handler records when it received its ``.triggered`` event, then sends ``.started`` and
``.finished`` and records when the ``.finished`` POST returned. An observer registered like any
integration, with a push subscription to ``sh.keptn.event.dev.delivery.finished``, tells the
driver that a sequence ended; when it was stored is read from PostgreSQL afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import asyncpg
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.client import Client

from bench.history import History, delta, history_counts, load_history, segment_table
from bench.recorder import Recorder, drive, phase_metrics, sample
from bench.stack import Stack
from capstan.sdk import Integration, TaskContext
from capstan.sdk._push import PushServer
from workflows.context_models import TASK_EVENT_SIGNAL, context_workflow_id
from workflows.queue_lock_models import GRANTED_SIGNAL, REQUEST_LOCK_ACTIVITY

log = logging.getLogger("bench.capstan")

TASKS = ("deployment", "test", "release")
STAGE = "dev"
SEQUENCE_FINISHED = f"sh.keptn.event.{STAGE}.delivery.finished"
SHIPYARD = f"""apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {{name: shipyard-bench}}
spec:
  stages:
    - name: {STAGE}
      sequences:
        - name: delivery
          tasks: [{", ".join(f"{{name: {task}}}" for task in TASKS)}]
"""
HEARTBEAT_S = 10.0

Mode = Literal["push", "pull"]


async def _setup_project(http: httpx.AsyncClient, project: str, services: list[str]) -> None:
    shipyard = base64.b64encode(SHIPYARD.encode()).decode()
    created = await http.post("/controlPlane/v1/project", json={"name": project, "shipyard": shipyard})
    created.raise_for_status()
    slots = asyncio.Semaphore(8)

    async def add(service: str) -> None:
        async with slots:
            answer = await http.post(
                f"/controlPlane/v1/project/{project}/service", json={"serviceName": service}
            )
            answer.raise_for_status()

    await asyncio.gather(*(add(service) for service in services))


def _integration(
    stack: Stack, task: str, project: str, recorder: Recorder, *, mode: Mode, poll_interval: float, slots: int
) -> Integration:
    integration = Integration(
        f"bench-{task}",
        api_url=stack.api_url,
        token=stack.token,
        mode=mode,
        port=0,
        poll_interval=poll_interval,
        heartbeat_interval=HEARTBEAT_S,
        max_concurrency=slots,
        shutdown_grace=5.0,
    )

    @integration.task(task, projects=[project], auto_response=False)
    async def handle(ctx: TaskContext) -> None:
        key = (ctx.keptn_context, ctx.task)
        recorder.arrived.setdefault(key, time.time())
        recorder.triggered_ids[key] = ctx.triggered_id
        await ctx.send_started()
        recorder.answer_sent[key] = time.time()
        recorder.answer_ids[key] = await ctx.send_finished({ctx.task: {"bench": True}})
        recorder.answer_returned[key] = time.time()

    return integration


def _observer_app(recorder: Recorder) -> Starlette:
    async def receive(request: Request) -> JSONResponse:
        now = time.time()
        event = json.loads(await request.body())
        if event.get("type") == SEQUENCE_FINISHED:
            recorder.mark_done(str(event.get("shkeptncontext")), now)
        return JSONResponse({}, status_code=200)

    return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])


@contextlib.asynccontextmanager
async def _observer(http: httpx.AsyncClient, project: str, recorder: Recorder) -> AsyncIterator[None]:
    server = PushServer(_observer_app(recorder), host="127.0.0.1", port=0)
    await server.start()
    body = {
        "name": f"bench-observer-{project}",
        "metadata": {"hostname": "bench", "distributorversion": "bench", "location": "control-plane"},
        "subscriptions": [
            {
                "event": SEQUENCE_FINISHED,
                "filter": {"projects": [project]},
                "url": f"http://127.0.0.1:{server.port}/",
            }
        ],
    }
    registered = await http.post("/controlPlane/v1/uniform/registration", json=body)
    registered.raise_for_status()
    integration_id = registered.json()["id"]

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            with contextlib.suppress(httpx.HTTPError):
                await http.put(f"/controlPlane/v1/uniform/registration/{integration_id}/ping")

    beating = asyncio.create_task(heartbeat())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await server.stop()


async def run_capstan(
    stack: Stack,
    *,
    count: int,
    concurrency: int,
    mode: Mode,
    poll_interval: float,
    warmup: int,
    sequence_timeout: float,
    profile: int,
) -> dict[str, Any]:
    """Run the Capstan phase and return its metrics (see :func:`bench.recorder.phase_metrics`).

    Args:
        stack: the running ``capstan up``.
        count: sequences to measure.
        concurrency: sequences running at once.
        mode: how the integrations receive tasks.
        poll_interval: pull mode: seconds between polls.
        warmup: sequences run first and not measured.
        sequence_timeout: seconds one sequence may take.
        profile: how many sequences' histories to break down step by step.
    """
    project = f"bench-{uuid.uuid4().hex[:8]}"
    recorder = Recorder(TASKS)
    services = [f"warm-{i}" for i in range(warmup)] + [f"svc-{i}" for i in range(count)]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers={"x-token": stack.token}, timeout=30.0, limits=limits
    ) as http:
        await _setup_project(http, project, services)

        async def trigger(index: int, *, prefix: str = "svc") -> str:
            event = {
                "type": f"sh.keptn.event.{STAGE}.delivery.triggered",
                "source": "bench",
                "specversion": "1.0",
                "data": {"project": project, "stage": STAGE, "service": f"{prefix}-{index}"},
            }
            sent = time.time()
            accepted = await http.post("/v1/event", json=event)
            now = time.time()
            accepted.raise_for_status()
            context = str(accepted.json()["keptnContext"])
            recorder.trigger_sent[context] = sent
            recorder.trigger_accepted[context] = now
            return context

        async def warm(index: int) -> str:
            return await trigger(index, prefix="warm")

        slots = max(10, 2 * concurrency)
        integrations = [
            _integration(stack, t, project, recorder, mode=mode, poll_interval=poll_interval, slots=slots)
            for t in TASKS
        ]
        async with contextlib.AsyncExitStack() as running, _observer(http, project, recorder):
            for integration in integrations:
                await running.enter_async_context(integration.running())
            for integration in integrations:
                await asyncio.wait_for(integration.wait_until_registered(), 30)
            if warmup:
                log.info("capstan: %d warm-up sequences", warmup)
                await drive(warmup, warmup, warm, recorder, sequence_timeout=sequence_timeout)
            log.info("capstan: %d sequences, %d at a time, %s mode", count, concurrency, mode)
            result = await drive(count, concurrency, trigger, recorder, sequence_timeout=sequence_timeout)

    received = await _received_at(stack, project)
    for key in result.keys:
        stored = received.get((key, SEQUENCE_FINISHED))
        if stored is not None:
            recorder.stored[key] = stored
    metrics = phase_metrics(recorder, result, count)
    client = await Client.connect(stack.temporal_target)
    metrics["profile"] = await _profile(
        client, project, recorder, sample(result.keys, profile), received=received, mode=mode
    )
    return metrics


async def _received_at(stack: Stack, project: str) -> dict[tuple[str, str], float]:
    """``received_at`` of every stored event of the project, by (context, type) and by (id, "")."""
    connection = await asyncpg.connect(stack.database_url())
    try:
        rows = await connection.fetch(
            "SELECT id, type, shkeptncontext, received_at FROM events WHERE project = $1", project
        )
    finally:
        await connection.close()
    found: dict[tuple[str, str], float] = {}
    for row in rows:
        at = row["received_at"].timestamp()
        found[(row["id"], "")] = at
        found.setdefault((row["shkeptncontext"], row["type"]), at)
    return found


def _event_id_is(event_id: str) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, dict) and (value.get("event") or {}).get("id") == event_id


def _handoff_row(
    history: History,
    recorder: Recorder,
    key: str,
    before: str,
    after: str,
    *,
    received: dict[tuple[str, str], float],
    mode: Mode,
) -> dict[str, float | None] | None:
    finished_id = recorder.answer_ids.get((key, before))
    triggered_id = recorder.triggered_ids.get((key, after))
    if finished_id is None or triggered_id is None:
        return None
    signal = history.signal(TASK_EVENT_SIGNAL, _event_id_is(finished_id))
    emit = history.activity("emit_event", _event_id_is(triggered_id))
    if signal is None or emit is None:
        return None
    sent, returned = recorder.answer_sent.get((key, before)), recorder.answer_returned.get((key, before))
    # received_at is PostgreSQL's now(): the start of the storing transaction.
    stored, emitted = received.get((finished_id, "")), received.get((triggered_id, ""))
    arrived = recorder.arrived.get((key, after))
    row: dict[str, float | None] = {
        "answer_post": delta(sent, returned),
        "post_to_stored": delta(sent, stored),
        "stored_to_signaled": delta(stored, signal.time),
        "signaled_to_reply": delta(signal.time, returned),
        "signaled_to_wft_start": delta(signal.time, emit.wft_started),
        "wft_run": delta(emit.wft_started, emit.wft_completed),
        "emit_queue": delta(emit.scheduled, emit.started),
        "emit_run": delta(emit.started, emit.completed),
        "emit_started_to_begin": delta(emit.started, emitted),
        "emit_begin_to_completed": delta(emitted, emit.completed),
    }
    targets = history.activity("push_targets", _event_id_is(triggered_id))
    push = history.activity("push_event", _event_id_is(triggered_id))
    if mode == "push" and targets is not None and push is not None:
        # Before the emit-with-targets patch: push_targets was an activity (a hop) of its own.
        row |= {
            "emitted_to_wft2_start": delta(emit.completed, targets.wft_started),
            "wft2_run": delta(targets.wft_started, targets.wft_completed),
            "push_targets_queue": delta(targets.scheduled, targets.started),
            "push_targets_run": delta(targets.started, targets.completed),
            "targets_to_wft3_start": delta(targets.completed, push.wft_started),
            "wft3_run": delta(push.wft_started, push.wft_completed),
            "push_event_queue": delta(push.scheduled, push.started),
            "push_event_start_to_received": delta(push.started, arrived),
        }
    elif mode == "push" and push is not None:
        # emit_event returned the targets: push_event is scheduled by the next workflow task.
        row |= {
            "emitted_to_wft2_start": delta(emit.completed, push.wft_started),
            "wft2_run": delta(push.wft_started, push.wft_completed),
            "push_event_queue": delta(push.scheduled, push.started),
            "push_event_start_to_received": delta(push.started, arrived),
        }
    else:
        row["emitted_to_received"] = delta(emit.completed, arrived)
    row["handoff_total"] = delta(returned, arrived)
    return row


def _first_task_row(history: History, recorder: Recorder, key: str) -> dict[str, float | None] | None:
    """Milestones from the trigger's 200 to the first task's arrival, as offsets from the 200."""
    accepted = recorder.trigger_accepted.get(key)
    triggered_id = recorder.triggered_ids.get((key, TASKS[0]))
    shipyard = history.activity("load_shipyard", lambda _: True)
    lock = history.activity(REQUEST_LOCK_ACTIVITY, lambda _: True)
    granted = history.signal(GRANTED_SIGNAL, lambda _: True)
    if accepted is None or triggered_id is None or shipyard is None or lock is None:
        return None
    emit = history.activity("emit_event", _event_id_is(triggered_id))
    targets = history.activity("push_targets", _event_id_is(triggered_id))
    push = history.activity("push_event", _event_id_is(triggered_id))
    milestones = {
        "trigger_sent": recorder.trigger_sent.get(key),
        "workflow_started": history.started,
        "wft1_started": shipyard.wft_started,
        "load_shipyard_scheduled": shipyard.scheduled,
        "load_shipyard_completed": shipyard.completed,
        "request_lock_scheduled": lock.scheduled,
        "request_lock_completed": lock.completed,
        "lock_granted_signaled": granted.time if granted else None,
        "emit_scheduled": emit.scheduled if emit else None,
        "emit_completed": emit.completed if emit else None,
        "push_targets_completed": targets.completed if targets else None,
        "push_event_started": push.started if push else None,
        "received": recorder.arrived.get((key, TASKS[0])),
    }
    return {name: delta(accepted, at) for name, at in milestones.items()}


async def _profile(
    client: Client,
    project: str,
    recorder: Recorder,
    keys: list[str],
    *,
    received: dict[tuple[str, str], float],
    mode: Mode,
) -> dict[str, Any]:
    rows: list[dict[str, float | None]] = []
    firsts: list[dict[str, float | None]] = []
    histories = []
    for key in keys:
        history = await load_history(client, context_workflow_id(project, key))
        histories.append(history)
        if (first := _first_task_row(history, recorder, key)) is not None:
            firsts.append(first)
        for before, after in zip(TASKS, TASKS[1:], strict=False):
            row = _handoff_row(history, recorder, key, before, after, received=received, mode=mode)
            if row is not None:
                rows.append(row)
    return {
        "sequences_sampled": len(keys),
        "handoffs_sampled": len(rows),
        "segments_ms": segment_table(rows),
        "first_task_timeline_ms": segment_table(firsts),
        "per_sequence": history_counts(histories),
    }
