import asyncpg
import pytest

from tests.api.helpers import assert_error

LOG = "/api/controlPlane/v1/log"


def entry(integration="i-1", message="boom", time=None, **extra):
    body = {"integrationid": integration, "message": message, "shkeptncontext": "ctx", "task": "deployment"}
    if time is not None:
        body["time"] = time
    return {**body, **extra}


async def test_post_and_get_in_keptns_shape_without_entries_older_than_log_ttl(api):
    response = await api.post(
        LOG,
        json={
            "logs": [
                entry(message="expired", time="2024-01-01T00:00:00.000Z"),  # older than the 120 h LOG_TTL
                entry(message="now", triggeredid="t", gitcommitid="c"),
            ]
        },
    )
    assert response.status_code == 200 and response.json() == {}
    body = (await api.get(LOG, params={"integrationId": "i-1"})).json()
    assert set(body) == {"logs", "pageSize", "totalCount"}  # nextPageKey left out on the last page
    assert (body["pageSize"], body["totalCount"]) == (1, 1)
    (only,) = body["logs"]
    assert {k: v for k, v in only.items() if k != "time"} == {
        "integrationid": "i-1",
        "message": "now",
        "shkeptncontext": "ctx",
        "task": "deployment",
        "triggeredid": "t",
        "gitcommitid": "c",
    }
    assert only["time"].endswith("Z")
    assert (await api.get(LOG, params={"integrationId": "nobody"})).json() == {"logs": []}


async def test_filters_and_paging(api, db_url):
    await api.post(LOG, json={"logs": [entry(message=f"m{i}") for i in range(3)] + [entry("i-2", "x")]})
    conn = await asyncpg.connect(db_url)
    try:  # spread the entries out in time, newest m2
        await conn.execute("UPDATE integration_logs SET time = now() - (10 - seq) * interval '1 minute'")
        boundary = await conn.fetchval("SELECT time FROM integration_logs WHERE message = 'm1'")
    finally:
        await conn.close()
    page = (await api.get(LOG, params={"integrationId": "i-1", "pageSize": 2})).json()
    assert [e["message"] for e in page["logs"]] == ["m2", "m1"]
    assert (page["nextPageKey"], page["totalCount"]) == (2, 3)
    rest = (await api.get(LOG, params={"integrationId": "i-1", "pageSize": 2, "nextPageKey": "2"})).json()
    assert [e["message"] for e in rest["logs"]] == ["m0"] and "nextPageKey" not in rest
    stamp = boundary.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    newer = (await api.get(LOG, params={"integrationId": "i-1", "fromTime": stamp})).json()
    assert [e["message"] for e in newer["logs"]] == ["m2", "m1"]
    older = (await api.get(LOG, params={"integrationId": "i-1", "beforeTime": stamp})).json()
    assert [e["message"] for e in older["logs"]] == ["m1", "m0"]
    deleted = await api.delete(LOG, params={"integrationId": "i-1"})
    assert deleted.status_code == 200 and deleted.json() == {}
    assert [e["message"] for e in (await api.get(LOG)).json()["logs"]] == ["x"]


async def test_go_zero_time_means_now(api):
    await api.post(LOG, json={"logs": [entry(time="0001-01-01T00:00:00Z")]})
    assert [e["message"] for e in (await api.get(LOG)).json()["logs"]] == ["boom"]


@pytest.mark.parametrize(
    ("method", "kwargs", "needle"),
    [
        ("post", {"json": {}}, "logs"),
        ("post", {"json": {"logs": [{"message": "m"}]}}, "integrationid"),
        ("post", {"json": {"logs": [entry(time="yesterday")]}}, "logs[0].time"),
        ("get", {"params": {"fromTime": "x"}}, "fromTime"),
        ("get", {"params": {"beforeTime": "x"}}, "beforeTime"),
        ("get", {"params": {"pageSize": 0}}, "pageSize"),
        ("get", {"params": {"nextPageKey": "a"}}, "nextPageKey"),
        ("delete", {"params": {"fromTime": "x"}}, "fromTime"),
    ],
)
async def test_client_mistakes_are_400(api, method, kwargs, needle):
    assert_error(await api.request(method.upper(), LOG, **kwargs), 400, needle)
