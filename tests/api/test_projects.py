import pytest

from store.events import insert_event
from tests.api.helpers import PROJECTS, assert_error, b64, create_project
from tests.store.factories import SHIPYARD, wire


async def _events(api, project, type_=None):
    params = {"project": project, "pageSize": 100}
    if type_:
        params["type"] = type_
    response = await api.get("/api/mongodb-datastore/event", params=params)
    assert response.status_code == 200
    return response.json()["events"]


async def test_create_project_and_read_it(api):
    response = await api.post(PROJECTS, json={"name": "sockshop", "shipyard": b64(SHIPYARD)})
    assert response.status_code == 201
    assert response.json() == {}
    project = (await api.get(f"{PROJECTS}/sockshop")).json()
    assert set(project) == {
        "projectName",
        "creationDate",
        "shipyard",
        "shipyardVersion",
        "stages",
        "isUpstreamAutoProvisioned",
    }
    assert project["projectName"] == "sockshop"
    assert project["shipyard"] == SHIPYARD
    assert project["shipyardVersion"] == "spec.keptn.sh/0.2.3"
    assert project["creationDate"].isdigit() and len(project["creationDate"]) == 19
    assert project["isUpstreamAutoProvisioned"] is False
    assert project["stages"] == [
        {"stageName": "dev", "services": []},
        {"stageName": "staging", "services": []},
    ]


async def test_create_project_stores_keptns_informational_events(api):
    await create_project(api)
    events = await _events(api, "sockshop")
    assert [e["type"] for e in events] == [
        "sh.keptn.event.project.create.finished",
        "sh.keptn.event.project.create.started",
    ]
    finished, started = events
    assert started["source"] == finished["source"] == "shipyard-controller"
    assert started["shkeptncontext"] == finished["shkeptncontext"]
    assert started["data"] == {"project": "sockshop"}
    assert finished["data"] == {
        "project": "sockshop",
        "status": "succeeded",
        "result": "pass",
        "createdProject": {"projectName": "sockshop", "shipyard": b64(SHIPYARD)},
    }


async def test_create_existing_project_conflicts(api):
    await create_project(api)
    response = await api.post(PROJECTS, json={"name": "sockshop", "shipyard": b64(SHIPYARD)})
    assert_error(response, 409, "sockshop", "already exists")
    kinds = [(e["type"], e["data"].get("result")) for e in await _events(api, "sockshop")]
    assert kinds[0] == ("sh.keptn.event.project.create.finished", "fail")


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ({"shipyard": b64(SHIPYARD)}, ("name",)),
        ({"name": "sockshop"}, ("shipyard",)),
        ({"name": "Sock_Shop", "shipyard": b64(SHIPYARD)}, ("name",)),
        ({"name": "x" * 201, "shipyard": b64(SHIPYARD)}, ("name", "200")),
        ({"name": "sockshop", "shipyard": "not base64!"}, ("shipyard", "base64")),
        ({"name": "sockshop", "shipyard": b64(b"\xff\xfe")}, ("shipyard",)),
        ({"name": "sockshop", "shipyard": b64("stages: [")}, ("shipyard",)),
        (
            {"name": "sockshop", "shipyard": b64("apiVersion: spec.keptn.sh/0.1.7\nkind: Shipyard\n")},
            ("shipyard",),
        ),
        (
            {"name": "sockshop", "shipyard": b64(SHIPYARD), "gitCredentials": {"remoteURL": "https://git"}},
            ("gitCredentials", "git upstream"),
        ),
        ({"name": 5, "shipyard": b64(SHIPYARD)}, ("name",)),
    ],
)
async def test_create_project_invalid(api, body, needles):
    assert_error(await api.post(PROJECTS, json=body), 400, *needles)
    assert (await api.get(PROJECTS)).json()["totalCount"] == 0


async def test_create_project_accepts_empty_git_credentials(api):
    body = {"name": "sockshop", "shipyard": b64(SHIPYARD), "gitCredentials": {}}
    assert (await api.post(PROJECTS, json=body)).status_code == 201


async def test_malformed_json_body_is_400(api):
    response = await api.post(PROJECTS, content=b"{nope", headers={"content-type": "application/json"})
    assert_error(response, 400)


async def test_list_projects_paged_by_name(api):
    for name in ("charlie", "alpha", "bravo"):
        await create_project(api, name)
    first = (await api.get(PROJECTS, params={"pageSize": 2})).json()
    assert set(first) == {"projects", "nextPageKey", "pageSize", "totalCount"}
    assert [p["projectName"] for p in first["projects"]] == ["alpha", "bravo"]
    assert (first["nextPageKey"], first["pageSize"], first["totalCount"]) == ("2", 2, 3)
    second = (await api.get(PROJECTS, params={"pageSize": 2, "nextPageKey": "2"})).json()
    assert [p["projectName"] for p in second["projects"]] == ["charlie"]
    assert second["nextPageKey"] == "0"
    assert (await api.get(PROJECTS, params={"disableUpstreamSync": "true"})).status_code == 200
    assert_error(await api.get(PROJECTS, params={"pageSize": 0}), 400, "pageSize")
    assert_error(await api.get(PROJECTS, params={"nextPageKey": "x"}), 400, "nextPageKey")


async def test_update_shipyard(api):
    await create_project(api)
    edited = SHIPYARD.replace("shipyard-sockshop", "renamed")
    response = await api.put(PROJECTS, json={"name": "sockshop", "shipyard": b64(edited)})
    assert response.status_code == 201 and response.json() == {}
    assert (await api.get(f"{PROJECTS}/sockshop")).json()["shipyard"] == edited
    resource = await api.get("/api/resource-service/v1/project/sockshop/resource/shipyard.yaml")
    assert resource.json()["resourceContent"] == b64(edited)
    # without a shipyard there is nothing to change, but the project must exist
    assert (await api.put(PROJECTS, json={"name": "sockshop"})).status_code == 201


async def test_update_shipyard_errors(api):
    await create_project(api)
    one_stage = SHIPYARD.split("    - name: staging")[0]
    assert_error(
        await api.put(PROJECTS, json={"name": "sockshop", "shipyard": b64(one_stage)}),
        400,
        "stage name cannot be changed or removed",
    )
    assert_error(await api.put(PROJECTS, json={"name": "nope", "shipyard": b64(SHIPYARD)}), 404, "nope")
    assert_error(await api.put(PROJECTS, json={"name": "nope"}), 404, "nope")
    assert_error(await api.put(PROJECTS, json={"name": "sockshop", "shipyard": "%%%"}), 400, "shipyard")
    assert_error(await api.put(PROJECTS, json={"shipyard": b64(SHIPYARD)}), 400, "name")
    assert_error(
        await api.put(PROJECTS, json={"name": "sockshop", "gitCredentials": {"user": "me"}}),
        400,
        "gitCredentials",
    )


async def test_get_unknown_project(api):
    assert_error(await api.get(f"{PROJECTS}/nope"), 404, "project 'nope'")


async def test_delete_project(api, pool):
    await create_project(api, "sockshop", "carts")
    await insert_event(pool, wire("sh.keptn.event.deployment.triggered", id="d1"))
    response = await api.delete(f"{PROJECTS}/sockshop")
    assert response.status_code == 200
    assert set(response.json()) == {"message"} and "sockshop" in response.json()["message"]
    assert_error(await api.get(f"{PROJECTS}/sockshop"), 404)
    # its events are gone; only the deletion itself is recorded
    events = await _events(api, "sockshop")
    assert [(e["type"], e["data"]["result"]) for e in events] == [
        ("sh.keptn.event.project.delete.finished", "pass")
    ]
    assert_error(await api.delete(f"{PROJECTS}/sockshop"), 404, "sockshop")
    assert_error(await api.get("/api/resource-service/v1/project/sockshop/resource"), 404, "sockshop")


async def test_services(api):
    await create_project(api)
    response = await api.post(f"{PROJECTS}/sockshop/service", json={"serviceName": "carts"})
    assert response.status_code == 200
    assert "dev, staging" in response.json()["message"]
    await api.post(f"{PROJECTS}/sockshop/service", json={"serviceName": "orders"})
    project = (await api.get(f"{PROJECTS}/sockshop")).json()
    for stage in project["stages"]:
        assert [s["serviceName"] for s in stage["services"]] == ["carts", "orders"]
        for service in stage["services"]:
            assert set(service) == {"serviceName", "creationDate", "openRemediations"}
            assert service["openRemediations"] == []
    types = [e["type"] for e in await _events(api, "sockshop")]
    assert types.count("sh.keptn.event.service.create.started") == 2
    assert types.count("sh.keptn.event.service.create.finished") == 2


async def test_service_errors(api):
    await create_project(api, "sockshop", "carts")
    url = f"{PROJECTS}/sockshop/service"
    assert_error(await api.post(url, json={"serviceName": "carts"}), 409, "carts", "already exists")
    assert_error(await api.post(url, json={"serviceName": "Carts!"}), 400, "serviceName")
    assert_error(await api.post(url, json={"serviceName": "c" * 44}), 400, "serviceName", "43")
    assert_error(await api.post(url, json={}), 400, "serviceName")
    assert_error(await api.post(f"{PROJECTS}/nope/service", json={"serviceName": "carts"}), 404, "nope")
    assert_error(await api.delete(f"{url}/nope"), 404, "service 'nope'")
    assert_error(await api.delete(f"{PROJECTS}/nope/service/carts"), 404, "project 'nope'")


async def test_delete_service(api):
    await create_project(api, "sockshop", "carts")
    resource = "/api/resource-service/v1/project/sockshop/stage/dev/service/carts/resource"
    await api.post(resource, json={"resources": [{"resourceURI": "slo.yaml", "resourceContent": b64("x")}]})
    response = await api.delete(f"{PROJECTS}/sockshop/service/carts")
    assert response.status_code == 200 and "carts" in response.json()["message"]
    stages = (await api.get(f"{PROJECTS}/sockshop/stage")).json()["stages"]
    assert all(stage["services"] == [] for stage in stages)
    types = [e["type"] for e in await _events(api, "sockshop")]
    assert types[:2] == ["sh.keptn.event.service.delete.finished", "sh.keptn.event.service.delete.started"]
    assert_error(await api.get(resource), 404, "carts")


async def test_stages_and_services_read_model(api, pool):
    await create_project(api, "sockshop", "orders", "carts")
    await insert_event(
        pool,
        wire(
            "sh.keptn.event.deployment.triggered",
            id="dt",
            context="ctx",
            configurationChange={"values": {"image": "carts:1"}},
        ),
    )
    await insert_event(
        pool, wire("sh.keptn.event.deployment.finished", id="df", context="ctx", triggeredid="dt")
    )
    stages = (await api.get(f"{PROJECTS}/sockshop/stage")).json()
    assert set(stages) == {"stages", "nextPageKey", "pageSize", "totalCount"}
    assert [s["stageName"] for s in stages["stages"]] == ["dev", "staging"]
    assert (stages["nextPageKey"], stages["totalCount"]) == ("0", 2)
    paged = (await api.get(f"{PROJECTS}/sockshop/stage", params={"pageSize": 1})).json()
    assert [s["stageName"] for s in paged["stages"]] == ["dev"] and paged["nextPageKey"] == "1"

    dev = (await api.get(f"{PROJECTS}/sockshop/stage/dev")).json()
    assert dev["stageName"] == "dev"
    services = (await api.get(f"{PROJECTS}/sockshop/stage/dev/service")).json()
    assert [s["serviceName"] for s in services["services"]] == ["carts", "orders"]
    assert services["totalCount"] == 2

    carts = (await api.get(f"{PROJECTS}/sockshop/stage/dev/service/carts")).json()
    assert carts["deployedImage"] == "carts:1"
    last = carts["lastEventTypes"]
    assert set(last) == {"sh.keptn.event.deployment.triggered", "sh.keptn.event.deployment.finished"}
    assert last["sh.keptn.event.deployment.finished"]["eventId"] == "df"
    assert last["sh.keptn.event.deployment.finished"]["keptnContext"] == "ctx"
    assert last["sh.keptn.event.deployment.finished"]["time"].isdigit()
    staging = (await api.get(f"{PROJECTS}/sockshop/stage/staging/service/carts")).json()
    assert "lastEventTypes" not in staging and "deployedImage" not in staging


async def test_stage_and_service_not_found(api):
    await create_project(api, "sockshop", "carts")
    assert_error(await api.get(f"{PROJECTS}/nope/stage"), 404, "project 'nope'")
    assert_error(await api.get(f"{PROJECTS}/sockshop/stage/prod"), 404, "stage 'prod'")
    assert_error(await api.get(f"{PROJECTS}/sockshop/stage/prod/service"), 404, "stage 'prod'")
    assert_error(await api.get(f"{PROJECTS}/sockshop/stage/dev/service/nope"), 404, "service 'nope'")
    assert_error(await api.get(f"{PROJECTS}/sockshop/stage", params={"pageSize": -1}), 400, "pageSize")
    assert_error(
        await api.get(f"{PROJECTS}/sockshop/stage/dev/service", params={"nextPageKey": "z"}),
        400,
        "nextPageKey",
    )


async def test_openapi_documents_the_routes(api):
    schema = (await api.get("/api/openapi.json")).json()
    paths = schema["paths"]
    assert "/api/controlPlane/v1/project/{project}/stage/{stage}/service/{service}" in paths
    assert "/api/mongodb-datastore/event/type/{eventType}" in paths
    assert (
        "/api/resource-service/v1/project/{projectName}/stage/{stageName}/service/{serviceName}/resource"
        in paths
    )
    created = paths["/api/controlPlane/v1/project"]["post"]["responses"]
    assert {"201", "400", "409"} <= set(created)
