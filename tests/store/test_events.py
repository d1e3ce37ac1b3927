import asyncio
from datetime import timedelta

import pytest

from keptn.errors import InvalidInputError
from store import projects
from store.events import (
    EventQuery,
    EventTypeQuery,
    get_event,
    get_events,
    get_events_by_type,
    insert_event,
    invalidated_type,
    parse_event_time,
)
from store.filters import parse_filter
from tests.store.factories import BASE_TIME, shipyard, wire


async def test_insert_is_idempotent_on_id(pool):
    event = wire(id="e1")
    assert await insert_event(pool, event) is True
    changed = {**event, "source": "other"}
    assert await insert_event(pool, changed) is False
    assert await get_event(pool, "e1") == event
    assert await pool.fetchval("SELECT count(*) FROM events") == 1


async def test_concurrent_duplicates_are_stored_once(pool):
    event = wire(id="dup")
    results = await asyncio.gather(*(insert_event(pool, event) for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]


async def test_insert_on_a_connection_joins_its_transaction(pool):
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        assert await insert_event(conn, wire(id="rolled-back"))
        await transaction.rollback()
    assert await get_event(pool, "rolled-back") is None


async def test_event_round_trips_unchanged(pool):
    event = wire(id="e2", labels={"a": "b"}, deployment={"uris": ["x"], "n": None}, extra=1.5)
    event["gitcommitid"] = "abc"
    event["traceparent"] = "00-abc-01"
    await insert_event(pool, event)
    assert await get_event(pool, "e2") == event
    assert await get_event(pool, "missing") is None


@pytest.mark.parametrize("missing", ["id", "type", "source"])
async def test_insert_rejects_events_without_required_attributes(pool, missing):
    event = wire()
    del event[missing]
    with pytest.raises(InvalidInputError) as caught:
        await insert_event(pool, event)
    assert caught.value.field == missing


def test_parse_event_time():
    assert parse_event_time("2024-01-02T03:04:05.000Z") == BASE_TIME
    assert parse_event_time("2024-01-02T03:04:05") == BASE_TIME
    assert parse_event_time("2024-01-02T05:04:05.000000001+02:00") == BASE_TIME
    with pytest.raises(InvalidInputError) as caught:
        parse_event_time("yesterday", field="fromTime")
    assert caught.value.field == "fromTime"
    assert "yesterday" in caught.value.message


async def _seed(pool):
    ids = {}
    for n, (kind, ctx, seconds, extra) in enumerate(
        [
            ("sh.keptn.event.dev.delivery.triggered", "c1", 0, {}),
            ("sh.keptn.event.deployment.triggered", "c1", 1, {}),
            ("sh.keptn.event.deployment.finished", "c1", 2, {"result": "pass"}),
            ("sh.keptn.event.dev.delivery.triggered", "c2", 3, {"service": "orders"}),
            ("sh.keptn.event.deployment.triggered", "c2", 4, {"service": "orders"}),
        ]
    ):
        event = wire(kind, id=f"e{n}", context=ctx, seconds=seconds, **extra)
        ids[f"e{n}"] = event
        await insert_event(pool, event)
    await insert_event(pool, wire(id="other", project="other", context="c9", seconds=5))
    return ids


async def test_get_events_newest_first_with_paging(pool):
    await _seed(pool)
    first = await get_events(pool, EventQuery(project="sockshop", page_size=2))
    assert [e["id"] for e in first.events] == ["e4", "e3"]
    assert (first.next_page_key, first.page_size, first.total_count) == ("2", 2, 5)
    second = await get_events(pool, EventQuery(project="sockshop", page_size=2, offset=2))
    assert [e["id"] for e in second.events] == ["e2", "e1"]
    last = await get_events(pool, EventQuery(project="sockshop", page_size=2, offset=4))
    assert [e["id"] for e in last.events] == ["e0"]
    assert last.next_page_key is None
    beyond = await get_events(pool, EventQuery(project="sockshop", offset=50))
    assert beyond.events == [] and beyond.total_count == 5


async def test_ties_on_time_go_by_arrival_newest_first(pool):
    for n in range(3):
        await insert_event(pool, wire(id=f"t{n}", seconds=0))
    page = await get_events(pool, EventQuery(project="sockshop"))
    assert [e["id"] for e in page.events] == ["t2", "t1", "t0"]


async def test_get_events_filters(pool):
    await _seed(pool)

    async def ids(**query):
        return [e["id"] for e in (await get_events(pool, EventQuery(**query))).events]

    assert await ids(keptn_context="c1") == ["e2", "e1", "e0"]
    assert await ids(project="sockshop", type="sh.keptn.event.deployment.triggered") == ["e4", "e1"]
    assert await ids(project="sockshop", service="orders") == ["e4", "e3"]
    assert await ids(project="sockshop", stage="prod") == []
    assert await ids(project="sockshop", event_id="e2") == ["e2"]
    assert await ids(project="sockshop", source="nobody") == []
    assert await ids(project="sockshop", source="test", keptn_context="c2") == ["e4", "e3"]
    assert await ids(project="sockshop", from_time=BASE_TIME + timedelta(seconds=1)) == ["e4", "e3", "e2"]
    assert await ids(project="sockshop", before_time=BASE_TIME + timedelta(seconds=1)) == ["e0"]
    assert await ids(
        project="sockshop",
        from_time=BASE_TIME,
        before_time=BASE_TIME + timedelta(seconds=3),
    ) == ["e2", "e1"]


async def test_root_events_are_the_oldest_of_each_context(pool):
    await _seed(pool)
    # an older event of c2 arriving late becomes its root
    await insert_event(
        pool, wire("sh.keptn.event.dev.delivery.triggered", id="early", context="c2", seconds=-10)
    )
    page = await get_events(pool, EventQuery(project="sockshop", root=True))
    assert [e["id"] for e in page.events] == ["e0", "early"]
    assert page.total_count == 2
    only_c1 = await get_events(pool, EventQuery(keptn_context="c1", root=True))
    assert [e["id"] for e in only_c1.events] == ["e0"]


async def test_get_events_requires_project_or_context(pool):
    with pytest.raises(InvalidInputError) as caught:
        await get_events(pool, EventQuery(type="x"))
    assert caught.value.field == "keptnContext"
    assert "project" in caught.value.message


async def test_events_by_type_with_filter(pool):
    await _seed(pool)
    await insert_event(
        pool,
        wire("sh.keptn.event.deployment.finished", id="fail", context="c2", seconds=6, result="fail"),
    )

    async def ids(filter_text, **query):
        q = EventTypeQuery(
            event_type="sh.keptn.event.deployment.finished", clauses=tuple(parse_filter(filter_text)), **query
        )
        return [e["id"] for e in await get_events_by_type(pool, q)]

    assert await ids("data.project:sockshop") == ["fail", "e2"]
    assert await ids("data.project:sockshop AND data.result:pass") == ["e2"]
    assert await ids("data.project:sockshop AND data.result:pass,fail") == ["fail", "e2"]
    assert await ids("shkeptncontext:c2") == ["fail"]
    assert await ids("data.project:sockshop", limit=1) == ["fail"]
    assert await ids("data.project:sockshop", from_time=BASE_TIME + timedelta(seconds=2)) == ["fail"]
    assert await ids("data.project:other") == []


async def test_events_by_type_requires_project_or_context(pool):
    query = EventTypeQuery(event_type="x", clauses=tuple(parse_filter("data.result:pass")))
    with pytest.raises(InvalidInputError) as caught:
        await get_events_by_type(pool, query)
    assert caught.value.field == "filter"


async def test_exclude_invalidated_evaluations(pool):
    finished = "sh.keptn.event.evaluation.finished"
    await insert_event(pool, wire(finished, id="ev1", triggeredid="t1", seconds=1))
    await insert_event(pool, wire(finished, id="ev2", triggeredid="t2", seconds=2))
    await insert_event(pool, wire(finished, id="ev3", seconds=3))  # no triggeredid: never excluded
    await insert_event(
        pool, wire("sh.keptn.event.evaluation.invalidated", id="inv", triggeredid="t1", seconds=4)
    )
    # another kind of event sharing the triggeredid does not invalidate
    await insert_event(pool, wire("sh.keptn.event.evaluation.started", id="st", triggeredid="t2", seconds=5))
    clauses = tuple(parse_filter("data.project:sockshop AND data.service:carts"))

    async def ids(exclude):
        q = EventTypeQuery(event_type=finished, clauses=clauses, exclude_invalidated=exclude)
        return [e["id"] for e in await get_events_by_type(pool, q)]

    assert await ids(False) == ["ev3", "ev2", "ev1"]
    assert await ids(True) == ["ev3", "ev2"]


def test_invalidated_type():
    assert invalidated_type("sh.keptn.event.evaluation.finished") == "sh.keptn.event.evaluation.invalidated"


async def test_last_event_types_and_deployed_image(pool):
    await projects.create_project(pool, "sockshop", shipyard())
    await projects.create_service(pool, "sockshop", "carts")
    triggered = wire(
        "sh.keptn.event.deployment.triggered",
        id="dt",
        seconds=1,
        configurationChange={"values": {"image": "carts:0.13.1"}},
    )
    await insert_event(pool, triggered)
    await insert_event(pool, wire("sh.keptn.event.deployment.finished", id="df", triggeredid="dt", seconds=2))
    # an older event of a type seen already does not replace the newer one
    await insert_event(pool, wire("sh.keptn.event.deployment.triggered", id="old", seconds=0))
    # sequence events are not task events
    await insert_event(pool, wire("sh.keptn.event.dev.delivery.triggered", id="seq", seconds=3))
    project = await projects.get_project(pool, "sockshop")
    assert project is not None
    carts = project.stages[0].services[0]
    assert carts.deployed_image == "carts:0.13.1"
    assert {t: e.event_id for t, e in carts.last_event_types.items()} == {
        "sh.keptn.event.deployment.triggered": "dt",
        "sh.keptn.event.deployment.finished": "df",
    }
    assert carts.last_event_types["sh.keptn.event.deployment.finished"].keptn_context == "ctx-1"
    assert project.stages[1].services[0].last_event_types == {}
