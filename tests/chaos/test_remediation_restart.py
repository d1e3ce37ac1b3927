"""SIGKILL the worker in the middle of a closed-loop remediation: the loop goes on where it was.

The remediation shipyard of ``tests/workflows/test_remediation.py`` (without ``triggeredAfter``,
to keep it fast) runs against a worker started as a real process (``python -m worker``) with the
built-in lighthouse, remediation service and ``web`` SLI provider enabled by default. The test
is the action provider: it pulls each ``action.triggered`` through the API and answers it. Right
after it answered the second action, the worker is killed (SIGKILL to its process group) and a
new one started; the service is "healed" just before the fifth action is answered, so the loop
ends with ``pass`` after five iterations: nothing skipped, nothing repeated, nothing stored twice.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from capstan.sdk._push import PushServer
from capstan.settings import Settings
from tests.chaos.harness import ROOT, TOKEN, WorkerProcesses, eventually, processes_with_env, report
from tests.fixtures.json_server import JSONServer
from tests.workflows.stack import terminate_open_workflows
from tests.workflows.test_remediation import PROBLEM, SLO, remediation_yaml
from workflows.context_models import ContextResult, context_workflow_id
from workflows.queue_lock_models import lock_workflow_id

pytestmark = [pytest.mark.slow, pytest.mark.timeout(110)]

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: self-healing-chaos}
spec:
  stages:
    - name: production
      sequences:
        - name: remediation
          triggeredOn:
            - event: production.remediation.finished
              selector: {match: {evaluation.result: fail}}
          tasks:
            - name: get-action
            - name: action
            - name: evaluation
              properties: {timeframe: 1m}
"""
ACTIONS = [f"action-{i}" for i in range(6)]
ITERATIONS = 5
"""The fifth action heals the service; the sixth is never asked for."""
KILL_AFTER = 2
"""The worker is killed right after this many actions were answered."""
ACTION_TRIGGERED = "sh.keptn.event.action.triggered"
REMEDIATION_FINISHED = "sh.keptn.event.production.remediation.finished"
POLL = 0.05


@dataclass
class Remediation:
    """The running stack, and every ``action.triggered`` the action provider saw."""

    api: httpx.AsyncClient
    pool: asyncpg.Pool
    client: Client
    project: str
    workers: WorkerProcesses
    web: JSONServer
    actions_seen: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    """Every ``action.triggered`` id seen in a pull: the (context, action) it carried, each time."""
    answered: list[dict[str, Any]] = field(default_factory=list)

    async def add_resource(self, uri: str, content: str) -> None:
        body = {
            "resources": [
                {"resourceURI": uri, "resourceContent": base64.b64encode(content.encode()).decode()}
            ]
        }
        response = await self.api.post(
            f"/resource-service/v1/project/{self.project}/stage/production/service/carts/resource", json=body
        )
        assert response.status_code == 201, response.text

    async def send(self, event: dict[str, Any]) -> dict[str, Any]:
        response = await self.api.post("/v1/event", json=event)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def problem(self) -> str:
        """A monitoring tool reports the problem: ``production.remediation.triggered``."""
        answer = await self.send(
            {
                "type": "sh.keptn.event.production.remediation.triggered",
                "source": "monitoring",
                "data": {
                    "project": self.project,
                    "stage": "production",
                    "service": "carts",
                    "problem": PROBLEM,
                },
            }
        )
        context: str = answer["keptnContext"]
        return context

    async def open_actions(self) -> list[dict[str, Any]]:
        response = await self.api.get(
            f"/controlPlane/v1/event/triggered/{ACTION_TRIGGERED}", params={"project": self.project}
        )
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        for event in events:
            self.actions_seen.setdefault(event["id"], set()).add(
                (event["shkeptncontext"], event["data"]["action"]["action"])
            )
        return events

    async def next_action(self, *, within: float) -> dict[str, Any]:
        """The next open ``action.triggered`` not answered yet."""
        answered = {event["id"] for event in self.answered}

        async def probe() -> dict[str, Any] | None:
            return next((e for e in await self.open_actions() if e["id"] not in answered), None)

        try:
            found: dict[str, Any] = await eventually(probe, "the next action.triggered", within=within)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.workers.logs()}") from None
        return found

    async def answer(self, triggered: dict[str, Any]) -> None:
        """Answer an action as its provider: ``action.started``, then ``action.finished``."""
        scope = {key: triggered["data"][key] for key in ("project", "stage", "service")}
        envelope = {
            "source": "action-provider",
            "triggeredid": triggered["id"],
            "shkeptncontext": triggered["shkeptncontext"],
        }
        await self.send({**envelope, "type": "sh.keptn.event.action.started", "data": scope})
        await self.send(
            {
                **envelope,
                "type": "sh.keptn.event.action.finished",
                "data": {**scope, "result": "pass", "status": "succeeded"},
            }
        )
        self.answered.append(triggered)

    async def stored(self, context: str) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.pool.fetch(
            "SELECT id, type, source, triggeredid, event FROM events WHERE shkeptncontext = $1 ORDER BY seq",
            context,
        )
        return rows

    async def in_flight(self, workflow_id: str) -> list[str]:
        """The workflow's pending activities, and its workflow task if one was started."""
        raw = (await self.client.get_workflow_handle(workflow_id).describe()).raw_description
        held = sorted(activity.activity_type.name for activity in raw.pending_activities)
        task = raw.pending_workflow_task
        if raw.HasField("pending_workflow_task") and task.HasField("started_time"):
            held.append(f"workflow task (attempt {task.attempt})")
        return held

    async def workflow_task_failures(self, workflow_id: str) -> list[str]:
        """Failed workflow tasks in every run of a workflow (e.g. nondeterminism on replay)."""
        failures = []
        async for run in self.client.list_workflows(f"WorkflowId = '{workflow_id}'"):
            handle = self.client.get_workflow_handle(workflow_id, run_id=run.run_id)
            failures += [
                event.workflow_task_failed_event_attributes.failure.message
                async for event in handle.fetch_history_events()
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
            ]
        return failures


async def create_project(api: httpx.AsyncClient, project: str) -> None:
    body = {"name": project, "shipyard": base64.b64encode(SHIPYARD.encode()).decode()}
    created = await api.post("/controlPlane/v1/project", json=body)
    assert created.status_code == 201, created.text
    service = await api.post(f"/controlPlane/v1/project/{project}/service", json={"serviceName": "carts"})
    assert service.status_code == 200, service.text


@pytest.fixture
async def remediation(
    db_url: str,
    pool: asyncpg.Pool,
    temporal_env: WorkflowEnvironment,
    json_server: JSONServer,
    tmp_path: Path,
) -> AsyncIterator[Remediation]:
    client = temporal_env.client
    address = client.service_client.config.target_host
    queue = f"chaos-{uuid.uuid4()}"
    project = f"chaos-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url=db_url, api_token=TOKEN, temporal_address=address, temporal_task_queue=queue
    )
    assert settings.lighthouse_enabled and settings.remediation_service_enabled, settings
    # no CAPSTAN_* of the test's environment: the built-in services run by their defaults
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSTAN_")}
    env.update(
        PYTHONPATH=str(ROOT),
        CAPSTAN_DATABASE_URL=db_url,
        CAPSTAN_TEMPORAL_ADDRESS=address,
        CAPSTAN_TEMPORAL_TASK_QUEUE=queue,
        CAPSTAN_API_TOKEN=TOKEN,
        CAPSTAN_DATA_DIR=str(tmp_path / "data"),
        CAPSTAN_LOG_FORMAT="json",
    )
    workers = WorkerProcesses(env, tmp_path)
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            gateway = PushServer(app, host="127.0.0.1", port=0)
            await gateway.start()
            try:
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{gateway.port}/api", headers={"x-token": TOKEN}, timeout=10
                ) as api:
                    await create_project(api, project)
                    running = Remediation(api, pool, client, project, workers, json_server)
                    await running.add_resource("slo.yaml", SLO)
                    sli = (
                        'spec_version: "1.0"\nindicators:\n'
                        f'  response_time_p95: {{url: "{json_server.url}", path: "$.p95"}}\n'
                    )
                    await running.add_resource("web/sli.yaml", sli)
                    await running.add_resource("remediation.yaml", remediation_yaml(*ACTIONS))
                    await running.send(
                        {
                            "type": "sh.keptn.event.monitoring.configure",
                            "source": "tests",
                            "data": {"project": project, "service": "carts", "type": "web"},
                        }
                    )
                    await workers.start()
                    try:
                        yield running
                    finally:
                        await terminate_open_workflows(client, queue)
                        await workers.stop()
            finally:
                # bounded: uvicorn waits for open connections, and a failed test may leave one
                await asyncio.wait_for(gateway.stop(), 10)
    finally:
        workers.kill_all()
        left = processes_with_env(queue)
        assert not left, f"processes left behind: {left}"


async def test_a_sigkilled_worker_does_not_break_a_remediation_loop(remediation: Remediation) -> None:
    stack, web = remediation, remediation.web
    web.document["p95"] = 900  # the problem: too slow for the SLO's <=500
    began = time.monotonic()
    context = await stack.problem()
    workflow_id = context_workflow_id(stack.project, context)
    iteration_times: list[float] = []
    killed = 0.0
    for i in range(ITERATIONS):
        asked = time.monotonic()
        action = await stack.next_action(within=30)
        iteration_times.append(time.monotonic() - asked)
        if i == KILL_AFTER:
            report(f"kill -> next action.triggered ({ACTIONS[i]}) {time.monotonic() - killed:.1f} s")
        assert action["shkeptncontext"] == context, action
        assert action["data"]["action"]["action"] == ACTIONS[i], action
        if i == ITERATIONS - 1:
            web.document["p95"] = 100  # this action heals the service: its evaluation passes
        await stack.answer(action)
        if i == KILL_AFTER - 1:
            killed = stack.workers.kill()
            held = await stack.in_flight(workflow_id)
            restart = await stack.workers.start()
            report(
                f"killed right after answering {ACTIONS[i]} (in flight on the dead worker: "
                f"{held or 'nothing'}); new worker polling after {restart:.1f} s"
            )

    handle = stack.client.get_workflow_handle(workflow_id, result_type=ContextResult)
    try:
        result = await asyncio.wait_for(handle.result(), 30)
    except TimeoutError:
        raise AssertionError(f"context {context} did not complete\n{stack.workers.logs()}") from None
    done = time.monotonic()
    report(
        f"remediation loop: {ITERATIONS} iterations in {done - began:.1f} s, kill -> loop completed "
        f"{done - killed:.1f} s; waits for each action.triggered: "
        + ", ".join(f"{t:.1f}" for t in iteration_times)
        + " s"
    )
    assert result.sequences_run == ITERATIONS

    # each action.triggered id was seen with one action only, and the actions came in order, once
    assert {tid: len(seen) for tid, seen in stack.actions_seen.items() if len(seen) > 1} == {}
    answered = [(a["id"], a["data"]["action"]["action"]) for a in stack.answered]
    assert [name for _, name in answered] == ACTIONS[:ITERATIONS]
    assert len({tid for tid, _ in answered}) == ITERATIONS
    assert set(stack.actions_seen) == {tid for tid, _ in answered}, stack.actions_seen
    assert await stack.open_actions() == []

    rows = await stack.stored(context)
    ids = Counter(row["id"] for row in rows)
    assert [i for i, n in ids.items() if n > 1] == [], "an event id stored twice"
    stored_actions = [
        (row["id"], row["event"]["data"]["action"]["action"])
        for row in rows
        if row["type"] == ACTION_TRIGGERED
    ]
    assert stored_actions == answered, stored_actions
    # nothing doubled under a new id either: every task .triggered got exactly one .started and
    # one .finished (the built-in services' answers included), and each sequence ran once
    types = Counter(row["type"] for row in rows)
    expected = Counter(
        {
            "sh.keptn.event.production.remediation.triggered": ITERATIONS,
            REMEDIATION_FINISHED: ITERATIONS,
        }
    )
    for task in ("get-action", "action", "evaluation", "get-sli"):
        for kind in ("triggered", "started", "finished"):
            expected[f"sh.keptn.event.{task}.{kind}"] = ITERATIONS
    assert types == expected, types
    triggered_ids = {row["id"] for row in rows if row["type"].endswith(".triggered")}
    answers = Counter(
        (row["triggeredid"], row["type"].rsplit(".", 1)[1])
        for row in rows
        if row["type"].endswith((".started", ".finished")) and "remediation" not in row["type"]
    )
    assert all(n == 1 for n in answers.values()), answers
    assert {tid for tid, _ in answers} <= triggered_ids

    finished = [row["event"]["data"] for row in rows if row["type"] == REMEDIATION_FINISHED]
    assert [f["result"] for f in finished] == ["fail"] * (ITERATIONS - 1) + ["pass"], finished
    get_action = [row for row in rows if row["type"] == "sh.keptn.event.get-action.finished"]
    assert {row["source"] for row in get_action} == {"remediation-service"}
    indexes = [row["event"]["data"]["get-action"]["actionIndex"] for row in get_action]
    assert indexes == list(range(1, ITERATIONS + 1)), indexes

    for workflow in (workflow_id, lock_workflow_id(stack.project, "production", "carts")):
        assert await stack.workflow_task_failures(workflow) == [], workflow
