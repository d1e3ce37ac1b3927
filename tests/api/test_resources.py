import pytest

from tests.api.helpers import assert_error, b64, create_project
from tests.store.factories import SHIPYARD

BASE = "/api/resource-service/v1/project/sockshop"
LEVELS = {
    "project": BASE,
    "stage": f"{BASE}/stage/dev",
    "service": f"{BASE}/stage/dev/service/carts",
}


@pytest.fixture
async def project(api):
    await create_project(api, "sockshop", "carts")
    return api


def _resources(*pairs):
    return {"resources": [{"resourceURI": uri, "resourceContent": b64(text)} for uri, text in pairs]}


@pytest.mark.parametrize("level", LEVELS)
async def test_write_read_list_delete(project, level):
    api, url = project, f"{LEVELS[level]}/resource"
    created = await api.post(url, json=_resources(("slo.yaml", "v1"), ("/webhook/webhook.yaml", "hook")))
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"commitID", "metadata"}
    first = body["commitID"]
    assert len(first) == 40 and body["metadata"] == {"version": first}

    got = await api.get(f"{url}/slo.yaml")
    assert got.status_code == 200
    assert got.json() == {
        "resourceURI": "slo.yaml",
        "resourceContent": b64("v1"),
        "metadata": {"version": first},
    }
    nested = await api.get(f"{url}/webhook%2Fwebhook.yaml")
    assert nested.json()["resourceContent"] == b64("hook")
    assert (await api.get(f"{url}/webhook/webhook.yaml")).json()["resourceContent"] == b64("hook")

    updated = await api.put(url, json=_resources(("slo.yaml", "v2")))
    assert updated.status_code == 200
    second = updated.json()["commitID"]
    one = await api.put(f"{url}/slo.yaml", json={"resourceContent": b64("v3")})
    assert one.status_code == 200
    third = one.json()["commitID"]
    assert len({first, second, third}) == 3
    assert (await api.get(f"{url}/slo.yaml")).json()["resourceContent"] == b64("v3")
    old = (await api.get(f"{url}/slo.yaml", params={"gitCommitID": first})).json()
    assert old == {"resourceURI": "slo.yaml", "resourceContent": b64("v1"), "metadata": {"version": first}}

    deleted = await api.delete(f"{url}/webhook/webhook.yaml")
    assert deleted.status_code == 200
    fourth = deleted.json()["commitID"]
    listing = (await api.get(url)).json()
    assert set(listing) == {"resources", "nextPageKey", "pageSize", "totalCount"}
    uris = [r["resourceURI"] for r in listing["resources"]]
    expected = ["shipyard.yaml", "slo.yaml"] if level == "project" else ["slo.yaml"]
    assert uris == expected
    assert all(r["metadata"] == {"version": fourth} for r in listing["resources"])
    assert all("resourceContent" not in r for r in listing["resources"])
    assert listing["nextPageKey"] == "0" and listing["totalCount"] == len(expected)
    at_first = (await api.get(url, params={"gitCommitID": first})).json()
    assert "webhook/webhook.yaml" in [r["resourceURI"] for r in at_first["resources"]]
    assert_error(await api.get(f"{url}/webhook/webhook.yaml"), 404, "webhook/webhook.yaml")


async def test_list_paging(project):
    url = f"{LEVELS['service']}/resource"
    await project.post(url, json=_resources(*((f"f{n}.yaml", "x") for n in range(5))))
    page = (await project.get(url, params={"pageSize": 2, "nextPageKey": "2"})).json()
    assert [r["resourceURI"] for r in page["resources"]] == ["f2.yaml", "f3.yaml"]
    assert (page["nextPageKey"], page["pageSize"], page["totalCount"]) == ("4", 2, 5)
    assert_error(await project.get(url, params={"pageSize": 0}), 400, "pageSize")
    assert_error(await project.get(url, params={"nextPageKey": "x"}), 400, "nextPageKey")


async def test_empty_git_commit_id_means_latest(project):
    url = f"{LEVELS['stage']}/resource"
    await project.post(url, json=_resources(("a.txt", "1")))
    assert (await project.get(f"{url}/a.txt", params={"gitCommitID": '""'})).status_code == 200
    assert (await project.get(url, params={"gitCommitID": ""})).status_code == 200


async def test_unknown_scopes_and_commits(project):
    api = project
    body = _resources(("a.txt", "1"))
    assert_error(
        await api.post("/api/resource-service/v1/project/nope/resource", json=body), 404, "project 'nope'"
    )
    assert_error(await api.post(f"{BASE}/stage/prod/resource", json=body), 404, "stage 'prod'")
    assert_error(await api.get(f"{BASE}/stage/dev/service/orders/resource"), 404, "service 'orders'")
    assert_error(await api.get(f"{BASE}/resource", params={"gitCommitID": "f" * 40}), 404, "gitCommitID")
    assert_error(await api.get(f"{BASE}/resource/nothing.yaml"), 404, "nothing.yaml")
    assert_error(await api.delete(f"{BASE}/stage/dev/resource/nothing.yaml"), 404, "nothing.yaml")


@pytest.mark.parametrize(
    ("method", "suffix", "body", "needles"),
    [
        (
            "post",
            "",
            {"resources": [{"resourceURI": "a", "resourceContent": "***"}]},
            ("resources[0]", "base64"),
        ),
        ("post", "", {"resources": []}, ("resources",)),
        ("post", "", {"resources": [{"resourceContent": "YQ=="}]}, ("resourceURI",)),
        ("post", "", {}, ("resources",)),
        (
            "post",
            "",
            {"resources": [{"resourceURI": "../x", "resourceContent": "YQ=="}]},
            ("resourceURI", ".."),
        ),
        ("put", "", {"resources": [{"resourceURI": "a/../../b", "resourceContent": ""}]}, ("resourceURI",)),
        ("put", "/a.txt", {"resourceContent": "not base64"}, ("resourceContent", "a.txt")),
        ("put", "/a.txt", {}, ("resourceContent",)),
        ("put", "/x/%2E%2E/%2E%2E/etc", {"resourceContent": "YQ=="}, ("resourceURI",)),
        ("delete", "/%2E%2E/x", None, ("resourceURI",)),
        ("get", "/a/%2E%2E/%2E%2E/b", None, ("resourceURI",)),
    ],
)
async def test_client_mistakes_are_400(project, method, suffix, body, needles):
    url = f"{LEVELS['service']}/resource{suffix}"
    kwargs = {"json": body} if body is not None else {}
    assert_error(await project.request(method.upper(), url, **kwargs), 400, *needles)


async def test_project_shipyard_resource_updates_the_project(project):
    api = project
    edited = SHIPYARD + "# edited through the resource API\n"
    response = await api.put(f"{BASE}/resource/shipyard.yaml", json={"resourceContent": b64(edited)})
    assert response.status_code == 200
    assert (await api.get("/api/controlPlane/v1/project/sockshop")).json()["shipyard"] == edited
    broken = await api.put(f"{BASE}/resource/shipyard.yaml", json={"resourceContent": b64("kind: nothing")})
    assert_error(broken, 400, "shipyard.yaml")
    renamed = SHIPYARD.replace("name: staging", "name: prod")
    assert_error(
        await api.post(f"{BASE}/resource", json=_resources(("shipyard.yaml", renamed))),
        400,
        "stage name cannot be changed or removed",
    )
    assert_error(await api.delete(f"{BASE}/resource/shipyard.yaml"), 400, "shipyard.yaml")
    assert (await api.get("/api/controlPlane/v1/project/sockshop")).json()["shipyard"] == edited


async def test_binary_content_round_trips(project):
    url = f"{LEVELS['service']}/resource"
    payload = bytes(range(256))
    await project.post(
        url, json={"resources": [{"resourceURI": "helm/carts.tgz", "resourceContent": b64(payload)}]}
    )
    got = (await project.get(f"{url}/helm/carts.tgz")).json()
    assert got["resourceContent"] == b64(payload)
