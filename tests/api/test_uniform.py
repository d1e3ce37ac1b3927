import re

import asyncpg
import pytest

from keptn.uniform import integration_id
from tests.api.helpers import assert_error

REGISTRATION = "/api/controlPlane/v1/uniform/registration"


def integration(name="helm-service", *subscriptions, namespace="keptn", host="node-1", version="1.4.5"):
    return {
        "name": name,
        "metadata": {
            "hostname": host,
            "integrationversion": version,
            "distributorversion": version,
            "location": "control-plane",
            "kubernetesmetadata": {"namespace": namespace, "podname": f"{name}-abc", "deploymentname": name},
        },
        "subscriptions": list(subscriptions),
    }


DEPLOY = {
    "event": "sh.keptn.event.deployment.triggered",
    "filter": {"projects": ["sockshop"], "stages": ["dev"], "services": []},
}


def external(listed):
    """The listed integrations without the control plane's built-in webhook-service."""
    return [i for i in listed if i["name"] != "webhook-service"]


async def register(api, body=None, status=201):
    response = await api.post(REGISTRATION, json=body or integration("helm-service", DEPLOY))
    assert response.status_code == status, response.text
    return response.json()["id"]


async def test_register_get_and_ping_in_keptns_shape(api):
    response = await api.post(REGISTRATION, json=integration("helm-service", DEPLOY))
    assert response.status_code == 201
    assert response.json() == {"id": integration_id("helm-service", "keptn", "node-1")}
    new_id = response.json()["id"]

    listed = external((await api.get(REGISTRATION)).json())
    assert len(listed) == 1
    found = listed[0]
    assert set(found) == {"id", "name", "metadata", "subscriptions"}
    assert found["id"] == new_id and found["name"] == "helm-service"
    metadata = found["metadata"]
    assert set(metadata) == {
        "hostname",
        "integrationversion",
        "distributorversion",
        "location",
        "kubernetesmetadata",
        "lastseen",
    }
    assert metadata["kubernetesmetadata"] == {
        "namespace": "keptn",
        "podname": "helm-service-abc",
        "deploymentname": "helm-service",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", metadata["lastseen"])
    (sub,) = found["subscriptions"]
    assert set(sub) == {"id", "event", "filter"}  # no "url" unless one was set
    assert sub["event"] == DEPLOY["event"]
    assert sub["filter"] == {"projects": ["sockshop"], "stages": ["dev"], "services": []}

    ping = await api.put(f"{REGISTRATION}/{new_id}/ping")
    assert ping.status_code == 200
    assert ping.json()["subscriptions"] == found["subscriptions"]
    assert ping.json()["metadata"]["lastseen"] >= metadata["lastseen"]


async def test_registering_again_answers_200_with_the_same_id(api):
    first = await register(api)
    again = await api.post(REGISTRATION, json=integration("helm-service", host="node-2", version="1.5.0"))
    assert again.status_code == 200
    assert again.json() == {"id": first}
    (found,) = external((await api.get(REGISTRATION)).json())
    assert found["metadata"]["integrationversion"] == "1.5.0"
    assert [s["event"] for s in found["subscriptions"]] == [DEPLOY["event"]]


async def test_minimal_registration_outside_kubernetes(api):
    response = await api.post(REGISTRATION, json={"name": "my-tester"})
    assert response.status_code == 201
    again = await api.post(REGISTRATION, json={"name": "my-tester", "metadata": None, "subscriptions": None})
    assert again.status_code == 200
    nulls = {
        "name": "other",
        "metadata": {"kubernetesmetadata": None},
        "subscriptions": [{"event": "a", "filter": None}],
    }
    assert (await api.post(REGISTRATION, json=nulls)).status_code == 201
    found = (await api.get(REGISTRATION, params={"name": "my-tester"})).json()[0]
    assert found["subscriptions"] == []
    assert found["metadata"]["hostname"] == "" and found["metadata"]["kubernetesmetadata"]["namespace"] == ""


async def test_list_filters(api):
    a = await register(api, integration("a", DEPLOY))
    b = await register(api, integration("b", {"event": "sh.keptn.>"}))

    async def ids(**params):
        response = await api.get(REGISTRATION, params=params)
        assert response.status_code == 200
        return [i["id"] for i in external(response.json())]

    assert await ids() == [a, b]
    assert await ids(id=b) == [b]
    assert await ids(name="a") == [a]
    assert await ids(project="sockshop", stage="dev") == [a]
    assert await ids(service="carts") == []
    assert await ids(name="") == [a, b]  # empty values count as absent


async def test_subscription_routes(api):
    integration_id_ = await register(api)
    base = f"{REGISTRATION}/{integration_id_}/subscription"
    created = await api.post(
        base, json={"event": "sh.keptn.event.test.triggered", "url": "http://127.0.0.1:9/x"}
    )
    assert created.status_code == 201
    sub_id = created.json()["id"]
    got = await api.get(f"{base}/{sub_id}")
    assert got.status_code == 200
    assert got.json() == {
        "id": sub_id,
        "event": "sh.keptn.event.test.triggered",
        "filter": {"projects": [], "stages": [], "services": []},
        "url": "http://127.0.0.1:9/x",
    }
    listed = (await api.get(base)).json()
    assert [s["id"] for s in listed][1:] == [sub_id]

    put = await api.put(f"{base}/{sub_id}", json={"event": "sh.keptn.>", "filter": {"projects": ["p"]}})
    assert put.status_code == 201 and put.json() == {"id": sub_id}
    assert (await api.get(f"{base}/{sub_id}")).json()["filter"]["projects"] == ["p"]
    upsert = await api.put(f"{base}/chosen-id", json={"event": "a.b"})
    assert upsert.status_code == 201 and upsert.json() == {"id": "chosen-id"}

    deleted = await api.delete(f"{base}/{sub_id}")
    assert deleted.status_code == 200 and deleted.json() == {}
    assert_error(await api.get(f"{base}/{sub_id}"), 404, sub_id)
    assert_error(await api.delete(f"{base}/{sub_id}"), 404, sub_id)


async def test_unregister(api):
    integration_id_ = await register(api)
    response = await api.delete(f"{REGISTRATION}/{integration_id_}")
    assert response.status_code == 200 and response.json() == {}
    assert external((await api.get(REGISTRATION)).json()) == []
    assert_error(await api.delete(f"{REGISTRATION}/{integration_id_}"), 404, integration_id_)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("put", "/nope/ping", None),
        ("get", "/nope/subscription", None),
        ("post", "/nope/subscription", {"event": "a"}),
        ("get", "/nope/subscription/s", None),
        ("put", "/nope/subscription/s", {"event": "a"}),
        ("delete", "/nope/subscription/s", None),
        ("delete", "/nope", None),
    ],
)
async def test_unknown_integration_is_404(api, method, path, body):
    kwargs = {"json": body} if body is not None else {}
    response = await api.request(method.upper(), REGISTRATION + path, **kwargs)
    assert_error(response, 404, "integration 'nope' not found")


async def test_expired_integration_is_gone(api, db_url):
    integration_id_ = await register(api)
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("UPDATE uniform_integrations SET expires_at = now() - interval '1 second'")
    finally:
        await conn.close()
    assert external((await api.get(REGISTRATION)).json()) == []
    assert_error(await api.put(f"{REGISTRATION}/{integration_id_}/ping"), 404, "TTL")
    assert await register(api, status=201) == integration_id_


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ({}, ["'name'"]),
        ({"name": 5}, ["'name'"]),
        ({"name": ""}, ["name"]),
        ({"name": "x", "subscriptions": [{"event": ""}]}, ["subscriptions[0].event", "must be specified"]),
        ({"name": "x", "subscriptions": [{"filter": {}}]}, ["subscriptions[0].event"]),
        (
            {"name": "x", "subscriptions": [DEPLOY, {"event": "a", "filter": {"services": ["carts"]}}]},
            ["subscriptions[1].filter.stages"],
        ),
        (
            {"name": "webhook-service", "subscriptions": [{"event": "a"}]},
            ["subscriptions[0].filter.projects"],
        ),
        ({"name": "x", "subscriptions": [{"event": "a", "url": "ftp://x"}]}, ["subscriptions[0].url"]),
        (
            {"name": "x", "subscriptions": [{"event": "a", "filter": {"projects": [1]}}]},
            ["subscriptions.0.filter"],
        ),
        ({"name": "x", "metadata": {"hostname": 3}}, ["metadata.hostname"]),
        ({"name": "x", "subscriptions": [{"event": "a..b"}]}, ["subscriptions[0].event"]),
    ],
)
async def test_invalid_registrations_are_400_naming_the_field(api, body, needles):
    assert_error(await api.post(REGISTRATION, json=body), 400, *needles)
    assert external((await api.get(REGISTRATION)).json()) == []


async def test_invalid_subscriptions_are_400_naming_the_field(api):
    hook = await register(api, integration("webhook-service", {"event": "a", "filter": {"projects": ["p"]}}))
    base = f"{REGISTRATION}/{hook}/subscription"
    assert_error(await api.post(base, json={"event": "a"}), 400, "filter.projects", "exactly one project")
    assert_error(
        await api.put(f"{base}/x", json={"event": "a", "filter": {"projects": ["a", "b"]}}),
        400,
        "filter.projects",
    )
    assert_error(await api.post(base, json={"filter": {"projects": ["p"]}}), 400, "event")
    assert_error(
        await api.post(base, json={"event": "a", "filter": {"projects": ["p"]}, "url": "x"}), 400, "url"
    )
    assert_error(await api.post(base, json=[]), 400, "body")
    assert_error(await api.post(base, content=b"{", headers={"content-type": "application/json"}), 400)


async def test_token_is_required(api):
    response = await api.get(REGISTRATION, headers={"x-token": "wrong"})
    assert_error(response, 401, "x-token")
