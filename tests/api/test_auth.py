"""Access control: scoped tokens, 401 vs 403, project restriction, revocation, hashing, rate limiting."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext, iter_route_contexts
from temporalio.testing import WorkflowEnvironment

from api.auth import ScopeRequirement, authenticate
from api.main import create_app
from api.ratelimit import AuthFailureLimiter
from capstan.scopes import Scope
from capstan.settings import Settings
from store.tokens import hash_secret, new_token_parts, parse_token
from tests.api.helpers import PROJECTS, assert_error, create_project

ADMIN = "auth-admin-token"
TOKENS = "/api/v1/tokens"
EVENTS = "/api/v1/event"
DATASTORE = "/api/mongodb-datastore/event"
LIMIT = 4

PUBLIC = {"/api/health", "/api/openapi.json", "/api/swagger-ui"}
"""Routes under /api anyone may call: health, the schema and its UI (Keptn served these openly)."""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Gateway:
    app: FastAPI
    admin: httpx.AsyncClient
    clock: Clock
    client_for: Callable[..., httpx.AsyncClient]

    async def token(self, *scopes: str, project: str | None = None, name: str = "t") -> str:
        body: dict[str, Any] = {"name": name, "scopes": list(scopes)}
        if project is not None:
            body["project"] = project
        response = await self.admin.post(TOKENS, json=body)
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        return token


@pytest_asyncio.fixture
async def gw(db_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[Gateway]:
    settings = Settings(
        database_url=db_url,
        api_token=ADMIN,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"auth-test-{uuid.uuid4()}",
        auth_failures_per_minute=LIMIT,
    )
    app = create_app(settings)
    clock = Clock()
    opened: list[httpx.AsyncClient] = []

    def client_for(token: str | None = None, address: str = "127.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 1234))
        headers = {"x-token": token} if token is not None else {}
        client = httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers)
        opened.append(client)
        return client

    async with app.router.lifespan_context(app):
        app.state.services.auth_limiter.clock = clock
        try:
            yield Gateway(app, client_for(ADMIN, address="10.0.0.1"), clock, client_for)
        finally:
            for client in opened:
                await client.aclose()


def event(project: str | None, type: str = "sh.keptn.event.deployment.finished") -> dict[str, Any]:
    data: dict[str, Any] = {"stage": "dev", "service": "carts", "result": "pass", "status": "succeeded"}
    if project is not None:
        data["project"] = project
    return {"type": type, "source": "test", "triggeredid": str(uuid.uuid4()), "data": data}


# --- every route declares its scope --------------------------------------------------------


def _requirements(dependant: Dependant) -> list[ScopeRequirement]:
    found, stack = [], [dependant]
    while stack:
        current = stack.pop()
        if isinstance(current.call, ScopeRequirement):
            found.append(current.call)
        stack.extend(current.dependencies)
    return found


def _api_routes() -> dict[str, RouteContext]:
    """Every route under /api as served (the routers' prefixes and dependencies applied)."""
    app = create_app(Settings(api_token="x"))
    return {
        f"{sorted(context.methods or [])} {context.path}": context
        for context in iter_route_contexts(app.routes)
        if (context.path or "").startswith("/api")
    }


def test_every_api_route_authenticates_and_declares_one_scope():
    routes = _api_routes()
    undeclared, unauthenticated = [], []
    for name, context in routes.items():
        if context.path in PUBLIC:
            continue
        dependant = getattr(context, "dependant", None)
        if dependant is None or len(_requirements(dependant)) != 1:
            undeclared.append(name)
        elif authenticate not in [d.call for d in dependant.dependencies]:
            unauthenticated.append(name)
    assert not undeclared, f"routes without exactly one declared scope: {undeclared}"
    assert not unauthenticated, f"routes the router does not authenticate: {unauthenticated}"
    assert len(routes) > 40
    tokens = [c for c in routes.values() if (c.path or "").startswith(TOKENS)]
    assert len(tokens) == 3
    admin = ScopeRequirement((Scope.ADMIN,), all_projects=True)
    assert all(_requirements(c.dependant) == [admin] for c in tokens)


def test_the_public_routes_exist():
    assert {context.path for context in _api_routes().values()} >= PUBLIC


# --- the token API -------------------------------------------------------------------------


async def test_create_list_revoke_and_the_token_is_shown_once(gw: Gateway, pool: asyncpg.Pool):
    created = await gw.admin.post(
        TOKENS, json={"name": "ci", "scopes": ["events:write", "events:read", "events:read"], "project": "p1"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"id", "token", "name", "scopes", "project", "createdAt"}
    assert body["token"].startswith(f"cap_{body['id']}_")
    assert body["scopes"] == ["events:read", "events:write"] and body["project"] == "p1"

    listed = await gw.admin.get(TOKENS)
    assert listed.status_code == 200
    [entry] = listed.json()["tokens"]
    assert entry == {**{k: v for k, v in body.items() if k != "token"}, "revokedAt": None}
    assert body["token"] not in listed.text

    secret = body["token"].rsplit("_", 1)[1]
    row = await pool.fetchrow("SELECT * FROM api_tokens WHERE id = $1", body["id"])
    assert bytes(row["secret_hash"]) == hashlib.sha256(secret.encode()).digest()
    for value in row.values():
        assert secret not in str(value) and body["token"] not in str(value)

    revoked = await gw.admin.delete(f"{TOKENS}/{body['id']}")
    assert revoked.status_code == 200 and revoked.json()["revokedAt"]
    again = await gw.admin.delete(f"{TOKENS}/{body['id']}")
    assert again.json()["revokedAt"] == revoked.json()["revokedAt"]
    assert_error(await gw.admin.delete(f"{TOKENS}/nope"), 404, "nope")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": "x", "scopes": ["events:destroy"]}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "   ", "scopes": ["admin"]}, "name"),
        ({"name": "x", "scopes": ["admin"], "project": "Not_A_Project"}, "project"),
        ({"scopes": ["admin"]}, "name"),
    ],
)
async def test_invalid_token_requests_are_400_naming_the_field(gw: Gateway, body, needle):
    assert_error(await gw.admin.post(TOKENS, json=body), 400, needle)


async def test_only_unrestricted_admin_tokens_manage_tokens(gw: Gateway):
    reader = gw.client_for(await gw.token("events:read", "projects:read"))
    assert_error(await reader.get(TOKENS), 403, "'admin'")
    restricted_admin = gw.client_for(await gw.token("admin", project="p1"))
    assert_error(
        await restricted_admin.post(TOKENS, json={"name": "x", "scopes": ["admin"]}), 403, "restricted"
    )
    stored_admin = gw.client_for(await gw.token("admin"))
    response = await stored_admin.post(TOKENS, json={"name": "made-by-token", "scopes": ["events:read"]})
    assert response.status_code == 201, response.text


# --- 401 versus 403 ------------------------------------------------------------------------


async def test_401_for_missing_unknown_wrong_and_revoked_tokens(gw: Gateway):
    token = await gw.token("events:read")
    token_id = token.split("_")[1]
    for bad in (
        None,
        "nonsense",
        "cap_" + "0" * 16 + "_" + "0" * 64,  # well-formed, unknown id
        token[:-1] + ("0" if token[-1] != "0" else "1"),  # known id, wrong secret
    ):
        assert_error(await gw.client_for(bad).post("/api/v1/auth"), 401, "x-token")
    client = gw.client_for(token)
    assert (await client.post("/api/v1/auth")).status_code == 200
    await gw.admin.delete(f"{TOKENS}/{token_id}")
    response = await client.get(DATASTORE, params={"project": "p"})
    assert_error(response, 401, "revoked")
    assert response.headers["www-authenticate"] == "x-token"


async def test_any_valid_token_passes_auth_and_metadata_but_needs_scopes_elsewhere(gw: Gateway):
    client = gw.client_for(await gw.token("events:read"))
    assert (await client.post("/api/v1/auth")).status_code == 200
    assert (await client.get("/api/v1/metadata")).status_code == 200
    assert (await client.get(DATASTORE, params={"project": "p"})).status_code == 200
    assert_error(await client.post(EVENTS, json=event("p")), 403, "'events:write'")
    assert_error(await client.get(PROJECTS), 403, "'projects:read'", "events:read")
    assert_error(await client.get("/api/controlPlane/v1/uniform/registration"), 403, "integrations:read")


async def test_the_admin_token_from_the_settings_can_do_everything(gw: Gateway):
    await create_project(gw.admin, "sockshop", "carts")
    assert (await gw.admin.get(TOKENS)).status_code == 200
    assert (await gw.admin.get("/api/controlPlane/v1/uniform/registration")).status_code == 200
    assert (await gw.admin.post(EVENTS, json=event("sockshop"))).status_code == 200


async def test_approval_finished_needs_approvals_write(gw: Gateway):
    await create_project(gw.admin, "sockshop", "carts")
    approval = event("sockshop", type="sh.keptn.event.approval.finished")
    integration = gw.client_for(await gw.token("events:write"))
    assert_error(await integration.post(EVENTS, json=approval), 403, "'approvals:write'")
    assert (await integration.post(EVENTS, json=event("sockshop"))).status_code == 200
    approver = gw.client_for(await gw.token("approvals:write"))
    assert (await approver.post(EVENTS, json=approval)).status_code == 200, "approval refused"
    assert_error(await approver.post(EVENTS, json=event("sockshop")), 403, "'events:write'")


async def test_secrets_need_their_scopes_and_an_unrestricted_token(gw: Gateway):
    secrets = "/api/secrets/v1/secret"
    reader = gw.client_for(await gw.token("secrets:read"))
    assert (await reader.get(secrets)).status_code == 200
    assert (await reader.get("/api/secrets/v1/scope")).status_code == 200
    body = {"name": "s", "data": {"k": "v"}}
    assert_error(await reader.post(secrets, json=body), 403, "'secrets:write'")
    assert_error(await reader.delete(secrets, params={"name": "s"}), 403, "'secrets:write'")
    restricted = gw.client_for(await gw.token("secrets:read", "secrets:write", project="mine"))
    assert_error(await restricted.get(secrets), 403, "restricted to project 'mine'")


# --- project restriction -------------------------------------------------------------------


async def test_a_token_restricted_to_one_project_gets_403_on_another(gw: Gateway):
    await create_project(gw.admin, "mine", "carts")
    await create_project(gw.admin, "theirs", "carts")
    mine_event = (await gw.admin.post(EVENTS, json=event("mine"))).json()["keptnContext"]
    theirs_event = (await gw.admin.post(EVENTS, json=event("theirs"))).json()["keptnContext"]
    client = gw.client_for(
        await gw.token("projects:read", "projects:write", "events:read", "events:write", project="mine")
    )

    assert (await client.get(f"{PROJECTS}/mine")).status_code == 200
    assert_error(await client.get(f"{PROJECTS}/theirs"), 403, "restricted to project 'mine'", "theirs")
    assert_error(await client.delete(f"{PROJECTS}/theirs"), 403, "theirs")
    assert_error(await client.get(f"{PROJECTS}/theirs/stage/dev/service"), 403, "theirs")
    resource = "/api/resource-service/v1/project/theirs/resource"
    assert_error(await client.get(resource), 403, "theirs")
    assert (await client.get("/api/resource-service/v1/project/mine/resource")).status_code == 200
    assert_error(await client.get("/api/controlPlane/v1/sequence/theirs"), 403, "theirs")
    assert_error(
        await client.get("/api/controlPlane/v1/sequence-execution", params={"project": "theirs"}), 403
    )
    control = f"/api/controlPlane/v1/sequence/theirs/{theirs_event}/control"
    assert_error(await client.post(control, json={"state": "abort"}), 403, "theirs")
    evaluation = f"{PROJECTS}/theirs/stage/dev/service/carts/evaluation"
    assert_error(await client.post(evaluation, json={}), 403, "theirs")

    # events: sending names the project in data.project
    assert_error(await client.post(EVENTS, json=event("theirs")), 403, "data.project")
    assert_error(await client.post(EVENTS, json=event(None)), 403, "data.project")
    assert (await client.post(EVENTS, json=event("mine"))).status_code == 200

    # lists: only the token's project, or 403 when another is asked for
    listed = (await client.get(PROJECTS)).json()
    assert [p["projectName"] for p in listed["projects"]] == ["mine"] and listed["totalCount"] == 1
    assert_error(await client.get(DATASTORE, params={"project": "theirs"}), 403)
    by_context = (await client.get(DATASTORE, params={"keptnContext": theirs_event})).json()
    assert by_context["events"] == []
    own = (await client.get(DATASTORE, params={"keptnContext": mine_event})).json()
    assert own["events"] and all(e["data"]["project"] == "mine" for e in own["events"])
    by_type = "/api/mongodb-datastore/event/type/sh.keptn.event.deployment.finished"
    assert_error(await client.get(by_type, params={"filter": "data.project:theirs"}), 403)
    assert_error(await client.get(by_type, params={"filter": "data.project:mine,theirs"}), 403)
    found = (await client.get(by_type, params={"filter": f"shkeptncontext:{theirs_event}"})).json()
    assert found["events"] == []
    found = (await client.get(by_type, params={"filter": "data.stage:dev"})).json()
    assert {e["data"]["project"] for e in found["events"]} == {"mine"}
    triggered = "/api/controlPlane/v1/event/triggered/sh.keptn.event.deployment.triggered"
    assert_error(await client.get(triggered, params={"project": "theirs"}), 403)
    assert (await client.get(triggered)).status_code == 200

    # creating another project is touching another project
    assert_error(await client.post(PROJECTS, json={"name": "third", "shipyard": "eA=="}), 403, "third")

    # control-plane-wide things need an unrestricted token
    assert_error(await client.get("/api/controlPlane/v1/log"), 403, "integrations:read")
    everything = gw.client_for(await gw.token("admin", project="mine"))
    assert_error(await everything.get("/api/controlPlane/v1/log"), 403, "restricted to project 'mine'")
    assert_error(await everything.get("/api/controlPlane/v1/uniform/registration"), 403, "every project")


async def test_a_restricted_token_polling_without_project_sees_nothing_before_its_project_exists(gw: Gateway):
    client = gw.client_for(await gw.token("events:read", project="later"))
    triggered = "/api/controlPlane/v1/event/triggered/sh.keptn.event.deployment.triggered"
    response = await client.get(triggered)
    assert response.status_code == 200 and response.json()["events"] == []
    assert (await client.get(PROJECTS, headers={})).status_code == 403  # no projects:read


async def test_a_retried_event_id_of_another_project_is_refused(gw: Gateway):
    await create_project(gw.admin, "mine", "carts")
    await create_project(gw.admin, "theirs", "carts")
    theirs = {**event("theirs"), "id": str(uuid.uuid4())}
    assert (await gw.admin.post(EVENTS, json=theirs)).status_code == 200
    client = gw.client_for(await gw.token("events:write", project="mine"))
    replay = {**theirs, "data": {**theirs["data"], "project": "mine"}}
    assert_error(await client.post(EVENTS, json=replay), 403, "theirs")


# --- rate limiting of failed authentication ------------------------------------------------


async def test_failed_authentication_is_rate_limited_per_address(gw: Gateway):
    attacker = gw.client_for("wrong", address="192.0.2.7")
    for _ in range(LIMIT):
        assert_error(await attacker.post("/api/v1/auth"), 401)
    blocked = await attacker.post("/api/v1/auth")
    assert_error(blocked, 429, "too many failed authentication attempts", "192.0.2.7")
    assert 1 <= int(blocked.headers["retry-after"]) <= 60

    # while blocked, even the right token is not checked from that address
    same_address = gw.client_for(ADMIN, address="192.0.2.7")
    assert_error(await same_address.post("/api/v1/auth"), 429)
    # other addresses are not affected, and health needs no token at all
    assert (await gw.admin.post("/api/v1/auth")).status_code == 200
    assert (await attacker.get("/api/health")).status_code in (200, 503)

    gw.clock.now += 61
    assert (await same_address.post("/api/v1/auth")).status_code == 200
    assert_error(await attacker.post("/api/v1/auth"), 401)


async def test_requests_without_a_token_are_not_counted(gw: Gateway):
    anonymous = gw.client_for(None, address="192.0.2.8")
    for _ in range(LIMIT * 2):
        assert_error(await anonymous.post("/api/v1/auth"), 401, "missing")
    assert (await gw.client_for(ADMIN, address="192.0.2.8").post("/api/v1/auth")).status_code == 200


async def test_403_does_not_count_as_a_failed_authentication(gw: Gateway):
    client = gw.client_for(await gw.token("events:read"), address="192.0.2.9")
    for _ in range(LIMIT * 2):
        assert_error(await client.get(PROJECTS), 403)
    assert (await client.post("/api/v1/auth")).status_code == 200


# --- the limiter and the token format, without a gateway ------------------------------------


def test_the_limiter_window_slides_and_its_memory_is_bounded(monkeypatch: pytest.MonkeyPatch):
    clock = Clock()
    limiter = AuthFailureLimiter(2, clock=clock)
    limiter.record_failure("a")
    clock.now += 30
    limiter.record_failure("a")
    assert limiter.retry_after("a") == 30  # the first failure leaves the window in 30 s
    clock.now += 30
    assert limiter.retry_after("a") is None  # one failure left in the window: one more try
    limiter.record_failure("a")
    assert limiter.retry_after("a") == 30
    assert limiter.retry_after("b") is None

    monkeypatch.setattr("api.ratelimit.MAX_TRACKED_ADDRESSES", 3)
    for address in ("c", "d", "e", "f"):
        limiter.record_failure(address)
    assert limiter.retry_after("a") is None  # the stalest address was forgotten


def test_the_token_format():
    parts = new_token_parts()
    assert parse_token(str(parts)) == parts
    for text in ("", "cap_", f"cap_{parts.id}", f"{parts}x", f"cap_{parts.id.upper()}_{parts.secret}"):
        assert parse_token(text) is None
    assert hash_secret(parts.secret) == hashlib.sha256(parts.secret.encode()).digest()
