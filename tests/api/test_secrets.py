"""Keptn's secret-service API: CRUD, validation naming the field, and values never coming back."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from capstan.secret_box import SecretBox, generate_secret_key
from capstan.settings import Settings
from keptn.secrets import KEPTN_SCOPES
from store import secrets as secret_store
from store.db import create_pool
from tests.api.helpers import assert_error
from tests.fixtures.app_client import TOKEN, settings_client

SECRET = "/api/secrets/v1/secret"
SCOPE = "/api/secrets/v1/scope"
VALUE = "hunter2-s3cr3t-value"

Gateway = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def gateway(db_url: str, temporal_env: WorkflowEnvironment, tmp_path: Path) -> Gateway:
    """Start the app with a given secret key (None: none configured, and no key file)."""

    @asynccontextmanager
    async def start(secret_key: str | None) -> AsyncIterator[httpx.AsyncClient]:
        settings = Settings(
            database_url=db_url,
            api_token=TOKEN,
            secret_key=secret_key,
            data_dir=tmp_path / "data",
            temporal_address=temporal_env.client.service_client.config.target_host,
            temporal_task_queue=f"api-test-{uuid.uuid4()}",
        )
        async with settings_client(settings, TOKEN) as client:
            yield client

    return start


KEY = generate_secret_key()


@pytest_asyncio.fixture
async def api(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway(KEY) as client:
        yield client


def body(name="slack", scope="keptn-webhook-service", **data):
    return {"name": name, "scope": scope, "data": data or {"token": VALUE}}


async def test_crud_in_keptns_shape(api, db_url):
    created = await api.post(SECRET, json=body(token=VALUE, channel="#ops"))
    assert created.status_code == 201, created.text
    assert created.json() == {"name": "slack", "scope": "keptn-webhook-service", "keys": ["channel", "token"]}

    listed = await api.get(SECRET)
    assert listed.status_code == 200
    assert listed.json() == {
        "Secrets": [{"name": "slack", "scope": "keptn-webhook-service", "keys": ["channel", "token"]}]
    }

    updated = await api.put(SECRET, json=body(token="new-" + VALUE, url="https://hooks"))
    assert updated.status_code == 200, updated.text
    assert updated.json()["keys"] == ["token", "url"]

    pool = await create_pool(db_url)
    try:
        values = await secret_store.read_secret_values(pool, SecretBox(KEY), "slack", "keptn-webhook-service")
    finally:
        await pool.close()
    assert values == {"token": "new-" + VALUE, "url": "https://hooks"}

    deleted = await api.delete(SECRET, params={"name": "slack", "scope": "keptn-webhook-service"})
    assert deleted.status_code == 200 and deleted.json() == {}
    assert (await api.get(SECRET)).json() == {"Secrets": []}


async def test_scope_defaults_to_keptn_default(api):
    created = await api.post(SECRET, json={"name": "db", "data": {"password": VALUE}})
    assert created.json() == {"name": "db", "scope": "keptn-default", "keys": ["password"]}
    assert (await api.post(SECRET, json={"name": "db2", "scope": "", "data": {"k": "v"}})).json()[
        "scope"
    ] == "keptn-default"
    assert (await api.delete(SECRET, params={"name": "db"})).status_code == 200
    assert (await api.delete(SECRET, params={"name": "db2", "scope": ""})).status_code == 200


async def test_list_filters_by_name_and_scope(api):
    for name, scope in (("a", "keptn-default"), ("a", "team-x"), ("b", "team-x")):
        assert (await api.post(SECRET, json=body(name, scope))).status_code == 201
    by_name = (await api.get(SECRET, params={"name": "a"})).json()["Secrets"]
    assert [(s["name"], s["scope"]) for s in by_name] == [("a", "keptn-default"), ("a", "team-x")]
    by_scope = (await api.get(SECRET, params={"scope": "team-x"})).json()["Secrets"]
    assert [s["name"] for s in by_scope] == ["a", "b"]
    both = (await api.get(SECRET, params={"name": "b", "scope": "keptn-default"})).json()
    assert both == {"Secrets": []}
    assert len((await api.get(SECRET, params={"name": "", "scope": ""})).json()["Secrets"]) == 3


async def test_scopes(api):
    response = await api.get(SCOPE)
    assert response.status_code == 200 and response.json() == {"scopes": sorted(KEPTN_SCOPES)}
    await api.post(SECRET, json=body("s", "team-x"))
    assert "team-x" in (await api.get(SCOPE)).json()["scopes"]


async def test_conflict_and_not_found(api):
    assert (await api.post(SECRET, json=body())).status_code == 201
    assert_error(await api.post(SECRET, json=body()), 409, "'slack' already exists", "keptn-webhook-service")
    assert_error(await api.put(SECRET, json=body("nope")), 404, "secret 'nope' not found")
    assert_error(await api.put(SECRET, json=body(scope="keptn-default")), 404, "scope 'keptn-default'")
    response = await api.delete(SECRET, params={"name": "nope", "scope": "keptn-default"})
    assert_error(response, 404, "secret 'nope' not found in scope 'keptn-default'")


@pytest.mark.parametrize(
    ("payload", "needles"),
    [
        ({"name": "My_Secret", "data": {"k": VALUE}}, ["name:", "DNS-1123"]),
        ({"name": "", "data": {"k": VALUE}}, ["name:", "missing"]),
        ({"name": "s", "scope": "Bad Scope", "data": {"k": VALUE}}, ["scope:"]),
        ({"name": "s", "data": {}}, ["data:", "at least one key"]),
        ({"name": "s", "data": {"bad key": VALUE}}, ["data:", "'bad key'"]),
        ({"name": "s", "data": {"..k": VALUE}}, ["data:", "'..k'"]),
        ({"name": "s", "data": {"k": 42}}, ["field 'data.k'"]),
        ('{"name": "s", "data": {"k": "s3cr3t\\ud800"}}', ["data.k"]),  # raw JSON: a lone surrogate
        ({"name": "s"}, ["field 'data'"]),
        ({"data": {"k": VALUE}}, ["field 'name'"]),
        ({"name": 7, "data": {"k": VALUE}}, ["field 'name'"]),
        ({"name": "s", "data": ["k"]}, ["field 'data'"]),
        ({"name": "s", "data": {"k": "v" * (1024 * 1024)}}, ["data:", "must not exceed"]),
    ],
)
async def test_invalid_bodies_are_400_naming_the_field(api, payload, needles):
    raw = {"content": payload, "headers": {"content-type": "application/json"}}
    for method in (api.post, api.put):
        response = await method(SECRET, **(raw if isinstance(payload, str) else {"json": payload}))
        assert_error(response, 400, *needles)
        assert "s3cr3t" not in response.text and VALUE not in response.text


async def test_invalid_query_parameters_are_400(api):
    assert_error(await api.delete(SECRET, params={"name": "Bad!"}), 400, "name:")
    assert_error(await api.delete(SECRET, params={"name": "s", "scope": "a\x00b"}), 400, "scope:")
    assert_error(await api.delete(SECRET), 400, "query parameter 'name'")
    assert_error(await api.get(SECRET, params={"scope": "_x"}), 400, "scope:")


async def test_token_required(api):
    response = await api.get(SECRET, headers={"x-token": "wrong"})
    assert_error(response, 401)
    response = await api.post(SECRET, json=body(), headers={"x-token": ""})
    assert_error(response, 401)


async def test_without_a_key_writes_are_503_and_reads_work(gateway):
    async with gateway(None) as api:
        response = await api.post(SECRET, json=body())
        assert_error(response, 503, "CAPSTAN_SECRET_KEY is not set", "capstan up")
        assert_error(await api.put(SECRET, json=body()), 503, "CAPSTAN_SECRET_KEY is not set")
        assert (await api.get(SECRET)).json() == {"Secrets": []}
        assert (await api.get(SCOPE)).status_code == 200
        assert_error(await api.delete(SECRET, params={"name": "s"}), 404)


async def test_invalid_key_is_503_saying_so(gateway):
    async with gateway("not-a-fernet-key") as api:
        assert_error(await api.post(SECRET, json=body()), 503, "CAPSTAN_SECRET_KEY is not a valid key")


async def test_key_file_in_the_data_dir_is_used(gateway, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secret-key").write_text(generate_secret_key() + "\n")
    async with gateway(None) as api:
        assert (await api.post(SECRET, json=body())).status_code == 201


async def test_values_never_in_any_response_or_log(api, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    responses = [
        await api.post(SECRET, json=body(token=VALUE)),
        await api.post(SECRET, json=body(token=VALUE)),  # 409
        await api.put(SECRET, json=body(token=VALUE, other=VALUE)),
        await api.put(SECRET, json=body("missing", token=VALUE)),  # 404
        await api.post(SECRET, json={"name": "x", "data": {"bad key": VALUE}}),  # 400
        await api.post(SECRET, json={"name": "Bad", "data": {"k": VALUE}}),  # 400
        await api.get(SECRET),
        await api.get(SCOPE),
        await api.get("/api/openapi.json"),
        await api.delete(SECRET, params={"name": "slack", "scope": "keptn-webhook-service"}),
    ]
    assert [r.status_code for r in responses] == [201, 409, 200, 404, 400, 400, 200, 200, 200, 200]
    for response in responses:
        assert VALUE not in response.text and "hunter2" not in response.text
    captured = capsys.readouterr()
    assert VALUE not in captured.out + captured.err
    assert VALUE not in caplog.text
