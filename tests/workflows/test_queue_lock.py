"""The queue lock workflow against a real Temporal dev server (requesters in ``queue_lock_helpers``)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.fixtures.ports import free_port
from tests.fixtures.temporal import _binary
from tests.workflows.queue_lock_helpers import (
    GrantRecorder,
    Lock,
    Requester,
    at,
    eventually,
    grant_count,
    grants_are,
    holders,
    holds_equal,
    lock_env,
    replays,
    run_count,
)
from workflows.queue_lock_models import LockOutcome


@pytest.fixture
async def lock(temporal_client: Client) -> AsyncIterator[Lock]:
    async with lock_env(temporal_client, idle_timeout=timedelta(seconds=2)) as env:
        yield env


async def test_waiters_are_granted_fifo_by_trigger_time_not_arrival(lock: Lock):
    first = await lock.requester("first", triggered_at=at(0), label="dev.delivery")
    await lock.wait(lambda s: s.holder == first.id)
    # submitted out of order: late, early, middle
    late = await lock.requester("late", triggered_at=at(30))
    await lock.wait(lambda s: len(s.queue) == 1)
    early = await lock.requester("early", triggered_at=at(10))
    await lock.wait(lambda s: len(s.queue) == 2)
    middle = await lock.requester("middle", triggered_at=at(20))
    state = await lock.wait(lambda s: len(s.queue) == 3)
    assert holders(state) == [early.id, middle.id, late.id]

    for current, following in [(first, early), (early, middle), (middle, late)]:
        await current.signal(Requester.let_go)
        await lock.wait(lambda s, f=following: s.holder == f.id)  # type: ignore[misc]
    await late.signal(Requester.let_go)
    results = [await h.result() for h in (first, early, middle, late)]
    granted = [r.granted_at[0] for r in results]
    assert granted == sorted(granted)
    await lock.wait(lambda s: s.holder is None and not s.queue)
    await replays(lock)


async def test_a_holder_is_never_blocked_by_itself(lock: Lock):
    holder = await lock.recorder("holder")
    other = await lock.recorder("other")
    await lock.acquire(holder.id, "h1", at(50))
    await lock.wait(lambda s: s.holds == 1)
    await lock.acquire(other.id, "o1", at(0))  # triggered earlier, but the lock is taken
    await lock.wait(lambda s: len(s.queue) == 1)
    await lock.acquire(holder.id, "h2", at(50))  # same holder: granted at once, past the queue
    state = await lock.wait(lambda s: s.holds == 2)
    assert state.holder == holder.id and holders(state) == [other.id]
    await eventually(lambda: grants_are(holder, ["h1", "h2"]))

    assert await lock.release(holder.id, "h1")
    state = await lock.wait(lambda s: s.holds == 1)
    assert state.holder == holder.id, "the holder still has h2"
    await lock.release(holder.id, "h2")
    await lock.wait(lambda s: s.holder == other.id)
    await eventually(lambda: grants_are(other, ["o1"]))


async def test_requester_helper_nests_acquisitions(lock: Lock):
    nested = await lock.requester("nested", triggered_at=at(0), acquisitions=2)
    state = await lock.wait(lambda s: s.holds == 2)
    assert state.holder == nested.id
    await eventually(lambda: holds_equal(nested, 2))
    await nested.signal(Requester.let_go)
    assert len((await nested.result()).granted_at) == 2
    await lock.wait(lambda s: s.holder is None)


async def test_a_grant_nobody_waits_for_is_given_back(lock: Lock):
    # e.g. a duplicate acquire that reached a new lock run after the requester had released
    bystander = await lock.requester("bystander", triggered_at=at(0), acquisitions=0)
    await lock.acquire(bystander.id, "stray", at(0))
    await lock.wait(lambda s: s.holds == 1)
    await lock.wait(lambda s: s.holder is None and not s.queue)
    assert await bystander.query(Requester.holds) == 0
    await bystander.signal(Requester.let_go)
    await bystander.result()


async def test_hand_over_is_prompt(lock: Lock):
    first = await lock.requester("first", triggered_at=at(0))
    await lock.wait(lambda s: s.holder == first.id)
    followers = []
    for i in range(1, 6):
        followers.append(await lock.requester(f"next{i}", triggered_at=at(i), hold=False))
        await lock.wait(lambda s, n=i: len(s.queue) == n)  # type: ignore[misc]

    started = time.monotonic()
    await first.signal(Requester.let_go)
    results = [await h.result() for h in [first, *followers]]
    wall = time.monotonic() - started
    latencies = [
        (following.granted_at[0] - current.released_at).total_seconds()
        for current, following in zip(results, results[1:], strict=False)
        if current.released_at is not None
    ]
    print(  # noqa: T201
        f"\nhand-over latency (release -> next grant, workflow clocks): "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
        f"5 hand-overs in {wall * 1000:.0f} ms wall"
    )
    assert max(latencies) < 3.0


async def test_a_terminated_holder_frees_the_lock(lock: Lock):
    holder = await lock.requester("holder", triggered_at=at(0))
    await lock.wait(lambda s: s.holder == holder.id)
    waiter = await lock.requester("waiter", triggered_at=at(1))
    await lock.wait(lambda s: len(s.queue) == 1)

    started = time.monotonic()
    await holder.terminate("operator killed it")
    await lock.wait(lambda s: s.holder == waiter.id)
    print(f"\nterminated holder -> next grant: {(time.monotonic() - started) * 1000:.0f} ms")  # noqa: T201
    await waiter.signal(Requester.let_go)
    await waiter.result()
    assert await lock.handle.result() == LockOutcome(granted=2, dropped=1)
    await replays(lock)


async def test_a_terminated_waiter_is_skipped(lock: Lock):
    holder = await lock.requester("holder", triggered_at=at(0))
    await lock.wait(lambda s: s.holder == holder.id)
    doomed = await lock.requester("doomed", triggered_at=at(1))
    await lock.wait(lambda s: len(s.queue) == 1)
    survivor = await lock.requester("survivor", triggered_at=at(2))
    await lock.wait(lambda s: len(s.queue) == 2)
    await doomed.terminate("gone while queued")

    await holder.signal(Requester.let_go)
    await lock.wait(lambda s: s.holder == survivor.id and not s.queue)
    await survivor.signal(Requester.let_go)
    await survivor.result()
    # the lock ends once idle, having granted the two live requesters
    assert await lock.handle.result() == LockOutcome(granted=2, dropped=1)


async def test_releasing_a_queued_request_withdraws_it(lock: Lock):
    holder = await lock.recorder("holder")
    waiter = await lock.recorder("waiter")
    await lock.acquire(holder.id, "h1", at(0))
    await lock.acquire(waiter.id, "w1", at(1))
    await lock.wait(lambda s: s.holder == holder.id and len(s.queue) == 1)
    assert await lock.release(waiter.id, "w1")
    await lock.wait(lambda s: not s.queue)
    await lock.release(holder.id, "h1")
    await lock.wait(lambda s: s.holder is None)
    assert await waiter.query(GrantRecorder.grants) == []


async def test_a_requester_that_gives_up_waiting_leaves_the_queue(lock: Lock):
    holder = await lock.requester("holder", triggered_at=at(0))
    await lock.wait(lambda s: s.holder == holder.id)
    impatient = await lock.requester("impatient", triggered_at=at(1), acquire_timeout=timedelta(seconds=1))
    assert (await impatient.result()).timed_out
    state = await lock.wait(lambda s: not s.queue)
    assert state.holder == holder.id
    await holder.signal(Requester.let_go)
    await holder.result()


async def test_a_requester_cancelled_while_queued_leaves_the_queue(lock: Lock):
    holder = await lock.requester("holder", triggered_at=at(0))
    await lock.wait(lambda s: s.holder == holder.id)
    aborted = await lock.requester("aborted", triggered_at=at(1))
    await lock.wait(lambda s: len(s.queue) == 1)
    await aborted.cancel()  # how a Keptn abort reaches a context workflow
    state = await lock.wait(lambda s: not s.queue)
    assert state.holder == holder.id
    await holder.signal(Requester.let_go)
    await holder.result()
    assert await lock.handle.result() == LockOutcome(granted=1, dropped=0)


async def test_duplicate_signals_are_idempotent(lock: Lock):
    first = await lock.recorder("first")
    second = await lock.recorder("second")
    await lock.acquire(first.id, "a1", at(0))
    await lock.acquire(first.id, "a1", at(0))
    await lock.acquire(second.id, "b1", at(1))
    await lock.acquire(second.id, "b1", at(1))
    state = await lock.wait(lambda s: s.holds == 1 and len(s.queue) == 1)
    assert state.holder == first.id

    assert await lock.release(first.id, "a1")
    await lock.wait(lambda s: s.holder == second.id)
    await lock.release(first.id, "a1")  # again: must not touch second's hold
    await lock.acquire(first.id, "a1", at(0))  # late duplicate of a released request: ignored
    await lock.release(second.id, "c1")  # released before it was requested (an abort racing it)
    await lock.acquire(second.id, "c1", at(2))
    await lock.acquire(second.id, "b2", at(3))  # a real one, to know the signals above are handled
    state = await lock.wait(lambda s: s.holds == 2)
    assert state.holder == second.id and not state.queue
    assert {r.request_id for r in state.held} == {"b1", "b2"}
    assert await first.query(GrantRecorder.grants) == ["a1"]
    assert await second.query(GrantRecorder.grants) == ["b1", "b2"]
    await replays(lock)


async def test_state_query_and_current_details(lock: Lock):
    holder = await lock.recorder("holder")
    waiter = await lock.recorder("waiter")
    await lock.acquire(holder.id, "h1", at(0), label="dev.delivery")
    await lock.acquire(waiter.id, "w1", at(5), label="dev.evaluation")
    state = await lock.wait(lambda s: len(s.queue) == 1)
    assert state.holder == holder.id and state.holds == 1
    assert [r.label for r in state.held] == ["dev.delivery"]
    assert state.queue[0].request_id == "w1" and state.queue[0].triggered_at == at(5)

    async def details() -> WorkflowMetadata:
        metadata: WorkflowMetadata = await lock.handle.query(
            "__temporal_workflow_metadata", result_type=WorkflowMetadata
        )
        return metadata

    # The details are written at the end of the workflow task that changed the state; a query
    # answered while a task is under way may still see the earlier text.
    async def described() -> bool:
        current = (await details()).current_details
        return holder.id in current and "1 waiting" in current

    await eventually(described)
    assert {d.name for d in (await details()).definition.signal_definitions} >= {"acquire", "release"}


async def test_the_lock_ends_when_idle_and_a_later_request_starts_a_new_run(lock: Lock):
    holder = await lock.recorder("holder")
    await lock.acquire(holder.id, "h1", at(0))
    await lock.wait(lambda s: s.holds == 1)
    first_run = (await lock.handle.describe()).run_id
    await lock.release(holder.id, "h1")
    assert await lock.handle.result() == LockOutcome(granted=1, dropped=0)
    assert not await lock.release(holder.id, "h1"), "nothing to signal once it ended"

    await lock.acquire(holder.id, "h2", at(1))
    await lock.wait(lambda s: s.holds == 1)
    assert (await lock.handle.describe()).run_id != first_run
    await eventually(lambda: grants_are(holder, ["h1", "h2"]))


async def test_requests_racing_the_idle_timeout_are_never_lost(temporal_client: Client):
    async with lock_env(temporal_client, idle_timeout=timedelta(milliseconds=100)) as lock:
        holder = await lock.recorder("holder")
        for i in range(15):
            await lock.acquire(holder.id, f"r{i}", at(i))
            await eventually(lambda h=holder, n=i + 1: grant_count(h, n))  # type: ignore[misc]
            await lock.release(holder.id, f"r{i}")
            await asyncio.sleep((i % 5) * 0.05)  # land before, around and after the idle timer


async def test_continue_as_new_carries_holder_and_queue():
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        data_converter=pydantic_data_converter,
        port=free_port(),
        dev_server_log_level="error",
        dev_server_extra_args=[
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--dynamic-config-value",
            "limit.historyCount.suggestContinueAsNew=40",
        ],
    )
    try:
        async with lock_env(env.client, idle_timeout=timedelta(seconds=2)) as lock:
            holder = await lock.recorder("holder")
            waiters = [await lock.recorder(f"w{i}") for i in range(4)]
            await lock.acquire(holder.id, "h0", at(0))
            for i, waiter in enumerate(waiters):
                await lock.acquire(waiter.id, f"w{i}", at(i + 1))
            await lock.wait(lambda s: len(s.queue) == 4)
            first_run = (await lock.handle.describe()).run_id

            for i in range(1, 16):  # re-entrant holds grow the history past the limit
                await lock.acquire(holder.id, f"h{i}", at(0))
                await lock.wait(lambda s, n=i: any(r.request_id == f"h{n}" for r in s.held))  # type: ignore[misc]
                await lock.release(holder.id, f"h{i}")
            state = await lock.wait(lambda s: s.holds == 1)
            assert state.holder == holder.id
            assert [r.request_id for r in state.queue] == ["w0", "w1", "w2", "w3"]
            runs = await run_count(lock, first_run)
            print(f"\nlock ran as {runs} runs")  # noqa: T201
            assert runs > 1

            await lock.release(holder.id, "h0")
            for i, waiter in enumerate(waiters):
                await eventually(lambda w=waiter, n=i: grants_are(w, [f"w{n}"]))  # type: ignore[misc]
                await lock.release(waiter.id, f"w{i}")
            assert await lock.handle.result() == LockOutcome(granted=20, dropped=0)
            await replays(lock)
    finally:
        await env.shutdown()
