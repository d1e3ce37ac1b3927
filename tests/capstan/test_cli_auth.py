"""``capstan auth`` and where the other commands connect, as real processes against a real gateway.

Precedence: ``--api-url``/``--token`` (or CAPSTAN_API_URL/CAPSTAN_API_TOKEN), then what
``capstan auth`` stored in ``$XDG_CONFIG_HOME/capstan/config.json``, then the defaults.
HOME and XDG_CONFIG_HOME point into the test's tmp_path, so no developer's config is touched.
"""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.capstan.cli_runner import Run, one_error_line, run_capstan
from tests.fixtures.ports import free_port
from tests.workflows.stack import TOKEN, Stack, running_stack

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: auth}
spec:
  stages: [{name: dev, sequences: []}]
"""

pytestmark = pytest.mark.timeout(90)


@pytest_asyncio.fixture
async def stack(db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    async with running_stack(db_url, pool, temporal_env.client, serve=True) as running:
        await running.create_project(running.project, SHIPYARD)
        yield running


def home_env(tmp_path: Path, *, xdg: bool = True) -> dict[str, str]:
    """HOME (and XDG_CONFIG_HOME) in tmp_path, and a data dir without a token file."""
    env = {"HOME": str(tmp_path / "home"), "CAPSTAN_DATA_DIR": str(tmp_path / "data")}
    if xdg:
        env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    return env


async def capstan(*args: str, env: dict[str, str], **more: str) -> Run:
    environ: dict[str, Any] = {**env, **more}  # Any: mypy cannot tell these from stdin/within
    return await run_capstan(*args, **environ)


async def project_names(env: dict[str, str], **more: str) -> list[str]:
    run = await capstan("get", "project", "--output", "json", env=env, **more)
    assert run.code == 0, run.stderr
    return [p["projectName"] for p in run.json()]


async def test_auth_stores_credentials_that_the_other_commands_use(stack: Stack, tmp_path: Path):
    env = home_env(tmp_path)
    # the gateway's root URL is accepted: /api is appended
    run = await capstan("auth", "--endpoint", f"{stack.base_url}/", "--api-token", TOKEN, env=env)
    assert run.code == 0, run.stderr
    config = tmp_path / "xdg" / "capstan" / "config.json"
    assert str(config) in run.stdout
    assert json.loads(config.read_text()) == {"api_url": f"{stack.base_url}/api", "token": TOKEN}
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700

    # no --api-url, no --token, no env: the stored ones are used
    assert stack.project in await project_names(env)

    status = await capstan("auth", "--status", env=env)
    assert status.code == 0, status.stderr
    assert f"{stack.base_url}/api" in status.stdout and "capstan auth" in status.stdout
    status_json = await capstan("auth", "--status", "--output", "json", env=env)
    assert status_json.json()["urlSource"] == "config" and status_json.json()["tokenSource"] == "config"

    logout = await capstan("auth", "--logout", env=env)
    assert logout.code == 0 and "logged out" in logout.stdout
    assert not config.exists()
    assert "not logged in" in (await capstan("auth", "--logout", env=env)).stdout
    # back to the defaults: the data dir has no token file
    line = one_error_line(await capstan("get", "project", env=env))
    assert "no API token" in line


async def test_without_xdg_config_home_the_config_is_under_home(stack: Stack, tmp_path: Path):
    env = home_env(tmp_path, xdg=False)
    run = await capstan("auth", "--endpoint", f"{stack.base_url}/api", "--api-token", TOKEN, env=env)
    assert run.code == 0, run.stderr
    assert (tmp_path / "home" / ".config" / "capstan" / "config.json").exists()
    assert stack.project in await project_names(env)


async def test_an_invalid_token_or_endpoint_is_one_error_line_and_nothing_is_stored(
    stack: Stack, tmp_path: Path
):
    env = home_env(tmp_path)
    config = tmp_path / "xdg" / "capstan" / "config.json"
    line = one_error_line(
        await capstan("auth", "--endpoint", f"{stack.base_url}/api", "--api-token", "wrong", env=env)
    )
    assert "401" in line
    unreachable = f"http://127.0.0.1:{free_port()}/api"
    line = one_error_line(await capstan("auth", "--endpoint", unreachable, "--api-token", TOKEN, env=env))
    assert "cannot reach" in line and unreachable in line
    line = one_error_line(
        await capstan("auth", "--endpoint", "ftp://example.org", "--api-token", TOKEN, env=env)
    )
    assert "http://" in line
    # stdin is not a terminal: the token is not asked for
    line = one_error_line(await capstan("auth", "--endpoint", f"{stack.base_url}/api", env=env))
    assert "--api-token" in line
    assert not config.exists()
    line = one_error_line(await capstan("auth", "--status", "--logout", env=env))
    assert "one of" in line


async def test_options_and_env_win_over_the_stored_config_which_wins_over_the_data_dir(
    stack: Stack, tmp_path: Path
):
    env = home_env(tmp_path)
    run = await capstan("auth", "--endpoint", f"{stack.base_url}/api", "--api-token", TOKEN, env=env)
    assert run.code == 0, run.stderr

    # an env token beats the stored one
    assert "401" in one_error_line(await capstan("get", "project", env=env, token="wrong"))
    # an option token too
    assert "401" in one_error_line(await capstan("get", "project", "--token", "wrong", env=env))
    # an env URL beats the stored one, and the stored token is not sent to another URL
    unreachable = f"http://127.0.0.1:{free_port()}/api"
    line = one_error_line(await capstan("get", "project", env=env, api_url=unreachable, token=TOKEN))
    assert unreachable in line
    line = one_error_line(await capstan("get", "project", env=env, api_url=unreachable))
    assert "no API token" in line
    # a data dir token file (what `capstan up` writes) is only the fallback
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "api-token").write_text("not-the-token\n")
    assert stack.project in await project_names(env)
    # ...used with the stored URL once the config is gone
    assert (await capstan("auth", "--logout", env=env)).code == 0
    line = one_error_line(await capstan("get", "project", "--api-url", f"{stack.base_url}/api", env=env))
    assert "401" in line


async def test_status_with_a_revoked_or_broken_config_is_one_error_line(stack: Stack, tmp_path: Path):
    env = home_env(tmp_path)
    config = tmp_path / "xdg" / "capstan" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"api_url": f"{stack.base_url}/api", "token": "revoked"}))
    assert "401" in one_error_line(await capstan("auth", "--status", env=env))
    config.write_text("{not json")
    line = one_error_line(await capstan("get", "project", env=env))
    assert str(config) in line and "capstan auth" in line
    config.write_text(json.dumps({"api_url": f"{stack.base_url}/api"}))
    assert "no api_url and token" in one_error_line(await capstan("auth", "--status", env=env))
