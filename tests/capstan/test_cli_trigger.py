"""``capstan trigger`` as a real process against a real gateway, worker and built-in lighthouse.

The test plays the integrations through the public API: the deployment service answers
``deployment.triggered`` and an external SLI provider (``my-sli``, configured with
``monitoring.configure``) answers lighthouse's ``get-sli.triggered``.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.capstan.cli_runner import CAPSTAN, Run, one_error_line, run_capstan
from tests.workflows.stack import TOKEN, Stack, running_stack

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: trigger-cli}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks:
            - name: deployment
            - name: evaluation
              properties: {timeframe: 2m}
    - name: staging
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}]
"""

SLO = """spec_version: "1.0"
comparison: {compare_with: single_result, include_result_with_score: pass, aggregate_function: avg}
objectives:
  - sli: error_rate
    pass: [{criteria: ["<5"]}]
    key_sli: true
  - sli: response_time_p95
    pass: [{criteria: ["<600"]}]
    warning: [{criteria: ["<=800"]}]
total_score: {pass: "90%", warning: "75%"}
"""

PROVIDER = "my-sli"
IMAGE = "docker.io/keptnexamples/carts"


@pytest_asyncio.fixture
async def stack(db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    async with running_stack(
        db_url, pool, temporal_env.client, serve=True, builtin=True, get_sli_timeout=timedelta(seconds=20)
    ) as running:
        await running.create_project(running.project, SHIPYARD, "carts")
        await running.add_resource("dev", "carts", "slo.yaml", SLO)
        configured = await running.send(
            {
                "type": "sh.keptn.event.monitoring.configure",
                "source": "tests",
                "data": {"project": running.project, "service": "carts", "type": PROVIDER},
            }
        )
        assert configured.status_code == 200, configured.text
        yield running


async def capstan(stack: Stack, *args: str, within: float = 40) -> Run:
    return await run_capstan("trigger", *args, api_url=f"{stack.base_url}/api", token=TOKEN, within=within)


async def answer_sli(stack: Stack, error_rate: float, response_time: float) -> dict[str, Any]:
    """Answer lighthouse's get-sli.triggered as the external SLI provider."""
    triggered = await stack.next_triggered("get-sli", project=stack.project)
    window = triggered["data"]["get-sli"]
    values = {"error_rate": error_rate, "response_time_p95": response_time}
    indicators = [{"metric": m, "value": v, "success": True, "message": ""} for m, v in values.items()]
    data: dict[str, Any] = {
        "get-sli": {"start": window["start"], "end": window["end"], "indicatorValues": indicators}
    }
    await stack.answer(triggered, source=PROVIDER, **data)
    return triggered


async def test_delivery_watch_follows_both_stages_and_passes(stack: Stack):
    project = stack.project
    watching = asyncio.create_task(
        capstan(stack, "delivery", "--project", project, "--service", "carts", "--image", IMAGE,
                "--tag", "0.13.1", "--labels", "buildId=42,owner=team-a", "--watch")
    )  # fmt: skip
    deployment = await stack.next_triggered("deployment", project=project, stage="dev")
    assert deployment["data"]["configurationChange"]["values"]["image"] == f"{IMAGE}:0.13.1"
    assert deployment["data"]["labels"] == {"buildId": "42", "owner": "team-a"}
    [trigger] = await stack.events(deployment["shkeptncontext"], "sh.keptn.event.dev.delivery.triggered")
    assert trigger["source"] == "capstan-cli"  # no --stage: the shipyard's first stage
    await stack.answer(deployment, source="helm-service")
    await answer_sli(stack, error_rate=1, response_time=700)  # warning on one SLI, still a pass (score 75 %)
    staging = await stack.next_triggered("deployment", project=project, stage="staging")
    await asyncio.sleep(1.5)  # the watch must still be running while staging is open
    assert not watching.done()
    await stack.answer(staging, source="helm-service")

    run = await watching
    context = deployment["shkeptncontext"]
    assert run.code == 0, (run.stdout, run.stderr)
    assert run.stderr == ""
    out = run.stdout
    assert out.startswith(f"Started sequence delivery in {project}/dev for carts, keptnContext {context}\n")
    assert "dev delivery / deployment: finished pass" in out
    assert "dev delivery / evaluation: finished warning" in out
    # one line per change: staging was seen open (the test held it 1.5 s), then finished
    assert "staging delivery: started\n" in out and "staging delivery / deployment: triggered\n" in out
    assert "staging delivery / deployment: finished pass" in out
    assert "staging delivery: finished pass" in out
    assert "staging delivery  finished pass" in out  # the tree, once at the end off a terminal
    assert "evaluation in dev: score 75, result warning" in out
    assert "    warning: response_time_p95 = 700 (violated: <600)" in out
    assert out.rstrip().endswith(f"sequence delivery finished: result warning (keptnContext {context})")


async def test_failing_evaluation_exits_1_and_names_the_slis(stack: Stack):
    project = stack.project
    watching = asyncio.create_task(
        capstan(stack, "evaluation", "--project", project, "--stage", "dev", "--service", "carts",
                "--timeframe", "5m", "--labels", "run=7", "--watch")
    )  # fmt: skip
    get_sli = await answer_sli(stack, error_rate=9, response_time=300)
    assert get_sli["data"]["labels"] == {"run": "7"}
    run = await watching
    assert run.code == 1, (run.stdout, run.stderr)
    context = get_sli["shkeptncontext"]
    assert f"Started sequence evaluation in {project}/dev for carts, keptnContext {context}" in run.stdout
    assert "evaluation in dev: score 50, result fail" in run.stdout
    assert "    fail: error_rate = 9 (violated: <5)" in run.stdout
    assert "response_time_p95 =" not in run.stdout  # passed: not listed
    assert run.stdout.rstrip().endswith(f"sequence evaluation finished: result fail (keptnContext {context})")

    # --output json with --watch: one document, no live lines
    watching = asyncio.create_task(
        capstan(stack, "evaluation", "--project", project, "--stage", "dev", "--service", "carts",
                "--watch", "--output", "json")
    )  # fmt: skip
    get_sli = await answer_sli(stack, error_rate=1, response_time=100)
    run = await watching
    assert run.code == 0, (run.stdout, run.stderr)
    document = run.json()
    assert document["keptnContext"] == get_sli["shkeptncontext"]
    assert (document["state"], document["result"], document["sequence"]) == ("finished", "pass", "evaluation")
    [stage] = document["stages"]
    assert (stage["stage"], stage["sequence"], stage["state"], stage["result"]) == (
        "dev",
        "evaluation",
        "finished",
        "pass",
    )
    assert [(t["name"], t["state"]) for t in stage["tasks"]] == [
        ("evaluation", "finished"),
        ("get-sli", "finished"),
    ]
    assert document["evaluations"] == [
        {"stage": "dev", "source": "lighthouse-service", "result": "pass", "score": 100, "failingSLIs": []}
    ]


async def test_watch_time_expires_with_one_error_line(stack: Stack):
    project = stack.project
    run = await capstan(
        stack, "delivery", "--project", project, "--service", "carts", "--image", f"{IMAGE}:1",
        "--watch", "--watch-time", "2",
    )  # fmt: skip
    line = one_error_line(run)
    assert line.startswith("error: --watch-time 2s expired before sequence delivery ended (keptnContext ")
    assert "dev delivery / deployment: triggered" in run.stdout  # what was seen until then


async def test_json_without_watch_stage_and_sequence_and_errors(stack: Stack, tmp_path: Path):
    project = stack.project
    values = tmp_path / "values.yaml"
    values.write_text("replicaCount: 2\nimage: ignored\nresources: {limits: {cpu: 1}}\n")
    run = await capstan(
        stack, "delivery", "--project", project, "--service", "carts", "--image", IMAGE,
        "--stage", "staging", "--values", str(values), "--output", "json",
    )  # fmt: skip
    assert run.code == 0, run.stderr
    started = run.json()
    assert started == {
        "keptnContext": started["keptnContext"],
        "project": project,
        "stage": "staging",
        "service": "carts",
        "sequence": "delivery",
    }
    [trigger] = await stack.events(started["keptnContext"], "sh.keptn.event.staging.delivery.triggered")
    assert trigger["data"]["configurationChange"] == {
        "values": {"replicaCount": 2, "image": f"{IMAGE}:latest", "resources": {"limits": {"cpu": 1}}}
    }
    values.write_text("- a list\n")
    not_a_mapping = await capstan(
        stack,
        "delivery",
        "--project",
        project,
        "--service",
        "carts",
        "--image",
        IMAGE,
        "--values",
        str(values),
    )
    assert one_error_line(not_a_mapping) == f"error: --values {values} must hold a YAML mapping"

    run = await capstan(
        stack, "sequence", "delivery", "--project", project, "--service", "carts", "--stage", "dev"
    )
    assert run.code == 0, run.stderr
    context = run.stdout.strip().rsplit(" ", 1)[-1]
    assert (
        run.stdout.strip() == f"Started sequence delivery in {project}/dev for carts, keptnContext {context}"
    )
    [trigger] = await stack.events(context, "sh.keptn.event.dev.delivery.triggered")
    assert "labels" not in trigger["data"] and "configurationChange" not in trigger["data"]

    unknown = await capstan(
        stack, "delivery", "--project", "no-such-project", "--service", "carts", "--image", IMAGE
    )
    line = one_error_line(unknown)
    assert "no-such-project" in line and "(HTTP 404)" in line
    no_stage = await capstan(
        stack, "sequence", "delivery", "--project", project, "--service", "carts", "--stage", "prod"
    )
    assert (
        one_error_line(no_stage)
        == f"error: could not start sequence delivery: no stage prod in project {project}"
    )
    no_service = await capstan(
        stack, "delivery", "--project", project, "--service", "orders", "--image", IMAGE
    )
    assert "service orders not found" in one_error_line(no_service)
    bad_window = await capstan(
        stack, "evaluation", "--project", project, "--stage", "dev", "--service", "carts",
        "--timeframe", "5m", "--end", "2024-05-01T10:00:00",
    )  # fmt: skip
    assert "(HTTP 400)" in one_error_line(bad_window)


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


async def test_on_a_terminal_the_tree_is_live(stack: Stack):
    primary, secondary = os.openpty()
    environ = {key: value for key, value in os.environ.items() if not key.startswith("CAPSTAN_")}
    environ.update(
        CAPSTAN_API_URL=f"{stack.base_url}/api", CAPSTAN_API_TOKEN=TOKEN, COLUMNS="160", TERM="xterm"
    )
    args = (
        "trigger",
        "evaluation",
        "--project",
        stack.project,
        "--stage",
        "dev",
        "--service",
        "carts",
        "--watch",
    )
    try:
        proc = await asyncio.create_subprocess_exec(
            CAPSTAN, *args, stdin=asyncio.subprocess.DEVNULL, stdout=secondary,
            stderr=asyncio.subprocess.PIPE, env=environ,
        )  # fmt: skip
        os.close(secondary)
        reading = asyncio.get_running_loop().run_in_executor(None, _read_all, primary)
        await answer_sli(stack, error_rate=1, response_time=100)
        code = await asyncio.wait_for(proc.wait(), 30)
        shown = (await asyncio.wait_for(reading, 10)).decode()
    finally:
        os.close(primary)
    assert proc.stderr is not None
    assert code == 0, (shown, await proc.stderr.read())
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)
    assert "dev evaluation  finished pass" in plain  # the last frame of the live tree
    assert "get-sli (lighthouse-service)  finished pass" in plain
    assert "keptnContext" not in plain.split("evaluation in dev")[0].split("\n", 1)[1]  # no log lines
    assert "evaluation in dev: score 100, result pass" in plain
