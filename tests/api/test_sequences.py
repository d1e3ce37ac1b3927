import pytest

from store.events import insert_event
from store.sequences import record_execution
from tests.api.helpers import assert_error, create_project
from tests.store.factories import wire
from tests.store.sequence_helpers import execution

STATES = "/api/controlPlane/v1/sequence"
EXECUTIONS = "/api/controlPlane/v1/sequence-execution"


@pytest.fixture
async def seeded(api, pool):
    await create_project(api, "sockshop", "carts")
    for event in (
        wire("sh.keptn.event.dev.delivery.triggered", id="T", context="c1"),
        wire(
            "sh.keptn.event.deployment.triggered",
            id="D",
            context="c1",
            seconds=1,
            configurationChange={"values": {"image": "carts:2"}},
        ),
        wire(
            "sh.keptn.event.deployment.finished",
            id="D-f",
            context="c1",
            triggeredid="D",
            seconds=2,
            result="fail",
            status="succeeded",
        ),
        wire("sh.keptn.event.evaluation.triggered", id="E", context="c1", stage="staging", seconds=12),
        wire(
            "sh.keptn.event.evaluation.finished",
            id="E-f",
            context="c1",
            stage="staging",
            triggeredid="E",
            seconds=13,
            source="lighthouse-service",
            result="pass",
            evaluation={"score": 100},
        ),
    ):
        await insert_event(pool, event)
    dev = execution(
        "T", context="c1", state="finished", status="errored", result="fail", previous=(("deployment", "D"),)
    )
    staging = execution(
        "S",
        context="c1",
        stage="staging",
        seconds=10,
        state="waitingForApproval",
        current="E",
        gitcommitid="abc",
    )
    queued = execution("Q", context="c2", seconds=20, state="waiting", blocked_by="c1", sequence="evaluation")
    for picture in (dev, staging, queued):
        await record_execution(pool, picture)


async def test_sequence_states_shape(api, seeded):
    response = await api.get(f"{STATES}/sockshop")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pageSize"] == 20 and body["totalCount"] == 2 and "nextPageKey" not in body
    queued, delivery = body["states"]
    assert queued == {
        "name": "evaluation",
        "service": "carts",
        "project": "sockshop",
        "time": "2024-01-02T03:04:25.000Z",
        "shkeptncontext": "c2",
        "state": "waiting",
        "stages": [{"name": "dev", "state": "triggered", "blockedBy": "c1"}],
    }
    assert delivery["state"] == "started"
    dev, staging = delivery["stages"]
    assert dev == {
        "name": "dev",
        "image": "carts:2",
        "state": "errored",
        "latestEvent": {
            "type": "sh.keptn.event.deployment.finished",
            "id": "D-f",
            "time": "2024-01-02T03:04:07.000Z",
        },
        "latestFailedEvent": {
            "type": "sh.keptn.event.deployment.finished",
            "id": "D-f",
            "time": "2024-01-02T03:04:07.000Z",
        },
    }
    assert staging["state"] == "triggered"
    assert staging["latestEvaluation"] == {"result": "pass", "score": 100.0}
    assert staging["latestEvent"]["id"] == "E-f"
    assert "latestFailedEvent" not in staging and "image" not in staging


async def test_sequence_states_filters_and_paging(api, seeded):
    async def contexts(**params):
        response = await api.get(f"{STATES}/sockshop", params=params)
        assert response.status_code == 200, response.text
        return [s["shkeptncontext"] for s in response.json()["states"]]

    assert await contexts(name="evaluation") == ["c2"]
    assert await contexts(state="started") == ["c1"]
    assert await contexts(keptnContext="c1, c2") == ["c2", "c1"]
    assert await contexts(keptnContext="c1,nope") == ["c1"]
    assert await contexts(fromTime="2024-01-02T03:04:06.000Z") == ["c2"]
    assert await contexts(beforeTime="2024-01-02T03:04:06Z") == ["c1"]
    assert await contexts(name="", state="", keptnContext="", fromTime="") == ["c2", "c1"]
    first = (await api.get(f"{STATES}/sockshop", params={"pageSize": 1})).json()
    assert (first["nextPageKey"], first["pageSize"], first["totalCount"]) == (1, 1, 2)
    second = (await api.get(f"{STATES}/sockshop", params={"pageSize": 1, "nextPageKey": "1"})).json()
    assert [s["shkeptncontext"] for s in second["states"]] == ["c1"] and "nextPageKey" not in second


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"pageSize": 0}, "pageSize"),
        ({"pageSize": 51}, "pageSize"),
        ({"pageSize": "x"}, "pageSize"),
        ({"nextPageKey": "-1"}, "nextPageKey"),
        ({"state": "running"}, "state"),
        ({"fromTime": "yesterday"}, "fromTime"),
        ({"beforeTime": "2024-13-01"}, "beforeTime"),
    ],
)
async def test_sequence_states_rejects_bad_parameters(api, seeded, params, needle):
    assert_error(await api.get(f"{STATES}/sockshop", params=params), 400, needle)


async def test_sequence_states_of_an_unknown_project(api):
    assert_error(await api.get(f"{STATES}/nope"), 404, "project 'nope'")


async def test_sequence_states_of_a_project_without_sequences(api):
    await create_project(api, "empty")
    body = (await api.get(f"{STATES}/empty")).json()
    assert body == {"states": [], "pageSize": 20, "totalCount": 0}


async def test_sequence_executions_shape(api, seeded):
    response = await api.get(EXECUTIONS, params={"project": "sockshop", "keptnContext": "c1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"SequenceExecutions", "pageSize", "totalCount"}
    assert (body["pageSize"], body["totalCount"]) == (2, 2)
    staging, dev = body["SequenceExecutions"]
    assert staging == {
        "_id": "S",
        "sequence": {
            "name": "delivery",
            "tasks": [{"name": "deployment"}, {"name": "evaluation"}, {"name": "release"}],
        },
        "status": {
            "state": "waitingForApproval",
            "previousTasks": [],
            "currentTask": {"name": "x", "triggeredID": "E", "events": []},
        },
        "scope": {
            "project": "sockshop",
            "stage": "staging",
            "service": "carts",
            "keptnContext": "c1",
            "triggeredId": "S",
            "eventType": "sh.keptn.event.staging.delivery.triggered",
            "gitcommitid": "abc",
        },
        "inputProperties": {},
        "triggeredAt": "2024-01-02T03:04:15.000Z",
    }
    assert dev["status"]["previousTasks"] == [
        {"name": "deployment", "triggeredID": "D", "result": "pass", "status": "succeeded"}
    ]
    assert dev["status"]["currentTask"] == {"name": "", "triggeredID": "", "events": []}
    assert "gitcommitid" not in dev["scope"]


async def test_sequence_executions_filters_and_paging(api, seeded):
    async def ids(**params):
        response = await api.get(EXECUTIONS, params={"project": "sockshop", **params})
        assert response.status_code == 200, response.text
        return [x["_id"] for x in response.json()["SequenceExecutions"]]

    assert await ids() == ["Q", "S", "T"]
    assert await ids(stage="staging") == ["S"]
    assert await ids(service="carts", name="evaluation") == ["Q"]
    assert await ids(status="waiting") == ["Q"]
    assert await ids(keptnContext="c2") == ["Q"]
    assert await ids(stage="", status="") == ["Q", "S", "T"]
    assert await ids(service="orders") == []
    page = (await api.get(EXECUTIONS, params={"project": "sockshop", "pageSize": 2})).json()
    assert (page["nextPageKey"], page["pageSize"], page["totalCount"]) == (2, 2, 3)
    assert await ids(pageSize=2, nextPageKey="2") == ["T"]


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({}, 400, "project"),
        ({"project": ""}, 400, "project"),
        ({"project": "sockshop", "status": "done"}, 400, "status"),
        ({"project": "sockshop", "pageSize": 101}, 400, "pageSize"),
        ({"project": "sockshop", "nextPageKey": "abc"}, 400, "nextPageKey"),
        ({"project": "nope"}, 404, "project 'nope'"),
    ],
)
async def test_sequence_executions_rejects_bad_parameters(api, seeded, params, status, needle):
    assert_error(await api.get(EXECUTIONS, params=params), status, needle)


async def test_sequence_views_need_the_token(api):
    response = await api.get(f"{STATES}/sockshop", headers={"x-token": "wrong"})
    assert_error(response, 401, "x-token")
