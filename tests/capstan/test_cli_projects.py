"""``capstan create|delete project|service|secret`` and ``capstan add-resource``, as real processes.

Each command runs against a real gateway on a loopback port; what it did is checked through
the API, and failures are one ``error:`` line with exit code 1.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from capstan.secret_box import generate_secret_key
from tests.capstan.cli_runner import Run, cli_env, one_error_line, run_capstan
from tests.workflows.stack import TOKEN, Stack, running_stack

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: cli-projects}
spec:
  stages:
    - name: dev
      sequences: [{name: delivery, tasks: [{name: deployment}]}]
    - name: prod
      sequences: [{name: delivery, tasks: [{name: deployment}]}]
"""

pytestmark = pytest.mark.timeout(90)


@dataclass
class Cli:
    stack: Stack
    tmp: Path
    env: dict[str, str]

    async def run(self, *args: str, **more: str) -> Run:
        environ: dict[str, Any] = {**self.env, **more}  # Any: mypy cannot tell these from stdin/within
        return await run_capstan(*args, **environ)

    def file(self, name: str, content: str) -> Path:
        path = self.tmp / name
        path.write_text(content)
        return path

    async def get(self, path: str) -> Any:
        response = await self.stack.api.get(path)
        assert response.status_code == 200, response.text
        return response.json()


@pytest_asyncio.fixture
async def cli(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[Cli]:
    async with running_stack(
        db_url, pool, temporal_env.client, serve=True, secret_key=generate_secret_key()
    ) as running:
        assert running.base_url is not None
        yield Cli(running, tmp_path, cli_env(running.base_url, TOKEN, tmp_path))


async def test_create_get_and_delete_projects_and_services(cli: Cli):
    project = f"cli-{uuid.uuid4().hex[:8]}"
    shipyard = cli.file("shipyard.yaml", SHIPYARD)
    run = await cli.run(
        "create", "project", project, "--shipyard", str(shipyard),
        "--git-user", "me", "--git-token", "t", "--git-remote-url", "https://git.example/r.git",
    )  # fmt: skip
    assert run.code == 0, run.stderr
    assert f"project {project} created with stages dev, prod" in run.stdout
    assert run.stderr.startswith("warning: --git-user, --git-token, --git-remote-url ignored")
    assert (await cli.get(f"/api/controlPlane/v1/project/{project}"))["shipyard"] == SHIPYARD

    run = await cli.run("create", "service", "carts", "--project", project)
    assert run.code == 0 and "carts" in run.stdout and "dev, prod" in run.stdout, run.stderr

    one = (await cli.run("get", "project", project, "--output", "json")).json()
    assert one["projectName"] == project
    assert [(s["stageName"], [v["serviceName"] for v in s["services"]]) for s in one["stages"]] == [
        ("dev", ["carts"]),
        ("prod", ["carts"]),
    ]
    listed = (await cli.run("get", "project", "--output", "json")).json()
    assert project in [p["projectName"] for p in listed]
    text = await cli.run("get", "project")
    assert text.code == 0 and project in text.stdout and "dev, prod" in text.stdout and "carts" in text.stdout

    run = await cli.run("delete", "service", "carts", "--project", project)
    assert run.code == 0 and "carts" in run.stdout, run.stderr
    one = (await cli.run("get", "project", project, "--output", "json")).json()
    assert all(not s.get("services") for s in one["stages"])

    run = await cli.run("delete", "project", project)
    assert run.code == 0 and project in run.stdout, run.stderr
    assert (await cli.stack.api.get(f"/api/controlPlane/v1/project/{project}")).status_code == 404


async def test_project_and_service_errors_are_one_line(cli: Cli):
    project = f"cli-{uuid.uuid4().hex[:8]}"
    missing = cli.tmp / "missing.yaml"
    assert "not found" in one_error_line(
        await cli.run("create", "project", project, "--shipyard", str(missing))
    )
    bad = cli.file("bad.yaml", "apiVersion: spec.keptn.sh/0.2.4\nkind: Nope\n")
    assert "400" in one_error_line(await cli.run("create", "project", project, "--shipyard", str(bad)))
    empty = cli.file("empty.yaml", "  \n")
    assert "empty" in one_error_line(await cli.run("create", "project", project, "--shipyard", str(empty)))
    assert "nope" in one_error_line(await cli.run("create", "service", "carts", "--project", "nope"))
    assert "nope" in one_error_line(await cli.run("get", "project", "nope"))
    assert "nope" in one_error_line(await cli.run("delete", "project", "nope"))
    assert "404" in one_error_line(await cli.run("delete", "service", "carts", "--project", "nope"))
    shipyard = cli.file("shipyard.yaml", SHIPYARD)
    assert (await cli.run("create", "project", project, "--shipyard", str(shipyard))).code == 0
    assert "409" in one_error_line(await cli.run("create", "project", project, "--shipyard", str(shipyard)))
    assert (await cli.run("delete", "project", project)).code == 0


async def resource(cli: Cli, path: str) -> str:
    found = await cli.get(f"/api/resource-service/v1/project/{path}")
    return base64.b64decode(found["resourceContent"]).decode()


async def test_add_resource_at_project_stage_and_service_level(cli: Cli):
    stack = cli.stack
    await stack.create_project(stack.project, SHIPYARD, "carts")
    p = stack.project
    slo = cli.file("slo.yaml", "spec_version: '1.0'\n")

    run = await cli.run(
        "add-resource", "--project", p, "--resource", str(slo), "--resourceUri", "docs/readme.md"
    )
    assert run.code == 0 and f"resource docs/readme.md added to project {p}" in run.stdout, run.stderr
    assert await resource(cli, f"{p}/resource/docs%2Freadme.md") == "spec_version: '1.0'\n"

    run = await cli.run(
        "add-resource", "-p", p, "--stage", "prod", "--resource", str(slo), "--resource-uri", "x.yaml"
    )
    assert run.code == 0, run.stderr
    assert await resource(cli, f"{p}/stage/prod/resource/x.yaml") == "spec_version: '1.0'\n"

    # --resourceUri defaults to the file's name; service level in one stage
    run = await cli.run(
        "add-resource", "-p", p, "--stage", "dev", "--service", "carts", "--resource", str(slo)
    )
    assert run.code == 0 and "slo.yaml" in run.stdout, run.stderr
    assert await resource(cli, f"{p}/stage/dev/service/carts/resource/slo.yaml") == "spec_version: '1.0'\n"

    # --service without --stage: every stage with the service, as Keptn did
    other = cli.file("other.yaml", "v: 2\n")
    run = await cli.run(
        "add-resource", "-p", p, "--service", "carts", "--resource", str(other), "--resourceUri", "slo.yaml"
    )
    assert run.code == 0 and run.stdout.count("added") == 2, run.stderr
    for stage in ("dev", "prod"):
        assert await resource(cli, f"{p}/stage/{stage}/service/carts/resource/slo.yaml") == "v: 2\n"

    # stdin needs an explicit URI
    run = await cli.run("add-resource", "-p", p, "--resource", "-", "--resourceUri", "in.txt")
    assert run.code == 0, run.stderr
    assert "--resourceUri" in one_error_line(await cli.run("add-resource", "-p", p, "--resource", "-"))

    missing = str(cli.tmp / "missing.yaml")
    assert "not found" in one_error_line(await cli.run("add-resource", "-p", p, "--resource", missing))
    assert "nope" in one_error_line(await cli.run("add-resource", "-p", "nope", "--resource", str(slo)))
    line = one_error_line(
        await cli.run("add-resource", "-p", p, "--service", "orders", "--resource", str(slo))
    )
    assert "orders" in line


async def test_create_and_delete_secrets(cli: Cli):
    name = f"s-{uuid.uuid4().hex[:8]}"
    run = await cli.run(
        "create",
        "secret",
        name,
        "--from-literal",
        "user=me",
        "--from-literal",
        "password=a=b",
        "--scope",
        "keptn-webhook-service",
    )
    assert run.code == 0, run.stderr
    assert "password, user" in run.stdout and "a=b" not in run.stdout
    secrets = (await cli.get("/api/secrets/v1/secret"))["Secrets"]
    assert {"name": name, "scope": "keptn-webhook-service", "keys": ["password", "user"]} in secrets

    line = one_error_line(
        await cli.run("create", "secret", name, "--from-literal", "k=v", "--scope", "keptn-webhook-service")
    )
    assert "409" in line
    assert "key=value" in one_error_line(
        await cli.run("create", "secret", "other", "--from-literal", "novalue")
    )
    assert "400" in one_error_line(await cli.run("create", "secret", "Bad_Name", "--from-literal", "k=v"))

    run = await cli.run("delete", "secret", name, "--scope", "keptn-webhook-service")
    assert run.code == 0, run.stderr
    assert name not in [s["name"] for s in (await cli.get("/api/secrets/v1/secret"))["Secrets"]]
    assert "404" in one_error_line(await cli.run("delete", "secret", name))
