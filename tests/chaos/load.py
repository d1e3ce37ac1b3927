"""The steady load of the fault suite: SDK integrations, a trigger driver, probes, a completion tracker.

* :class:`Integrations` — two real SDK integrations in the test process: ``chaos-puller`` (pull
  mode) answers ``deployment`` and ``release``, ``chaos-pusher`` (push mode) answers ``test``.
  Each handler records the ``.triggered`` id it was given per (context, task).
* :class:`Driver` — triggers ``dev.delivery`` steadily, round-robin over the services, and retries
  each trigger on a connection error or a 5xx with the same event id, as a client must.
* :class:`Prober` — reads the gateway's health and a few GET endpoints all the time.
* :class:`StatusLog` — every status code any of them got, with when (monotonic), by call.
* :class:`Tracker` — reads the store for finished sequences (tolerating a store that is down).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from capstan.sdk import Backoff, Integration, TaskContext

SEQUENCE = "sh.keptn.event.dev.delivery.triggered"
SEQUENCE_FINISHED = "sh.keptn.event.dev.delivery.finished"
TASKS = ("deployment", "test", "release")
SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: shipyard-chaos-faults}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}, {name: release}]
"""
CONNECTION_ERROR = 0
"""Recorded as the status of a call that got no HTTP answer."""
RETRY_DELAYS = (0.2, 0.4, 0.8, 1.0)
"""Seconds between a client's attempts (the last one repeats)."""


@dataclass(frozen=True)
class Call:
    """One HTTP answer (or its absence) someone in the test got."""

    at: float
    who: str
    call: str
    status: int
    detail: str = ""
    took: float = 0.0
    """Seconds from the request to its answer (or its failure)."""


@dataclass
class StatusLog:
    """Every answer of the gateway to anyone in the test process."""

    calls: list[Call] = field(default_factory=list)

    def add(self, who: str, call: str, status: int, detail: str = "", *, since: float | None = None) -> None:
        """Note an answer now, to a request sent at ``since`` (monotonic; default now)."""
        now = time.monotonic()
        self.calls.append(Call(now, who, call, status, detail, now - (since or now)))

    def between(self, start: float, end: float, *, answered: bool = False) -> dict[str, dict[str, int]]:
        """Status codes per call of the requests sent in ``[start, end]`` (and ``answered`` in it)."""
        found: dict[str, Counter[str]] = defaultdict(Counter)
        for call in self.calls:
            if start <= call.at - call.took <= end and (not answered or call.at <= end):
                found[call.call][str(call.status)] += 1
        return {name: dict(sorted(counts.items())) for name, counts in sorted(found.items())}

    def hung(self, start: float, end: float, *, by: float) -> list[Call]:
        """Requests sent in ``[start, end]`` that got no HTTP answer by ``by``."""
        return [
            c
            for c in self.calls
            if start <= c.at - c.took <= end and (c.at > by or c.status == CONNECTION_ERROR)
        ]

    def slowest(self, start: float, end: float) -> float:
        """The longest any call sent in ``[start, end]`` waited for its answer (or failure)."""
        return max((c.took for c in self.calls if start <= c.at - c.took <= end), default=0.0)

    def server_errors(self, status: int = 500) -> list[Call]:
        """Answers with this status (a 500 is a bug: dependencies down must give 503)."""
        return [call for call in self.calls if call.status == status]


def _label(request: httpx.Request) -> str:
    path = request.url.path
    if "/event/triggered/" in path:
        path = path.split("/event/triggered/")[0] + "/event/triggered/{type}"
    elif "/registration/" in path:
        path = path.split("/registration/")[0] + "/registration/{id}"
    return f"{request.method} {path}"


class RecordingTransport(httpx.AsyncBaseTransport):
    """An integration's real transport, noting each answer and each event the gateway accepted."""

    def __init__(self, who: str, log: StatusLog) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.who = who
        self.log = log
        self.accepted: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = time.monotonic()
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError as exc:
            self.log.add(self.who, _label(request), CONNECTION_ERROR, type(exc).__name__, since=sent)
            raise
        self.log.add(self.who, _label(request), response.status_code, since=sent)
        if (
            request.method == "POST"
            and request.url.path.endswith("/v1/event")
            and response.status_code == 200
        ):
            self.accepted.append(json.loads(request.content))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class Integrations:
    """The pull and the push integration, and what their handlers were given."""

    def __init__(self, api_url: str, token: str, project: str, log: StatusLog) -> None:
        self.seen: dict[tuple[str, str], list[str]] = defaultdict(list)
        """(context, task) -> the ``.triggered`` id of every handler run."""
        backoff = Backoff(initial=0.2, maximum=2.0, attempts=200)  # outlive any outage of the suite
        self.transports = [RecordingTransport("chaos-puller", log), RecordingTransport("chaos-pusher", log)]
        common: dict[str, Any] = {
            "api_url": api_url,
            "token": token,
            "heartbeat_interval": 2.0,
            "shutdown_grace": 2.0,
            "backoff": backoff,
        }
        self.puller = Integration(
            "chaos-puller", mode="pull", poll_interval=0.2, transport=self.transports[0], **common
        )
        self.pusher = Integration(
            "chaos-pusher", mode="push", host="127.0.0.1", port=0, transport=self.transports[1], **common
        )
        for task in ("deployment", "release"):
            self.puller.task(task, projects=[project])(self.handle)
        self.pusher.task("test", projects=[project])(self.handle)

    async def handle(self, ctx: TaskContext) -> dict[str, Any]:
        """Record the task, work a little, pass."""
        self.seen[(ctx.keptn_context, ctx.task)].append(ctx.triggered_id)
        await asyncio.sleep(0.05)
        return {ctx.task: {"by": "chaos"}}

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """Every event of theirs the gateway answered 200."""
        return [event for transport in self.transports for event in transport.accepted]

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Integrations]:
        """Run both (registered before the block's body starts)."""
        async with self.puller.running(), self.pusher.running():
            await asyncio.wait_for(self.puller.wait_until_registered(), 30)
            await asyncio.wait_for(self.pusher.wait_until_registered(), 30)
            yield self


async def create_project(api: httpx.AsyncClient, project: str, services: list[str]) -> None:
    """Create the project with the delivery shipyard and its services."""
    body = {"name": project, "shipyard": base64.b64encode(SHIPYARD.encode()).decode()}
    created = await api.post("/controlPlane/v1/project", json=body)
    assert created.status_code == 201, created.text
    for service in services:
        made = await api.post(f"/controlPlane/v1/project/{project}/service", json={"serviceName": service})
        assert made.status_code == 200, made.text


@dataclass
class Trigger:
    """One sequence trigger the driver sent, and when it was accepted and finished."""

    event: dict[str, Any]
    sent: float
    attempts: int = 0
    context: str = ""
    accepted: float | None = None
    finished: float | None = None


class Driver:
    """Triggers sequences steadily and retries each one until the gateway accepts it.

    Args:
        api: a client of the API (``x-token`` set).
        project: the project.
        services: triggered round-robin (each service's queue runs one sequence at a time).
        interval: seconds between triggers.
        max_backlog: no new trigger while this many accepted sequences are unfinished.
        log: where every answer is noted.
    """

    def __init__(
        self,
        api: httpx.AsyncClient,
        project: str,
        services: list[str],
        *,
        interval: float,
        max_backlog: int,
        log: StatusLog,
    ) -> None:
        self.api, self.project, self.services = api, project, services
        self.interval, self.max_backlog, self.log = interval, max_backlog, log
        self.triggers: list[Trigger] = []
        self.rejected: list[tuple[Trigger, int, str]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def backlog(self) -> int:
        """Sequences sent and not yet seen finished."""
        return sum(1 for trigger in self.triggers if trigger.finished is None)

    async def send(self, trigger: Trigger, *, deadline: float = 240.0) -> None:
        """POST the trigger until it is accepted (same id every time); a 4xx is final."""
        give_up = time.monotonic() + deadline
        while time.monotonic() < give_up:
            trigger.attempts += 1
            sent = time.monotonic()
            try:
                response = await self.api.post("/v1/event", json=trigger.event)
            except httpx.TransportError as exc:
                self.log.add("driver", "POST /api/v1/event", CONNECTION_ERROR, type(exc).__name__, since=sent)
            else:
                self.log.add(
                    "driver", "POST /api/v1/event", response.status_code, response.text[:200], since=sent
                )
                if response.status_code == 200:
                    trigger.context = response.json()["keptnContext"]
                    trigger.accepted = time.monotonic()
                    return
                if response.status_code < 500 and response.status_code != 429:
                    self.rejected.append((trigger, response.status_code, response.text))
                    return
            delay = RETRY_DELAYS[min(trigger.attempts - 1, len(RETRY_DELAYS) - 1)]
            await asyncio.sleep(delay)
        self.rejected.append((trigger, 0, f"not accepted within {deadline:.0f} s"))

    def launch(self) -> Trigger:
        """Trigger the next service now, whatever the backlog; the send retries in the background."""
        service = self.services[len(self.triggers) % len(self.services)]
        event = {
            "id": str(uuid.uuid4()),
            "type": SEQUENCE,
            "source": "chaos-driver",
            "data": {"project": self.project, "stage": "dev", "service": service},
        }
        trigger = Trigger(event, time.monotonic())
        self.triggers.append(trigger)
        task = asyncio.create_task(self.send(trigger))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return trigger

    async def run(self, stop: asyncio.Event) -> None:
        """Trigger every ``interval`` seconds until ``stop`` is set, then wait for pending sends."""
        while not stop.is_set():
            if self.backlog < self.max_backlog:
                self.launch()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
        while self._tasks:
            await asyncio.gather(*self._tasks)


class Prober:
    """Reads the health and a few GET endpoints every ``interval`` seconds, noting each answer."""

    def __init__(self, api: httpx.AsyncClient, project: str, log: StatusLog, interval: float = 0.25) -> None:
        self.api, self.project, self.log, self.interval = api, project, log, interval
        self.health: list[tuple[float, int, dict[str, Any]]] = []

    def _calls(self) -> list[tuple[str, str, dict[str, str]]]:
        p = self.project
        return [
            ("GET /api/health", "/health", {}),
            ("GET /api/controlPlane/v1/project/{p}", f"/controlPlane/v1/project/{p}", {}),
            ("GET /api/controlPlane/v1/sequence/{p}", f"/controlPlane/v1/sequence/{p}", {"pageSize": "1"}),
            ("GET /api/mongodb-datastore/event", "/mongodb-datastore/event", {"project": p, "pageSize": "1"}),
        ]

    async def run(self, stop: asyncio.Event) -> None:
        """Probe until ``stop`` is set."""
        while not stop.is_set():
            for label, path, params in self._calls():
                sent = time.monotonic()
                try:
                    response = await self.api.get(path, params=params)
                except httpx.TransportError as exc:
                    self.log.add("prober", label, CONNECTION_ERROR, type(exc).__name__, since=sent)
                    continue
                self.log.add("prober", label, response.status_code, response.text[:200], since=sent)
                if path == "/health":
                    with contextlib.suppress(ValueError):
                        self.health.append((time.monotonic(), response.status_code, response.json()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)


class Tracker:
    """Marks the driver's triggers finished when the store has their ``dev.delivery.finished``."""

    def __init__(self, driver: Driver, database_url: str) -> None:
        self.driver, self.database_url = driver, database_url

    async def poll_once(self) -> None:
        """One look at the store; a store that is down is simply asked again later."""
        waiting = {t.context: t for t in self.driver.triggers if t.context and t.finished is None}
        if not waiting:
            return
        try:
            conn = await asyncio.wait_for(asyncpg.connect(self.database_url), 3)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return
        try:
            rows = await conn.fetch(
                "SELECT shkeptncontext FROM events WHERE type = $1 AND shkeptncontext = ANY($2::text[])",
                SEQUENCE_FINISHED,
                list(waiting),
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return
        finally:
            with contextlib.suppress(Exception):
                await conn.close()
        now = time.monotonic()
        for row in rows:
            waiting[row["shkeptncontext"]].finished = now

    async def run(self, stop: asyncio.Event, interval: float = 0.5) -> None:
        """Poll until ``stop`` is set."""
        while not stop.is_set():
            await self.poll_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def drain(self, stall: float, within: float = 1800.0) -> bool:
        """Wait for every accepted trigger to finish; True if they did.

        A backlog left by the faults may take long to work off on a busy machine; what must not
        happen is a standstill. So this gives up only when no sequence finished for ``stall``
        seconds (or after ``within`` in all).
        """
        deadline = time.monotonic() + within
        last_progress, done = time.monotonic(), -1
        while time.monotonic() < deadline and time.monotonic() - last_progress < stall:
            await self.poll_once()
            finished = sum(1 for t in self.driver.triggers if t.finished is not None)
            if finished != done:
                last_progress, done = time.monotonic(), finished
            if all(t.finished is not None for t in self.driver.triggers if t.context):
                return True
            await asyncio.sleep(0.5)
        return False
