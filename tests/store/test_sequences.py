import asyncio

import pytest

from activities.sequence_state_models import SequenceExecutionUpdate
from keptn.errors import NotFoundError
from store import projects
from store.sequences import (
    ExecutionQuery,
    ExecutionRecord,
    query_executions,
    record_execution,
    summarize_context,
)
from tests.store.factories import BASE_TIME, shipyard
from tests.store.sequence_helpers import execution


@pytest.fixture
async def project(pool):
    await projects.create_project(pool, "sockshop", shipyard())


async def _state_row(pool, context="ctx-1"):
    return await pool.fetchrow("SELECT * FROM sequence_states WHERE keptn_context = $1", context)


def test_store_model_has_the_contract_fields():
    # the store may not import activities: its model must follow the contract by hand
    assert set(ExecutionRecord.model_fields) == set(SequenceExecutionUpdate.model_fields)


async def test_newer_picture_replaces_older_one_is_ignored(pool, project):
    assert await record_execution(pool, execution(state="started", updated=5))
    assert not await record_execution(pool, execution(state="waiting", updated=1))
    assert await pool.fetchval("SELECT state FROM sequence_executions") == "started"
    assert (await _state_row(pool))["state"] == "started"
    assert await record_execution(pool, execution(state="finished", status="succeeded", updated=9))
    assert await pool.fetchval("SELECT state FROM sequence_executions") == "finished"
    assert (await _state_row(pool))["state"] == "finished"


async def test_same_picture_twice_is_idempotent(pool, project):
    picture = execution(previous=(("deployment", "d1"),), current="e1")
    assert await record_execution(pool, picture)
    assert await record_execution(pool, picture)
    row = await pool.fetchrow("SELECT count(*) AS n, min(event_ids) AS ids FROM sequence_executions")
    assert (row["n"], row["ids"]) == (1, ["t-dev", "d1", "e1"])
    stored = ExecutionRecord.model_validate(await pool.fetchval("SELECT execution FROM sequence_executions"))
    assert stored == picture


async def test_concurrent_records_of_one_context_all_reach_its_state(pool, project):
    pictures = [execution(f"t-{n}", stage=f"s{n}", seconds=n, state="started") for n in range(6)]
    assert all(await asyncio.gather(*(record_execution(pool, p) for p in pictures)))
    stages = (await _state_row(pool))["stages"]
    assert [s["name"] for s in stages] == [f"s{n}" for n in range(6)]


async def test_unknown_project_is_not_found_and_deleting_a_project_drops_its_sequences(pool, project):
    with pytest.raises(NotFoundError, match="'nope'"):
        await record_execution(pool, execution(project="nope"))
    await record_execution(pool, execution())
    await projects.delete_project(pool, "sockshop")
    assert await pool.fetchval("SELECT count(*) FROM sequence_executions") == 0
    assert await pool.fetchval("SELECT count(*) FROM sequence_states") == 0


async def test_record_on_a_connection_joins_its_transaction(pool, project):
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        assert await record_execution(conn, execution())
        await transaction.rollback()
    assert await pool.fetchval("SELECT count(*) FROM sequence_states") == 0


# --- the view's rules, on the pure summary -------------------------------------------------------


def _overall(*pictures):
    return summarize_context(pictures).state


def _stage_states(*pictures):
    return {s.name: s.state for s in summarize_context(pictures).stages}


@pytest.mark.parametrize(
    ("states", "overall"),
    [
        (["triggered"], "triggered"),
        (["waiting"], "waiting"),
        (["started"], "started"),
        (["waitingForApproval"], "started"),
        (["paused"], "paused"),
        (["paused", "paused"], "paused"),
        (["paused", "started"], "started"),
        (["waiting", "started"], "started"),
        (["finished"], "finished"),
        (["aborted"], "aborted"),
        (["timedOut"], "timedOut"),
    ],
)
def test_overall_state_of_running_and_ended_contexts(states, overall):
    pictures = [execution(f"t{n}", stage=f"s{n}", state=s, seconds=n) for n, s in enumerate(states)]
    assert _overall(*pictures) == overall


def test_finished_only_when_no_stage_still_runs():
    dev = execution("t-dev", state="finished", status="succeeded", updated=10)
    staging = execution("t-staging", stage="staging", state="triggered", seconds=11)
    assert _overall(dev, staging) == "started"  # the next stage is triggered, not yet dispatched
    assert _stage_states(dev, staging) == {"dev": "succeeded", "staging": "triggered"}
    staging_done = execution("t-staging", stage="staging", state="finished", status="succeeded", seconds=11)
    assert _overall(dev, staging_done) == "finished"


def test_the_way_the_last_execution_ended_decides():
    timed_out = execution("t-a", stage="a", state="timedOut", status="errored", updated=5)
    finished = execution("t-b", stage="b", state="finished", status="succeeded", updated=9)
    assert _overall(timed_out, finished) == "finished"
    assert _overall(timed_out.model_copy(update={"updated_at": BASE_TIME.replace(hour=9)}), finished) == (
        "timedOut"
    )
    # an abort that Keptn reported as finished with status aborted is still an abort
    assert _overall(execution(state="finished", status="aborted")) == "aborted"


@pytest.mark.parametrize(
    ("state", "status", "stage_state"),
    [
        ("triggered", None, "triggered"),
        ("waiting", None, "triggered"),
        ("started", None, "triggered"),
        ("waitingForApproval", None, "triggered"),
        ("paused", None, "paused"),
        ("finished", "succeeded", "succeeded"),
        ("finished", "errored", "errored"),
        ("finished", "unknown", "unknown"),
        ("aborted", "aborted", "aborted"),
        ("timedOut", "errored", "errored"),
        ("aborted", None, "aborted"),
        ("timedOut", None, "errored"),
    ],
)
def test_stage_state_is_triggered_while_running_then_the_finished_status(state, status, stage_state):
    assert _stage_states(execution(state=state, status=status)) == {"dev": stage_state}


def test_newest_execution_of_a_stage_wins_and_stages_keep_first_trigger_order():
    first = execution("t-1", stage="production", sequence="remediation", state="finished", status="errored")
    staging = execution("t-2", stage="staging", seconds=2, state="finished", status="succeeded")
    again = execution("t-3", stage="production", sequence="remediation", seconds=5, state="started")
    summary = summarize_context([again, staging, first])
    assert [(s.name, s.state) for s in summary.stages] == [
        ("production", "triggered"),
        ("staging", "succeeded"),
    ]
    assert (summary.name, summary.service, summary.time) == ("remediation", "carts", BASE_TIME)


def test_blocked_by_only_while_waiting_and_problem_title_from_the_trigger():
    problem = {"problem": {"problemTitle": "cpu high", "State": "OPEN"}}
    waiting = execution(state="waiting", blocked_by="ctx-0", input_properties=problem)
    summary = summarize_context([waiting])
    assert summary.stages[0].blocked_by == "ctx-0"
    assert summary.problem_title == "cpu high"
    started = execution(state="started", blocked_by="ctx-0")
    assert summarize_context([started]).stages[0].blocked_by is None
    assert summarize_context([started]).problem_title is None
    with pytest.raises(ValueError):
        summarize_context([])


# --- GET /sequence-execution ---------------------------------------------------------------------


async def test_query_executions_filters_and_pages(pool, project):
    pictures = [
        execution("a", context="c1", stage="dev", state="finished", status="succeeded", seconds=1),
        execution("b", context="c1", stage="staging", state="started", seconds=2),
        execution("c", context="c2", stage="dev", service="orders", state="waiting", seconds=3),
        execution("d", context="c3", stage="dev", sequence="evaluation", state="started", seconds=4),
    ]
    for picture in pictures:
        await record_execution(pool, picture)

    async def ids(**filters):
        page = await query_executions(pool, ExecutionQuery(project="sockshop", **filters))
        return [x.triggered_id for x in page.executions]

    assert await ids() == ["d", "c", "b", "a"]
    assert await ids(stage="dev") == ["d", "c", "a"]
    assert await ids(service="orders") == ["c"]
    assert await ids(name="evaluation") == ["d"]
    assert await ids(state="started") == ["d", "b"]
    assert await ids(keptn_context="c1") == ["b", "a"]
    first = await query_executions(pool, ExecutionQuery(project="sockshop", page_size=3))
    assert (len(first.executions), first.next_offset, first.total_count) == (3, 3, 4)
    last = await query_executions(pool, ExecutionQuery(project="sockshop", page_size=3, offset=3))
    assert ([x.triggered_id for x in last.executions], last.next_offset) == (["a"], None)
    assert (await query_executions(pool, ExecutionQuery(project="other"))).total_count == 0
