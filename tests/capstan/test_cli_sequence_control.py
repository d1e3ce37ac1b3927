"""``capstan pause|resume|abort sequence`` as processes against a real gateway and worker.

The shipyard's ``deployment`` task is answered by nobody, so the sequence stays running while
the commands act on it; its state is read back from the API's sequence view.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.capstan.cli_runner import Run, cli_env, one_error_line, run_capstan
from tests.workflows.stack import TOKEN, Stack, running_stack

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: cli-control}
spec:
  stages:
    - name: dev
      sequences: [{name: delivery, tasks: [{name: deployment}, {name: test}]}]
"""

UNKNOWN_CONTEXT = "0f1e2d3c-0000-4000-8000-000000000000"

pytestmark = pytest.mark.timeout(90)


@dataclass
class Cli:
    stack: Stack
    env: dict[str, str]

    async def run(self, *args: str, **more: str) -> Run:
        environ: dict[str, Any] = {**self.env, **more}  # Any: mypy cannot tell these from stdin/within
        return await run_capstan(*args, **environ)

    async def state(self, context: str) -> str:
        response = await self.stack.api.get(
            f"/api/controlPlane/v1/sequence/{self.stack.project}", params={"keptnContext": context}
        )
        assert response.status_code == 200, response.text
        states = response.json()["states"]
        assert len(states) == 1, states
        state: str = states[0]["state"]
        return state

    async def reaches(self, context: str, wanted: str, within: float = 15) -> None:
        deadline = time.monotonic() + within
        while (state := await self.state(context)) != wanted:
            assert time.monotonic() < deadline, f"sequence {context} is {state}, not {wanted}"
            await asyncio.sleep(0.05)


@pytest_asyncio.fixture
async def cli(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[Cli]:
    async with running_stack(db_url, pool, temporal_env.client, serve=True) as running:
        await running.create_project(running.project, SHIPYARD, "carts")
        assert running.base_url is not None
        env = cli_env(running.base_url, TOKEN, tmp_path)
        yield Cli(running, env)


async def test_pause_resume_and_abort_a_running_sequence(cli: Cli):
    stack, project = cli.stack, cli.stack.project
    context = await stack.trigger(project, "dev", "delivery", "carts")
    deployment = await stack.next_triggered("deployment", project=project)  # nobody answers it
    await cli.reaches(context, "started")

    run = await cli.run(
        "pause", "sequence", "--project", project, "--keptn-context", context, "--stage", "dev"
    )
    assert run.code == 0 and f"paused sequence {context}" in run.stdout, run.stderr
    # a pause holds the next task (the running one finishes): the state says paused once it is held
    await stack.answer(deployment)
    await cli.reaches(context, "paused")
    listed = await cli.run("get", "sequence", "-p", project, "--state", "paused", "-o", "json")
    assert [s["shkeptncontext"] for s in listed.json()] == [context]
    await asyncio.sleep(1)
    assert await stack.open_triggered("test", project=project) == []

    run = await cli.run("resume", "sequence", "-p", project, "--keptn-context", context, "--stage", "dev")
    assert run.code == 0 and "resumed" in run.stdout and "stage dev" in run.stdout, run.stderr
    test = await stack.next_triggered("test", project=project)
    assert test["shkeptncontext"] == context
    await cli.reaches(context, "started")

    run = await cli.run("abort", "sequence", "-p", project, "--keptn-context", context)
    assert run.code == 0 and "aborted" in run.stdout, run.stderr
    finished = await stack.finished(context, "dev", "delivery")
    assert finished["data"]["status"] == "aborted"
    await cli.reaches(context, "aborted")


async def test_control_errors_are_one_line(cli: Cli):
    project = cli.stack.project
    line = one_error_line(
        await cli.run("pause", "sequence", "-p", "nope", "--keptn-context", UNKNOWN_CONTEXT)
    )
    assert "nope" in line and "404" in line
    line = one_error_line(
        await cli.run("abort", "sequence", "-p", project, "--keptn-context", UNKNOWN_CONTEXT)
    )
    assert "404" in line
    line = one_error_line(
        await cli.run(
            "resume", "sequence", "-p", project, "--keptn-context", UNKNOWN_CONTEXT, CAPSTAN_API_TOKEN="x"
        )
    )
    assert "401" in line
    usage = await cli.run("pause", "sequence", "-p", project)
    assert usage.code == 2 and "--keptn-context" in usage.stderr
