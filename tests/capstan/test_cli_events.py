"""``capstan send event``, ``get event``, ``get sequence`` and ``configure monitoring`` as processes.

A real gateway on a loopback port and a worker: events go in through ``POST /api/v1/event`` and
are read back from the datastore and the sequence view.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from capstan.commands.get import event_result
from store.monitoring import get_sli_provider
from tests.capstan.cli_runner import Run, cli_env, one_error_line, run_capstan
from tests.fixtures.ports import free_port
from tests.workflows.stack import TOKEN, Stack, running_stack

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: cli-events}
spec:
  stages:
    - name: dev
      sequences: [{name: delivery, tasks: [{name: deployment}]}]
"""

pytestmark = pytest.mark.timeout(90)


@dataclass
class Cli:
    stack: Stack
    pool: asyncpg.Pool
    tmp: Path
    env: dict[str, str]

    async def run(self, *args: str, stdin: bytes | None = None, **more: str) -> Run:
        environ: dict[str, Any] = {**self.env, **more}  # Any: mypy cannot tell these from within
        return await run_capstan(*args, stdin=stdin, **environ)

    def file(self, name: str, content: str) -> Path:
        path = self.tmp / name
        path.write_text(content)
        return path


@pytest_asyncio.fixture
async def cli(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[Cli]:
    async with running_stack(db_url, pool, temporal_env.client, serve=True) as running:
        await running.create_project(running.project, SHIPYARD, "carts")
        assert running.base_url is not None
        env = cli_env(running.base_url, TOKEN, tmp_path)
        yield Cli(running, pool, tmp_path, env)


def trigger_event(project: str) -> dict[str, Any]:
    return {
        "type": "sh.keptn.event.dev.delivery.triggered",
        "specversion": "1.0",
        "source": "ci",
        "data": {"project": project, "stage": "dev", "service": "carts", "labels": {"build": "7"}},
    }


async def test_send_event_then_get_it_and_its_sequence(cli: Cli):
    project = cli.stack.project
    event_file = cli.file("event.json", json.dumps(trigger_event(project)))
    run = await cli.run("send", "event", "--file", str(event_file))
    assert run.code == 0, run.stderr
    context = run.stdout.strip()
    stored = await cli.stack.events(context, "sh.keptn.event.dev.delivery.triggered")
    assert [e["data"]["labels"] for e in stored] == [{"build": "7"}]

    # the short type is Keptn's: dev.delivery.triggered means sh.keptn.event.dev.delivery.triggered
    got = await cli.run(
        "get",
        "event",
        "dev.delivery.triggered",
        "--project",
        project,
        "--keptn-context",
        context,
        "-o",
        "json",
    )
    assert got.code == 0, got.stderr
    assert [(e["id"], e["shkeptncontext"]) for e in got.json()] == [(stored[0]["id"], context)]
    text = await cli.run(
        "get", "event", "sh.keptn.event.dev.delivery.triggered", "--project", project, "--stage", "dev"
    )
    assert text.code == 0 and context in text.stdout and stored[0]["id"] in text.stdout
    none = await cli.run("get", "event", "evaluation.finished", "--project", project, "--service", "carts")
    assert none.code == 0 and "no sh.keptn.event.evaluation.finished event" in none.stdout
    assert (await cli.run("get", "event", "evaluation.finished", "-p", project, "-o", "json")).json() == []

    # from stdin, as JSON output
    piped = await cli.run(
        "send", "event", "--file", "-", "-o", "json", stdin=json.dumps(trigger_event(project)).encode()
    )
    assert piped.code == 0, piped.stderr
    second = piped.json()["keptnContext"]
    assert second and second != context
    await cli.stack.next_triggered("deployment", project=project)  # the first holds the service

    # --num-of-events: newest first
    both = await cli.run(
        "get", "event", "dev.delivery.triggered", "-p", project, "--num-of-events", "5", "-o", "json"
    )
    assert [e["shkeptncontext"] for e in both.json()] == [second, context]

    states = (await cli.run("get", "sequence", "--project", project, "--output", "json")).json()
    assert {s["shkeptncontext"] for s in states} == {context, second}
    one = (await cli.run("get", "sequence", "-p", project, "--keptn-context", context, "-o", "json")).json()
    assert [(s["shkeptncontext"], s["name"], s["service"]) for s in one] == [(context, "delivery", "carts")]
    text = await cli.run("get", "sequence", "-p", project, "--keptn-context", context)
    assert text.code == 0 and context in text.stdout and "dev:" in text.stdout
    assert (await cli.run("get", "sequence", "-p", project, "--state", "finished", "-o", "json")).json() == []
    assert "no sequences" in (await cli.run("get", "sequence", "-p", project, "--state", "finished")).stdout


async def test_event_errors_are_one_line(cli: Cli):
    project = cli.stack.project
    missing = str(cli.tmp / "missing.json")
    assert "not found" in one_error_line(await cli.run("send", "event", "--file", missing))
    bad = cli.file("bad.json", "{not json")
    assert "not valid JSON" in one_error_line(await cli.run("send", "event", "--file", str(bad)))
    array = cli.file("array.json", "[]")
    assert "one JSON object" in one_error_line(await cli.run("send", "event", "--file", str(array)))
    unknown = cli.file(
        "unknown.json", json.dumps({"type": "sh.keptn.event.nope", "source": "ci", "data": {}})
    )
    assert "400" in one_error_line(await cli.run("send", "event", "--file", str(unknown)))
    other = trigger_event("nope")
    assert "nope" in one_error_line(
        await cli.run("send", "event", "-f", "-", stdin=json.dumps(other).encode())
    )

    assert "nope" in one_error_line(await cli.run("get", "event", "evaluation.finished", "--project", "nope"))
    assert "nope" in one_error_line(await cli.run("get", "sequence", "--project", "nope"))
    assert "400" in one_error_line(await cli.run("get", "sequence", "--project", project, "--state", "odd"))
    unreachable = f"http://127.0.0.1:{free_port()}/api"
    line = one_error_line(
        await cli.run("get", "event", "x.finished", "-p", project, CAPSTAN_API_URL=unreachable)
    )
    assert "cannot reach" in line
    assert "401" in one_error_line(await cli.run("get", "sequence", "-p", project, CAPSTAN_API_TOKEN="wrong"))


async def test_configure_monitoring_sets_the_projects_sli_provider(cli: Cli):
    project = cli.stack.project
    assert await get_sli_provider(cli.pool, project) is None
    run = await cli.run("configure", "monitoring", "prometheus", "--project", project, "--service", "carts")
    assert run.code == 0 and "prometheus" in run.stdout, run.stderr
    assert await get_sli_provider(cli.pool, project) == "prometheus"
    events = await cli.run("get", "event", "monitoring.configure", "-p", project, "-o", "json")
    assert [e["data"] for e in events.json()] == [
        {"type": "prometheus", "project": project, "service": "carts"}
    ]

    run = await cli.run("configure", "monitoring", "dynatrace", "-p", project, "-o", "json")
    assert run.code == 0 and run.json()["keptnContext"], run.stderr
    assert await get_sli_provider(cli.pool, project) == "dynatrace"

    assert "nope" in one_error_line(
        await cli.run("configure", "monitoring", "prometheus", "--project", "nope")
    )


def test_an_evaluation_shows_its_score_next_to_its_result():
    evaluation = {"data": {"result": "warning", "evaluation": {"score": 87.5, "result": "warning"}}}
    assert event_result(evaluation) == "warning (score 87.5)"
    assert event_result({"data": {"result": "pass"}}) == "pass"
    assert event_result({"data": {"evaluation": {"score": True}}}) == "-"
