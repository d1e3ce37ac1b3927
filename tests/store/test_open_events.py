import pytest

from keptn.errors import InvalidInputError, NotFoundError
from store import projects
from store.open_events import OpenTriggeredQuery, close_triggered, list_open_triggered, open_triggered
from tests.store.factories import shipyard, wire

DEPLOY = "sh.keptn.event.deployment.triggered"


async def page(pool, **query):
    return await list_open_triggered(pool, OpenTriggeredQuery(event_type=DEPLOY, **query))


@pytest.fixture
async def project(pool):
    await projects.create_project(pool, "sockshop", shipyard())
    await projects.create_project(pool, "other", shipyard())


async def test_open_list_close(pool, project):
    first = wire(DEPLOY, id="t1", seconds=1)
    second = wire(DEPLOY, id="t2", seconds=2, stage="staging")
    for event in (first, second):
        await open_triggered(pool, event)
    await open_triggered(pool, first)  # idempotent: a retried activity
    await open_triggered(pool, wire("sh.keptn.event.test.triggered", id="t3"))
    found = await page(pool)
    assert found.events == [second, first]  # newest first, the events as emitted
    assert (found.total_count, found.next_page_key, found.page_size) == (2, "0", 20)

    await close_triggered(pool, ["t2", "unknown"])
    await close_triggered(pool, ["t2"])
    await close_triggered(pool, [])
    assert [e["id"] for e in (await page(pool)).events] == ["t1"]


async def test_filters(pool, project):
    await open_triggered(pool, wire(DEPLOY, id="a", stage="dev", service="carts"))
    await open_triggered(pool, wire(DEPLOY, id="b", stage="staging", service="carts", seconds=1))
    await open_triggered(pool, wire(DEPLOY, id="c", stage="dev", service="db", project="other", seconds=2))

    async def ids(**query):
        return [e["id"] for e in (await page(pool, **query)).events]

    assert await ids() == ["c", "b", "a"]
    assert await ids(project="sockshop") == ["b", "a"]
    assert await ids(stage="dev") == ["c", "a"]
    assert await ids(service="carts", stage="dev") == ["a"]
    assert await ids(event_id="b") == ["b"]
    assert await ids(event_id="b", stage="dev") == []


async def test_paging(pool, project):
    for i in range(5):
        await open_triggered(pool, wire(DEPLOY, id=f"e{i}", seconds=i))
    first = await page(pool, page_size=2)
    assert [e["id"] for e in first.events] == ["e4", "e3"]
    assert (first.next_page_key, first.total_count) == ("2", 5)
    last = await page(pool, page_size=2, offset=4)
    assert [e["id"] for e in last.events] == ["e0"]
    assert last.next_page_key == "0"


async def test_unknown_project_is_not_found_and_deleted_projects_disappear(pool, project):
    with pytest.raises(NotFoundError) as caught:
        await page(pool, project="nope")
    assert caught.value.field == "project"
    await open_triggered(pool, wire(DEPLOY, id="x", project="other"))
    await projects.delete_project(pool, "other")
    assert (await page(pool)).events == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": ""}, "id"),
        ({"type": "sh.keptn.event.deployment.finished"}, "type"),
        ({"time": "yesterday"}, "time"),
    ],
)
async def test_only_triggered_events_with_an_id_can_be_opened(pool, change, field):
    with pytest.raises(InvalidInputError) as caught:
        await open_triggered(pool, {**wire(DEPLOY), **change})
    assert caught.value.field == field


async def test_open_joins_the_callers_transaction(pool, project):
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await open_triggered(conn, wire(DEPLOY, id="rolled-back"))
        await transaction.rollback()
    assert (await page(pool)).events == []
