import pytest

from store.events import insert_event
from tests.api.helpers import assert_error
from tests.store.factories import wire

EVENTS = "/api/mongodb-datastore/event"


@pytest.fixture
async def seeded(pool):
    kinds = [
        ("sh.keptn.event.dev.delivery.triggered", "c1", 0, {}),
        ("sh.keptn.event.deployment.triggered", "c1", 1, {}),
        ("sh.keptn.event.deployment.finished", "c1", 2, {"result": "pass"}),
        ("sh.keptn.event.dev.delivery.triggered", "c2", 3, {"service": "orders"}),
        ("sh.keptn.event.deployment.finished", "c2", 4, {"service": "orders", "result": "fail"}),
    ]
    events = {}
    for n, (kind, ctx, seconds, extra) in enumerate(kinds):
        events[f"e{n}"] = wire(kind, id=f"e{n}", context=ctx, seconds=seconds, **extra)
        await insert_event(pool, events[f"e{n}"])
    return events


async def test_events_page_shape_and_paging(api, seeded):
    first = await api.get(EVENTS, params={"project": "sockshop", "pageSize": 2})
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"events", "nextPageKey", "pageSize", "totalCount"}
    assert [e["id"] for e in body["events"]] == ["e4", "e3"]
    assert body["events"][0] == seeded["e4"]
    assert (body["nextPageKey"], body["pageSize"], body["totalCount"]) == ("2", 2, 5)
    last = (await api.get(EVENTS, params={"project": "sockshop", "pageSize": 2, "nextPageKey": "4"})).json()
    assert [e["id"] for e in last["events"]] == ["e0"]
    assert "nextPageKey" not in last


async def test_events_filters(api, seeded):
    async def ids(**params):
        response = await api.get(EVENTS, params=params)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["events"]]

    assert await ids(keptnContext="c1") == ["e2", "e1", "e0"]
    assert await ids(project="sockshop", service="orders") == ["e4", "e3"]
    assert await ids(project="sockshop", type="sh.keptn.event.deployment.finished") == ["e4", "e2"]
    assert await ids(project="sockshop", eventID="e1") == ["e1"]
    assert await ids(project="sockshop", stage="dev", source="test", keptnContext="c2") == ["e4", "e3"]
    assert await ids(project="sockshop", fromTime="2024-01-02T03:04:06.000Z") == ["e4", "e3", "e2"]
    assert await ids(project="sockshop", beforeTime="2024-01-02T03:04:06Z") == ["e0"]
    assert await ids(
        project="sockshop", fromTime="2024-01-02T05:04:05+02:00", beforeTime="2024-01-02T03:04:08"
    ) == [
        "e2",
        "e1",
    ]
    assert await ids(project="sockshop", root="true") == ["e3", "e0"]
    assert await ids(project="sockshop", root="false", pageSize=1) == ["e4"]
    # empty values count as absent, as in Keptn
    assert await ids(project="sockshop", type="", service="") == ["e4", "e3", "e2", "e1", "e0"]
    assert await ids(project="nobody") == []


@pytest.mark.parametrize(
    ("params", "needles"),
    [
        ({}, ("keptnContext", "project")),
        ({"type": "x"}, ("keptnContext", "project")),
        ({"project": "p", "pageSize": 0}, ("pageSize",)),
        ({"project": "p", "pageSize": 101}, ("pageSize",)),
        ({"project": "p", "pageSize": "ten"}, ("pageSize",)),
        ({"project": "p", "nextPageKey": "abc"}, ("nextPageKey",)),
        ({"project": "p", "nextPageKey": "-1"}, ("nextPageKey",)),
        ({"project": "p", "fromTime": "yesterday"}, ("fromTime",)),
        ({"project": "p", "beforeTime": "2024-13-01T00:00:00Z"}, ("beforeTime",)),
        ({"project": "p", "root": "maybe"}, ("root",)),
    ],
)
async def test_events_bad_parameters(api, params, needles):
    assert_error(await api.get(EVENTS, params=params), 400, *needles)


async def test_events_need_the_token(api):
    response = await api.get(EVENTS, params={"project": "p"}, headers={"x-token": "wrong"})
    assert_error(response, 401)


async def test_events_by_type(api, seeded):
    url = f"{EVENTS}/type/sh.keptn.event.deployment.finished"
    response = await api.get(url, params={"filter": "data.project:sockshop"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"events"}
    assert [e["id"] for e in body["events"]] == ["e4", "e2"]

    async def ids(**params):
        got = await api.get(url, params=params)
        assert got.status_code == 200, got.text
        return [e["id"] for e in got.json()["events"]]

    assert await ids(filter="data.project:sockshop AND data.result:pass") == ["e2"]
    assert await ids(filter="data.project:sockshop AND data.result:pass,fail", limit=1) == ["e4"]
    assert await ids(filter="shkeptncontext:c1") == ["e2"]
    assert await ids(filter="data.project:sockshop", fromTime="2024-01-02T03:04:07.000Z") == ["e4"]


async def test_events_by_type_exclude_invalidated(api, pool):
    finished = "sh.keptn.event.evaluation.finished"
    await insert_event(pool, wire(finished, id="ev1", triggeredid="t1", seconds=1))
    await insert_event(pool, wire(finished, id="ev2", triggeredid="t2", seconds=2))
    await insert_event(
        pool, wire("sh.keptn.event.evaluation.invalidated", id="inv", triggeredid="t1", seconds=3)
    )
    url = f"{EVENTS}/type/{finished}"
    params = {"filter": "data.project:sockshop AND data.service:carts AND data.stage:dev"}
    kept = (await api.get(url, params={**params, "excludeInvalidated": "true"})).json()["events"]
    assert [e["id"] for e in kept] == ["ev2"]
    everything = (await api.get(url, params=params)).json()["events"]
    assert [e["id"] for e in everything] == ["ev2", "ev1"]


@pytest.mark.parametrize(
    ("params", "needles"),
    [
        ({}, ("filter",)),
        ({"filter": ""}, ("filter",)),
        ({"filter": "data.result:pass"}, ("filter", "data.project", "shkeptncontext")),
        ({"filter": "data.project"}, ("filter", "'data.project'")),
        ({"filter": "data.project:a AND bogus:1"}, ("filter", "bogus")),
        ({"filter": "data.project:a", "limit": 0}, ("limit",)),
        ({"filter": "data.project:a", "limit": 1000}, ("limit",)),
        ({"filter": "data.project:a", "fromTime": "noon"}, ("fromTime",)),
        ({"filter": "data.project:a", "excludeInvalidated": "perhaps"}, ("excludeInvalidated",)),
    ],
)
async def test_events_by_type_bad_parameters(api, params, needles):
    response = await api.get(f"{EVENTS}/type/sh.keptn.event.evaluation.finished", params=params)
    assert_error(response, 400, *needles)
