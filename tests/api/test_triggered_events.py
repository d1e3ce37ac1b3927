import asyncpg
import pytest

from store.db import create_pool
from store.open_events import close_triggered, open_triggered
from tests.api.helpers import assert_error, create_project
from tests.store.factories import wire

DEPLOY = "sh.keptn.event.deployment.triggered"
URL = "/api/controlPlane/v1/event/triggered/"


@pytest.fixture
async def store(db_url):
    pool = await create_pool(db_url, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def test_lists_open_events_until_closed(api, store: asyncpg.Pool):
    await create_project(api, "sockshop", "carts")
    first = wire(DEPLOY, id="t1", seconds=1)
    second = wire(DEPLOY, id="t2", seconds=2)
    await open_triggered(store, first)
    await open_triggered(store, second)
    await open_triggered(store, wire("sh.keptn.event.test.triggered", id="t3"))

    response = await api.get(URL + DEPLOY)
    assert response.status_code == 200
    assert response.json() == {"events": [second, first], "nextPageKey": "0", "pageSize": 20, "totalCount": 2}

    await close_triggered(store, ["t1"])
    assert [e["id"] for e in (await api.get(URL + DEPLOY)).json()["events"]] == ["t2"]


async def test_filters_and_paging(api, store):
    await create_project(api, "sockshop", "carts")
    await create_project(api, "other", "carts")
    await open_triggered(store, wire(DEPLOY, id="a", stage="dev"))
    await open_triggered(store, wire(DEPLOY, id="b", stage="staging", seconds=1))
    await open_triggered(store, wire(DEPLOY, id="c", project="other", seconds=2))

    async def ids(**params):
        response = await api.get(URL + DEPLOY, params=params)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["events"]]

    assert await ids() == ["c", "b", "a"]
    assert await ids(project="sockshop") == ["b", "a"]
    assert await ids(project="sockshop", stage="dev", service="carts") == ["a"]
    assert await ids(eventID="b") == ["b"]
    assert await ids(project="", stage="", service="", eventID="") == ["c", "b", "a"]
    first = (await api.get(URL + DEPLOY, params={"pageSize": 2})).json()
    assert [e["id"] for e in first["events"]] == ["c", "b"]
    assert (first["nextPageKey"], first["totalCount"], first["pageSize"]) == ("2", 3, 2)
    rest = (await api.get(URL + DEPLOY, params={"pageSize": 2, "nextPageKey": first["nextPageKey"]})).json()
    assert [e["id"] for e in rest["events"]] == ["a"] and rest["nextPageKey"] == "0"


async def test_sequence_triggered_types_are_accepted(api):
    response = await api.get(URL + "sh.keptn.event.dev.delivery.triggered")
    assert response.status_code == 200
    assert response.json()["events"] == []


@pytest.mark.parametrize(
    "event_type",
    [
        "sh.keptn.event.deployment.finished",
        "sh.keptn.event.*.triggered",
        "sh.keptn.>",
        "sh.keptn.log.error",
        "anything",
    ],
)
async def test_other_types_give_an_empty_list_as_in_keptn(api, store, event_type):
    # go-utils' poller polls every subscription and gives up after ten failed polls: no 400 here
    await create_project(api, "sockshop", "carts")
    await open_triggered(store, wire(DEPLOY, id="open"))
    response = await api.get(URL + event_type)
    assert response.status_code == 200
    assert response.json() == {"events": [], "nextPageKey": "0", "pageSize": 20, "totalCount": 0}


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({"project": "nope"}, 404, "project 'nope' not found"),
        ({"pageSize": 0}, 400, "pageSize"),
        ({"pageSize": "x"}, 400, "pageSize"),
        ({"nextPageKey": "-1"}, 400, "nextPageKey"),
    ],
)
async def test_client_mistakes(api, params, status, needle):
    assert_error(await api.get(URL + DEPLOY, params=params), status, needle)
