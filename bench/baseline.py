"""The baseline phase: :mod:`bench.baseline_workflow` on the same dev server, in this process.

The worker (workflow and activity) and the HTTP receiver run here. The receiver records when each
step arrives, answers 202 at once, and then signals ``finished`` to the workflow, recording when the
signal call returned: the same two ends the Capstan phase measures around a hand-off.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from bench.baseline_workflow import (
    BASELINE_WORKFLOW,
    DELIVER_ACTIVITY,
    FINISHED_SIGNAL,
    BaselineInput,
    BaselineSequence,
    DeliverInput,
)
from bench.history import delta, history_counts, load_history, segment_table
from bench.recorder import Recorder, drive, phase_metrics, sample
from capstan.sdk._push import PushServer

log = logging.getLogger("bench.baseline")


class Deliverer:
    """The baseline's activity, sharing one HTTP client (as Capstan's worker does)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    @activity.defn(name=DELIVER_ACTIVITY)
    async def deliver(self, input: DeliverInput) -> None:
        """POST the step to the receiver; a non-2xx answer fails the attempt (and it is retried)."""
        response = await self._http.post(
            input.url, json={"workflow_id": input.workflow_id, "step": input.step}
        )
        response.raise_for_status()


def _receiver(client: Client, recorder: Recorder) -> Starlette:
    pending: set[asyncio.Task[None]] = set()

    async def answer(workflow_id: str, step: int) -> None:
        key = (workflow_id, str(step))
        recorder.answer_sent[key] = time.time()
        await client.get_workflow_handle(workflow_id).signal(FINISHED_SIGNAL, step)
        recorder.answer_returned[key] = time.time()

    async def receive(request: Request) -> JSONResponse:
        now = time.time()
        body = await request.json()
        workflow_id, step = str(body["workflow_id"]), int(body["step"])
        recorder.arrived.setdefault((workflow_id, str(step)), now)
        task = asyncio.create_task(answer(workflow_id, step))
        pending.add(task)
        task.add_done_callback(pending.discard)
        return JSONResponse({"accepted": True}, status_code=202)

    return Starlette(routes=[Route("/step", receive, methods=["POST"])])


async def run_baseline(
    target: str,
    *,
    count: int,
    concurrency: int,
    steps: int,
    warmup: int,
    sequence_timeout: float,
    profile: int,
) -> dict[str, Any]:
    """Run the baseline phase and return its metrics (see :func:`bench.recorder.phase_metrics`).

    Args:
        target: the dev server's ``host:port``.
        count: sequences to measure.
        concurrency: sequences running at once.
        steps: steps per sequence (Capstan's task count).
        warmup: sequences run first and not measured.
        sequence_timeout: seconds one sequence may take.
        profile: how many sequences' histories to break down step by step.
    """
    client = await Client.connect(target)
    recorder = Recorder([str(step) for step in range(steps)])
    queue = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    server = PushServer(_receiver(client, recorder), host="127.0.0.1", port=0)
    await server.start()
    url = f"http://127.0.0.1:{server.port}/step"
    handles = {}

    async def trigger(index: int, *, prefix: str = "run") -> str:
        workflow_id = f"{queue}-{prefix}-{index}"
        recorder.trigger_sent[workflow_id] = time.time()
        handle = await client.start_workflow(
            BASELINE_WORKFLOW,
            BaselineInput(url=url, steps=steps),
            id=workflow_id,
            task_queue=queue,
            execution_timeout=timedelta(seconds=sequence_timeout),
        )
        recorder.trigger_accepted[workflow_id] = time.time()
        handles[workflow_id] = handle

        async def watch() -> None:
            await handle.result()
            recorder.mark_done(workflow_id)

        watcher = asyncio.create_task(watch())
        watchers.add(watcher)
        watcher.add_done_callback(watchers.discard)
        return workflow_id

    watchers: set[asyncio.Task[None]] = set()
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)) as http:
            worker = Worker(
                client,
                task_queue=queue,
                workflows=[BaselineSequence],
                activities=[Deliverer(http).deliver],
            )
            async with worker:
                if warmup:
                    log.info("baseline: %d warm-up sequences", warmup)

                    async def warm(index: int) -> str:
                        return await trigger(index, prefix="warm")

                    await drive(warmup, warmup, warm, recorder, sequence_timeout=sequence_timeout)
                log.info("baseline: %d sequences, %d at a time", count, concurrency)
                result = await drive(count, concurrency, trigger, recorder, sequence_timeout=sequence_timeout)
            for key in result.keys:
                described = await handles[key].describe()
                if described.close_time is not None:
                    recorder.stored[key] = described.close_time.timestamp()
            metrics = phase_metrics(recorder, result, count)
            metrics["profile"] = await _profile(client, recorder, sample(result.keys, profile))
    finally:
        await server.stop()
    return metrics


def _equals(step: int) -> Callable[[Any], bool]:
    return lambda value: bool(value == step)


def _step_is(step: int) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, dict) and value.get("step") == step


async def _profile(client: Client, recorder: Recorder, keys: list[str]) -> dict[str, Any]:
    rows: list[dict[str, float | None]] = []
    histories = []
    for key in keys:
        history = await load_history(client, key)
        histories.append(history)
        for before, after in zip(recorder.steps, recorder.steps[1:], strict=False):
            signal = history.signal(FINISHED_SIGNAL, _equals(int(before)))
            act = history.activity(DELIVER_ACTIVITY, _step_is(int(after)))
            returned = recorder.answer_returned.get((key, before))
            arrived = recorder.arrived.get((key, after))
            if signal is None or act is None:
                continue
            rows.append(
                {
                    "signal_call": delta(recorder.answer_sent.get((key, before)), returned),
                    "signaled_to_reply": delta(signal.time, returned),
                    "signaled_to_wft_start": delta(signal.time, act.wft_started),
                    "wft_run": delta(act.wft_started, act.wft_completed),
                    "activity_queue": delta(act.scheduled, act.started),
                    "activity_start_to_received": delta(act.started, arrived),
                    "handoff_total": delta(returned, arrived),
                }
            )
    return {
        "sequences_sampled": len(keys),
        "handoffs_sampled": len(rows),
        "segments_ms": segment_table(rows),
        "per_sequence": history_counts(histories),
    }
