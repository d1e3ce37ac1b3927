import asyncio
from datetime import timedelta

import pytest

from store import projects
from store.events import insert_event
from store.sequence_states import StateEvaluation, StateQuery, get_sequence_states
from store.sequences import record_execution
from tests.store.factories import BASE_TIME, shipyard, wire
from tests.store.sequence_helpers import execution

DEPLOY = "sh.keptn.event.deployment"
EVAL = "sh.keptn.event.evaluation"


@pytest.fixture
async def project(pool):
    await projects.create_project(pool, "sockshop", shipyard())


async def _events(pool, *events):
    for event in events:
        await insert_event(pool, event)


async def _only_state(pool, **filters):
    page = await get_sequence_states(pool, StateQuery(project="sockshop", **filters))
    assert len(page.states) == 1
    return page.states[0]


async def _delivery_in_dev(pool, *, finished: bool):
    """A dev delivery: deployment passed, evaluation warned, release errored (and, if finished, the
    sequence's own .finished); plus events of the context the view must not pick."""
    await _events(
        pool,
        wire("sh.keptn.event.dev.delivery.triggered", id="T", seconds=0),
        wire(
            f"{DEPLOY}.triggered",
            id="D",
            seconds=1,
            configurationChange={"values": {"image": "carts:0.13.1"}},
        ),
        wire(f"{DEPLOY}.started", id="D-s", triggeredid="D", seconds=2),
        wire(f"{DEPLOY}.finished", id="D-f", triggeredid="D", seconds=3, result="pass", status="succeeded"),
        wire(f"{EVAL}.triggered", id="E", seconds=4),
        # lighthouse's own SLI round trip answers nothing the sequence emitted
        wire("sh.keptn.event.get-sli.triggered", id="G", triggeredid="E", seconds=5),
        wire("sh.keptn.event.get-sli.finished", id="G-f", triggeredid="G", seconds=6, result="fail"),
        wire(
            f"{EVAL}.finished",
            id="E-f",
            triggeredid="E",
            seconds=7,
            source="lighthouse-service",
            result="warning",
            status="succeeded",
            evaluation={"score": 75.5},
        ),
        # another service's answer counts as an event, but not as the evaluation
        wire(f"{EVAL}.finished", id="E-f2", triggeredid="E", seconds=8, source="other", result="pass"),
        wire("sh.keptn.event.release.triggered", id="R", seconds=9),
        wire("sh.keptn.event.release.finished", id="R-f", triggeredid="R", seconds=10, status="errored"),
        wire(f"{EVAL}.invalidated", id="E-i", triggeredid="E", seconds=11),
        # a later deployment in another context does not leak in
        wire(
            f"{DEPLOY}.triggered",
            id="other-D",
            context="ctx-2",
            seconds=12,
            configurationChange={"values": {"image": "carts:9"}},
        ),
    )
    done = (("deployment", "D"), ("evaluation", "E"), ("release", "R"))
    if finished:
        await _events(
            pool,
            wire(
                "sh.keptn.event.dev.delivery.finished",
                id="T-f",
                triggeredid="T",
                seconds=13,
                result="fail",
                status="errored",
            ),
        )
        picture = execution("T", state="finished", status="errored", result="fail", previous=done, updated=13)
    else:
        picture = execution("T", state="started", previous=done[:2], current="R", updated=10)
    await record_execution(pool, picture)


async def test_stage_details_come_from_the_events_of_the_stages_sequences(pool, project):
    await _delivery_in_dev(pool, finished=False)
    state = await _only_state(pool)
    assert (state.keptn_context, state.name, state.service, state.state) == (
        "ctx-1",
        "delivery",
        "carts",
        "started",
    )
    assert state.time == BASE_TIME
    (dev,) = state.stages
    assert (dev.name, dev.state, dev.image) == ("dev", "triggered", "carts:0.13.1")
    assert dev.latest_evaluation == StateEvaluation(result="warning", score=75.5)
    assert (dev.latest_event.id, dev.latest_event.type) == ("R-f", "sh.keptn.event.release.finished")
    assert dev.latest_event.time == BASE_TIME + timedelta(seconds=10)
    assert dev.latest_failed_event.id == "R-f"


async def test_the_sequence_finished_event_ends_the_stage(pool, project):
    await _delivery_in_dev(pool, finished=True)
    state = await _only_state(pool)
    assert state.state == "finished"
    (dev,) = state.stages
    assert dev.state == "errored"
    assert dev.latest_event.id == dev.latest_failed_event.id == "T-f"


async def test_a_stage_without_events_yet_has_no_details(pool, project):
    await record_execution(pool, execution("T", state="waiting", blocked_by="ctx-0"))
    (stage,) = (await _only_state(pool)).stages
    assert stage.blocked_by == "ctx-0"
    assert (stage.image, stage.latest_evaluation, stage.latest_event, stage.latest_failed_event) == (
        None,
        None,
        None,
        None,
    )


async def test_an_evaluation_without_a_numeric_score_scores_zero(pool, project):
    await _events(
        pool,
        wire(f"{EVAL}.triggered", id="E", seconds=1),
        wire(
            f"{EVAL}.finished",
            id="E-f",
            triggeredid="E",
            seconds=2,
            source="lighthouse-service",
            result="fail",
        ),
    )
    await record_execution(pool, execution("T", previous=(("evaluation", "E"),)))
    (stage,) = (await _only_state(pool)).stages
    assert stage.latest_evaluation == StateEvaluation(result="fail", score=0.0)


async def _three_contexts(pool):
    await record_execution(
        pool, execution("a", context="c1", seconds=1, state="finished", status="succeeded")
    )
    await record_execution(pool, execution("b", context="c2", seconds=2, sequence="evaluation"))
    await record_execution(pool, execution("c", context="c3", seconds=3, state="waiting"))


async def test_paging_newest_first(pool, project):
    await _three_contexts(pool)
    first = await get_sequence_states(pool, StateQuery(project="sockshop", page_size=2))
    assert ([s.keptn_context for s in first.states], first.next_offset, first.total_count) == (
        ["c3", "c2"],
        2,
        3,
    )
    last = await get_sequence_states(pool, StateQuery(project="sockshop", page_size=2, offset=2))
    assert ([s.keptn_context for s in last.states], last.next_offset, last.total_count) == (["c1"], None, 3)
    past = await get_sequence_states(pool, StateQuery(project="sockshop", page_size=2, offset=10))
    assert (past.states, past.next_offset, past.total_count) == ([], None, 3)


async def test_filters(pool, project):
    await _three_contexts(pool)

    async def contexts(**filters):
        page = await get_sequence_states(pool, StateQuery(project="sockshop", **filters))
        return [s.keptn_context for s in page.states]

    assert await contexts(name="evaluation") == ["c2"]
    assert await contexts(state="waiting") == ["c3"]
    assert await contexts(state="finished") == ["c1"]
    assert await contexts(keptn_contexts=("c1", "c3", "nope")) == ["c3", "c1"]
    assert await contexts(from_time=BASE_TIME + timedelta(seconds=1)) == ["c3", "c2"]
    assert await contexts(before_time=BASE_TIME + timedelta(seconds=3)) == ["c2", "c1"]
    assert await contexts(
        from_time=BASE_TIME + timedelta(seconds=1), before_time=BASE_TIME + timedelta(seconds=3)
    ) == ["c2"]
    assert (await get_sequence_states(pool, StateQuery(project="other"))).total_count == 0


async def test_a_page_costs_two_queries_whatever_its_size(pool, project):
    for n in range(12):
        context = f"c{n:02d}"
        for m, stage in enumerate(("dev", "staging", "production")):
            trigger, task = f"{context}-{stage}", f"{context}-{stage}-d"
            await _events(
                pool,
                wire(f"sh.keptn.event.{stage}.delivery.triggered", id=trigger, context=context, stage=stage),
                wire(f"{DEPLOY}.triggered", id=task, context=context, stage=stage, seconds=1),
                wire(
                    f"{DEPLOY}.finished",
                    triggeredid=task,
                    context=context,
                    stage=stage,
                    seconds=2,
                    result="fail",
                ),
            )
            picture = execution(
                trigger, context=context, stage=stage, seconds=n * 10 + m, previous=(("d", task),)
            )
            await record_execution(pool, picture)
    queries: list[str] = []
    async with pool.acquire() as conn:
        conn.add_query_logger(lambda record: queries.append(record.query))
        page = await get_sequence_states(conn, StateQuery(project="sockshop", page_size=10))
        await asyncio.sleep(0)  # asyncpg calls query loggers soon after, not during, the query
        issued = len(queries)  # before the pool's reset query on release
    assert len(page.states) == 10 and all(len(s.stages) == 3 for s in page.states)
    assert all(stage.latest_failed_event is not None for s in page.states for stage in s.stages)
    assert issued == 2
