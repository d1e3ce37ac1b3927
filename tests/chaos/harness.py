"""Harness of the worker-kill test: worker processes, a recording push proxy, the stack."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from capstan.sdk import TaskContext

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "chaos-token"
TASKS = ("deployment", "test", "release")
SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: shipyard-chaos}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}, {name: release}]
"""
SEQUENCE_FINISHED = "sh.keptn.event.dev.delivery.finished"
POLL = 0.05


def report(text: str) -> None:
    print(f"\n[chaos] {text}", flush=True)  # noqa: T201


async def eventually(probe: Callable[[], Awaitable[Any]], what: str, *, within: float) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if found := await probe():
            return found
        await asyncio.sleep(POLL)
    raise AssertionError(f"timed out after {within} s waiting for {what}")


@dataclass
class Hold:
    """Holds one step (a handler, a push response) until the test releases it."""

    reached: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)


class Holds:
    """One-shot holds by name; teardown releases every hold ever made, reached or not."""

    def __init__(self) -> None:
        self._armed: dict[str, Hold] = {}
        self._made: list[Hold] = []

    def arm(self, name: str) -> Hold:
        hold = self._armed[name] = Hold()
        self._made.append(hold)
        return hold

    async def checkpoint(self, name: str) -> None:
        """Wait here if a hold is armed for ``name`` (the first one to come uses it up)."""
        if hold := self._armed.pop(name, None):
            hold.reached.set()
            await hold.released.wait()

    def release_all(self) -> None:
        for hold in self._made:
            hold.released.set()


class WorkerProcesses:
    """``python -m worker`` processes, each in a process group of its own, one at a time."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []

    @property
    def current(self) -> subprocess.Popen[bytes] | None:
        proc = self.started[-1] if self.started else None
        return proc if proc is not None and proc.poll() is None else None

    async def start(self) -> float:
        """Start a worker and wait until it polls; return how long that took."""
        assert self.current is None, "a worker is still running"
        began = time.monotonic()
        log = self.log_dir / f"worker-{len(self.started) + 1}.log"
        proc = self._spawn(log)
        self.started.append(proc)

        async def polling() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"worker exited with {proc.returncode}:\n{self.logs()}")
            return b'"worker started"' in log.read_bytes()

        await eventually(polling, "the worker to start", within=30)
        return time.monotonic() - began

    def _spawn(self, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "worker"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killpg reaches anything it spawns
            )

    def kill(self) -> float:
        """SIGKILL the running worker's process group; return when (monotonic)."""
        proc = self.current
        assert proc is not None, "no worker is running"
        os.killpg(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        proc.wait()
        return killed

    async def stop(self) -> None:
        """SIGTERM the running worker (a graceful stop), SIGKILL it if it does not exit."""
        proc = self.current
        if proc is None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def kill_all(self) -> None:
        """Leave nothing behind, whatever happened: kill every group we started."""
        for proc in self.started:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    def logs(self) -> str:
        return "".join(
            f"\n--- {log.name} (tail) ---\n" + "".join(log.read_text(errors="replace").splitlines(True)[-20:])
            for log in sorted(self.log_dir.glob("worker-*.log"))
        )


def processes_with_env(marker: str) -> list[str]:
    """Live processes whose environment contains ``marker`` (the test's unique task queue)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if state != "Z" and marker.encode() in environ:
            found.append(entry.name)
    return found


@dataclass(frozen=True)
class Delivery:
    type: str
    id: str
    context: str
    at: float
    """When it arrived (monotonic)."""


class PushProxy:
    """Sits between the worker's push activity and the integration.

    Records every delivery attempt, and can hold the response to one (after the event was passed
    on), so that the worker is killed with that push activity still running.
    """

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.target = ""
        self.deliveries: list[Delivery] = []
        self.holds = Holds()

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        event = json.loads(body)
        self.deliveries.append(
            Delivery(event["type"], event["id"], event["shkeptncontext"], time.monotonic())
        )
        answer = await self.http.post(
            self.target, content=body, headers={"content-type": request.headers["content-type"]}
        )
        await self.holds.checkpoint(event["type"])
        return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self.receive, methods=["POST"])])


class Answerer:
    """The integration's task handler: records each call, and can hold one task."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        """(task, triggered id, keptn context) of every handler run."""
        self.holds = Holds()

    async def handle(self, ctx: TaskContext) -> dict[str, Any]:
        self.calls.append((ctx.task, ctx.triggered_id, ctx.keptn_context))
        await self.holds.checkpoint(ctx.task)
        return {ctx.task: {"by": "chaos"}}


class RecordingTransport(httpx.AsyncBaseTransport):
    """The integration's real HTTP transport, noting every event the gateway accepted."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.accepted: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if (
            request.method == "POST"
            and request.url.path.endswith("/v1/event")
            and response.status_code == 200
        ):
            self.accepted.append(json.loads(request.content))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Chaos:
    """The running stack and what the test observed."""

    api: httpx.AsyncClient
    pool: asyncpg.Pool
    client: Client
    project: str
    workers: WorkerProcesses
    proxy: PushProxy
    answerer: Answerer
    sent: RecordingTransport
    triggers: list[dict[str, Any]] = field(default_factory=list)

    async def trigger(self) -> str:
        """Trigger dev.delivery for the test's service; return the Keptn context."""
        event = {
            "id": str(uuid.uuid4()),
            "type": "sh.keptn.event.dev.delivery.triggered",
            "source": "chaos",
            "data": {"project": self.project, "stage": "dev", "service": "carts"},
        }
        response = await self.api.post("/v1/event", json=event)
        assert response.status_code == 200, response.text
        context: str = response.json()["keptnContext"]
        self.triggers.append({**event, "shkeptncontext": context})
        return context

    async def stored(self, context: str) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.pool.fetch(
            "SELECT id, type, triggeredid, event FROM events WHERE shkeptncontext = $1 ORDER BY seq", context
        )
        return rows

    async def finished(self, context: str, *, within: float) -> float:
        """Wait for the sequence's ``.finished`` in the store; return when it was seen (monotonic)."""

        async def probe() -> bool:
            return any(row["type"] == SEQUENCE_FINISHED for row in await self.stored(context))

        try:
            await eventually(probe, f"{SEQUENCE_FINISHED} of {context}", within=within)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.workers.logs()}") from None
        return time.monotonic()

    async def settled(self, workflow_id: str, *running: str) -> None:
        """Wait until exactly these activities of a workflow run, and no workflow task.

        A kill then lands at a known point: what the dead worker held is exactly ``running``,
        and the workflow itself waits (on a signal or on those activities).
        """
        handle = self.client.get_workflow_handle(workflow_id)

        async def probe() -> bool:
            raw = (await handle.describe()).raw_description
            activities = sorted(activity.activity_type.name for activity in raw.pending_activities)
            return activities == sorted(running) and not raw.HasField("pending_workflow_task")

        await eventually(probe, f"{workflow_id} to run just {running or 'nothing'}", within=10)

    async def assert_replayed_cleanly(self, workflow_id: str) -> None:
        """No workflow task of the workflow failed: each new worker replayed its history as is.

        A nondeterminism error fails workflow tasks until the code matches the history again,
        which a sequence could survive by luck; the history keeps the first such failure.
        """
        failures = [
            event.workflow_task_failed_event_attributes.failure.message
            async for event in self.client.get_workflow_handle(workflow_id).fetch_history_events()
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        ]
        assert not failures, f"workflow tasks of {workflow_id} failed: {failures}"

    async def assert_delivered_once(self, context: str) -> None:
        """The sequence passed, each task was triggered once, handled once, and stored once."""
        rows = await self.stored(context)
        ids = Counter(row["id"] for row in rows)
        assert max(ids.values()) == 1, f"an event id stored twice: {ids}"
        types = Counter(row["type"] for row in rows)
        expected = ["sh.keptn.event.dev.delivery.triggered", SEQUENCE_FINISHED] + [
            f"sh.keptn.event.{task}.{kind}" for task in TASKS for kind in ("triggered", "started", "finished")
        ]
        assert types == Counter(expected), f"events of {context}: {types}"
        finished = next(row["event"] for row in rows if row["type"] == SEQUENCE_FINISHED)
        assert (finished["data"]["result"], finished["data"]["status"]) == ("pass", "succeeded"), finished
        triggered = {
            row["type"].split(".")[3]: row["id"] for row in rows if row["type"].endswith(".triggered")
        }
        for row in rows:
            kind = row["type"].split(".")
            if kind[3] in TASKS and kind[4] in ("started", "finished"):
                assert row["triggeredid"] == triggered[kind[3]], row
        # the integration ran each task exactly once, for the one stored .triggered id
        calls = sorted((task, tid) for task, tid, ctx in self.answerer.calls if ctx == context)
        assert calls == sorted((task, triggered[task]) for task in TASKS), calls
        # pushes may be repeated (at least once), but always with the same id, and a stored one
        pushed: dict[str, set[str]] = {}
        for delivery in self.proxy.deliveries:
            if delivery.context == context:
                pushed.setdefault(delivery.type, set()).add(delivery.id)
        for event_type, pushed_ids in pushed.items():
            assert len(pushed_ids) == 1, f"{event_type} delivered with different ids: {pushed_ids}"
            assert pushed_ids <= set(ids), f"{event_type} delivered but not stored: {pushed_ids}"
        for task in TASKS:
            assert pushed[f"sh.keptn.event.{task}.triggered"] == {triggered[task]}
        # every event the gateway accepted (the trigger, each answer) is stored exactly once
        # (an SDK retry of an answer reuses its id, so the accepted events are counted by id)
        accepted = {
            e["id"]: e for e in [*self.triggers, *self.sent.accepted] if e.get("shkeptncontext") == context
        }
        assert len(accepted) == 1 + 2 * len(TASKS), accepted
        assert all(ids[event_id] == 1 for event_id in accepted), (accepted, ids)
