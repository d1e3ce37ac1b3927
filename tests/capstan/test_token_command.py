"""``capstan token create|list|revoke`` as a real process against a real gateway on a port."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Generator

import httpx
import pytest
import pytest_asyncio
import uvicorn
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from api.main import create_app
from capstan.cli import app as cli
from capstan.settings import Settings
from tests.capstan.cli_runner import Run, one_error_line, run_capstan
from tests.fixtures.ports import free_port

ADMIN = "token-command-admin"
TOKEN = re.compile(r"cap_([0-9a-f]{16})_[0-9a-f]{64}")

pytestmark = pytest.mark.timeout(90)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the test runner owns the signals


@pytest_asyncio.fixture
async def api_url(db_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[str]:
    """The base URL of a gateway on a loopback port (no worker: token commands need none)."""
    settings = Settings(
        database_url=db_url,
        api_token=ADMIN,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"token-{uuid.uuid4()}",
    )
    app = create_app(settings)
    port = free_port()
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False)
    )
    async with app.router.lifespan_context(app):
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:
                assert not serving.done(), "the gateway stopped while starting"
                await asyncio.sleep(0.01)
            yield f"http://127.0.0.1:{port}/api"
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, 10)


async def capstan(api_url: str, *args: str, token: str = ADMIN) -> Run:
    """Run ``capstan token <args>`` as a process."""
    return await run_capstan("token", *args, api_url=api_url, token=token, within=30)


async def auth_status(api_url: str, token: str) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.post(f"{api_url}/v1/auth", headers={"x-token": token})).status_code


async def test_create_prints_only_the_token_and_it_works(api_url):
    run = await capstan(
        api_url, "create", "ci", "--scope", "events:read,projects:read", "-s", "events:read", "-p", "sockshop"
    )
    assert run.code == 0, run.stderr
    match = TOKEN.fullmatch(run.stdout.strip())
    assert match, run.stdout
    assert f"created token {match.group(1)} (ci)" in run.stderr
    assert "events:read, projects:read on project sockshop" in run.stderr
    assert "shown only now" in run.stderr
    assert await auth_status(api_url, run.stdout.strip()) == 200


async def test_list_and_revoke(api_url):
    created = (await capstan(api_url, "create", "bot", "--scope", "integrations:write", "-o", "json")).json()
    assert TOKEN.fullmatch(created["token"]) and created["project"] is None

    listed = await capstan(api_url, "list")
    assert listed.code == 0, listed.stderr
    assert created["id"] in listed.stdout and "bot" in listed.stdout and "(all)" in listed.stdout
    assert created["token"] not in listed.stdout

    revoked = await capstan(api_url, "revoke", created["id"])
    assert revoked.code == 0, revoked.stderr
    assert revoked.stdout.strip() == f"revoked {created['id']} (bot)"
    assert await auth_status(api_url, created["token"]) == 401

    [entry] = (await capstan(api_url, "list", "-o", "json")).json()
    assert entry["id"] == created["id"] and entry["revokedAt"]
    assert "token" not in entry

    assert "not found (HTTP 404)" in one_error_line(await capstan(api_url, "revoke", "nope"))


async def test_a_token_without_admin_gets_a_one_line_403(api_url):
    reader = (await capstan(api_url, "create", "reader", "-s", "events:read")).stdout.strip()
    line = one_error_line(await capstan(api_url, "list", token=reader))
    assert "lacks the scope 'admin'" in line and line.endswith("(HTTP 403)")
    line = one_error_line(await capstan(api_url, "list", token="wrong"))
    assert line == "error: invalid API token in x-token header (HTTP 401)"


def test_unknown_scopes_are_refused_before_connecting():
    result = CliRunner().invoke(cli, ["token", "create", "x", "--scope", "events:read,bogus"])
    assert result.exit_code == 1
    assert "unknown scope 'bogus'" in result.stderr and "events:write" in result.stderr
    result = CliRunner().invoke(cli, ["token", "create", "x", "--scope", ","])
    assert result.exit_code == 1 and "at least one --scope" in result.stderr
