"""What both phases record, the loop that drives N sequences C at a time, and the metrics of a phase.

A phase knows its sequences by a key (the Keptn context, or the baseline's workflow id) and its
steps by name (the task names, or the step numbers). Times are ``time.time()`` of this process,
except ``stored``, which comes from the server that stored the sequence's end (PostgreSQL's
``received_at`` of the ``.finished`` event, or Temporal's close time of the workflow).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.stats import summary_ms

log = logging.getLogger("bench")


@dataclass
class Recorder:
    """Times of one phase, per sequence key and step name."""

    steps: Sequence[str]
    trigger_sent: dict[str, float] = field(default_factory=dict)
    """When the trigger was sent (the HTTP request, or ``start_workflow``, began)."""
    trigger_accepted: dict[str, float] = field(default_factory=dict)
    """When the trigger was accepted (its HTTP 200, or ``start_workflow`` returned)."""
    arrived: dict[tuple[str, str], float] = field(default_factory=dict)
    """When the integration received a step's task (its handler started)."""
    triggered_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    answer_sent: dict[tuple[str, str], float] = field(default_factory=dict)
    """When the integration began sending the step's final answer (``.finished`` / the signal)."""
    answer_returned: dict[tuple[str, str], float] = field(default_factory=dict)
    """When that send returned (the gateway's HTTP 200 / the signal call)."""
    answer_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    done_seen: dict[str, float] = field(default_factory=dict)
    """When this process learnt that the sequence ended."""
    stored: dict[str, float] = field(default_factory=dict)
    """When the sequence's end was stored, by the storing server's clock."""
    _done: dict[str, asyncio.Event] = field(default_factory=dict)

    def _event(self, key: str) -> asyncio.Event:
        return self._done.setdefault(key, asyncio.Event())

    def mark_done(self, key: str, at: float | None = None) -> None:
        """The sequence ``key`` ended (seen now, or at ``at``)."""
        self.done_seen.setdefault(key, at if at is not None else time.time())
        self._event(key).set()

    async def wait_done(self, key: str, within: float) -> bool:
        """Wait until :meth:`mark_done` was called for ``key``; False on timeout."""
        try:
            await asyncio.wait_for(self._event(key).wait(), within)
        except TimeoutError:
            return False
        return True


@dataclass
class DriveResult:
    """What :func:`drive` measured."""

    keys: list[str]
    """Keys of the sequences that ended, in trigger order."""
    failed: int
    wall_s: float


async def drive(
    count: int,
    concurrency: int,
    trigger: Callable[[int], Awaitable[str]],
    recorder: Recorder,
    *,
    sequence_timeout: float,
) -> DriveResult:
    """Trigger ``count`` sequences, at most ``concurrency`` running at once; wait for each to end.

    Args:
        count: how many sequences.
        concurrency: how many may run at the same time.
        trigger: starts sequence ``i`` and returns its key (it records ``trigger_accepted``).
        recorder: where the ends are marked.
        sequence_timeout: seconds one sequence may take before it counts as failed.
    """
    slots = asyncio.Semaphore(concurrency)
    order: dict[int, str] = {}
    failed = 0

    async def one(index: int) -> None:
        nonlocal failed
        async with slots:
            try:
                key = await trigger(index)
            except Exception as exc:  # count it and carry on: the JSON says how many completed
                log.error("trigger %d failed: %r", index, exc)
                failed += 1
                return
            if await recorder.wait_done(key, sequence_timeout):
                order[index] = key
            else:
                log.error("sequence %s did not end within %.0f s", key, sequence_timeout)
                failed += 1

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    wall = time.perf_counter() - began
    return DriveResult([order[i] for i in sorted(order)], failed, wall)


def _pairs(recorder: Recorder, keys: list[str]) -> list[float]:
    steps = recorder.steps
    found = []
    for key in keys:
        for before, after in zip(steps, steps[1:], strict=False):
            arrived = recorder.arrived.get((key, after))
            returned = recorder.answer_returned.get((key, before))
            if arrived is not None and returned is not None:
                found.append(arrived - returned)
    return found


def phase_metrics(recorder: Recorder, result: DriveResult, count: int) -> dict[str, Any]:
    """Throughput and latency summaries of one phase (latencies in ms)."""
    keys = result.keys
    first, last = recorder.steps[0], recorder.steps[-1]
    first_task = [
        recorder.arrived[(k, first)] - recorder.trigger_accepted[k]
        for k in keys
        if (k, first) in recorder.arrived
    ]
    close = [
        recorder.stored[k] - recorder.answer_returned[(k, last)]
        for k in keys
        if k in recorder.stored and (k, last) in recorder.answer_returned
    ]
    sequence = [recorder.stored[k] - recorder.trigger_accepted[k] for k in keys if k in recorder.stored]
    seen = [recorder.done_seen[k] - recorder.trigger_accepted[k] for k in keys if k in recorder.done_seen]
    answer = [
        recorder.answer_returned[(k, s)] - recorder.answer_sent[(k, s)]
        for k in keys
        for s in recorder.steps
        if (k, s) in recorder.answer_returned and (k, s) in recorder.answer_sent
    ]
    return {
        "sequences_triggered": count,
        "sequences_completed": len(keys),
        "sequences_failed": result.failed,
        "wall_s": round(result.wall_s, 3),
        "sequences_per_s": round(len(keys) / result.wall_s, 3) if result.wall_s > 0 else None,
        "handoff_ms": summary_ms(_pairs(recorder, keys)),
        "first_task_ms": summary_ms(first_task),
        "close_ms": summary_ms(close),
        "sequence_ms": summary_ms(sequence),
        "sequence_seen_ms": summary_ms(seen),
        "answer_post_ms": summary_ms(answer),
    }


def sample(keys: list[str], size: int) -> list[str]:
    """Up to ``size`` keys spread evenly over the run (start, middle and end alike)."""
    if size <= 0 or not keys:
        return []
    if len(keys) <= size:
        return list(keys)
    step = len(keys) / size
    return [keys[int(i * step)] for i in range(size)]
