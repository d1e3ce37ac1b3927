"""A fake control plane for the SDK tests: Keptn's uniform, pull and event APIs, in memory.

``FakeControlPlane.handle`` serves ``httpx.MockTransport``; ``FakeControlPlane.asgi_app()``
serves the same state over real HTTP (for integrations running in another process).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "sdk-test-token"
API = "http://control-plane.test/api"
PREFIX = "/api"


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    body: Any


# A scripted answer: an HTTP status (with an optional JSON body and headers) or an exception.
Scripted = int | tuple[int, dict[str, Any], dict[str, str]] | Exception


def triggered(
    task: str = "deployment",
    *,
    project: str = "sockshop",
    stage: str = "dev",
    service: str = "carts",
    event_id: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    """A task .triggered event as the control plane emits it."""
    return {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": "shipyard-controller",
        "type": f"sh.keptn.event.{task}.triggered",
        "time": "2024-01-02T03:04:05.000Z",
        "datacontenttype": "application/json",
        "shkeptncontext": "1b0d2b2b-8e0e-4c2a-9f3c-6f1f0d6f0a11",
        "gitcommitid": "c0ffee",
        "shkeptnspecversion": "0.2.4",
        "data": {"project": project, "stage": stage, "service": service, **data},
    }


@dataclass
class FakeControlPlane:
    integration_id: str = "integration-1"
    page_size: int = 2
    open_events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    subscriptions: list[dict[str, Any]] | None = None
    calls: list[Call] = field(default_factory=list)
    posted: list[dict[str, Any]] = field(default_factory=list)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    scripted: dict[str, list[Scripted]] = field(default_factory=dict)
    close_answered: bool = True
    posted_at: list[float] = field(default_factory=list)

    def script(self, route: str, *answers: Scripted) -> None:
        """Answer the next calls of a route ("event", "register", "ping", "triggered") like this."""
        self.scripted.setdefault(route, []).extend(answers)

    def add(self, *events: dict[str, Any]) -> None:
        for event in events:
            self.open_events.setdefault(event["type"], []).append(event)

    def posted_types(self) -> list[str]:
        return [event["type"] for event in self.posted]

    def calls_to(self, method: str, fragment: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and fragment in c.path]

    # -- routing ---------------------------------------------------------------------------

    def _route(self, method: str, path: str) -> str | None:
        if method == "POST" and path == "/v1/event":
            return "event"
        if method == "POST" and path == "/controlPlane/v1/uniform/registration":
            return "register"
        if method == "PUT" and path.startswith("/controlPlane/v1/uniform/registration/"):
            return "ping"
        if method == "GET" and path.startswith("/controlPlane/v1/event/triggered/"):
            return "triggered"
        return None

    def respond(self, method: str, path: str, params: dict[str, str], body: Any, token: str | None):
        """Return (status, json, headers), or raise a scripted exception."""
        self.calls.append(Call(method, path, params, body))
        if token != TOKEN:
            return 401, {"code": 401, "message": "invalid API token"}, {}
        route = self._route(method, path)
        if route is None:
            return 404, {"code": 404, "message": f"no route {method} {path}"}, {}
        queue = self.scripted.get(route)
        if queue:
            answer = queue.pop(0)
            if isinstance(answer, Exception):
                raise answer
            if isinstance(answer, int):
                return answer, {"code": answer, "message": f"scripted {answer}"}, {}
            if route == "event" and answer[0] < 300:
                self.posted.append(body)
            return answer
        return getattr(self, f"_{route}")(path, params, body)

    def _event(self, path: str, params: dict[str, str], body: Any):
        self.posted.append(body)
        self.posted_at.append(time.monotonic())
        if self.close_answered and body["type"].endswith(".finished"):
            for events in self.open_events.values():
                events[:] = [e for e in events if e["id"] != body.get("triggeredid")]
        return 200, {"keptnContext": body.get("shkeptncontext")}, {}

    def _register(self, path: str, params: dict[str, str], body: Any):
        self.registrations.append(body)
        if self.subscriptions is None:
            self.subscriptions = [
                {**sub, "id": f"sub-{index}"} for index, sub in enumerate(body.get("subscriptions", []))
            ]
        return 201, {"id": self.integration_id}, {}

    def _ping(self, path: str, params: dict[str, str], body: Any):
        integration_id = path.split("/")[-2]
        if integration_id != self.integration_id:
            return 404, {"code": 404, "message": "integration not found"}, {}
        registration = self.registrations[-1] if self.registrations else {}
        return 200, {**registration, "id": integration_id, "subscriptions": self.subscriptions or []}, {}

    def _triggered(self, path: str, params: dict[str, str], body: Any):
        event_type = path.rsplit("/", 1)[-1]
        events = [
            e
            for e in self.open_events.get(event_type, [])
            if all(
                e["data"].get(key) == params[key] for key in ("project", "stage", "service") if key in params
            )
        ]
        start = int(params.get("nextPageKey", "0"))
        page = events[start : start + self.page_size]
        next_key = start + self.page_size if start + self.page_size < len(events) else 0
        return (
            200,
            {"events": page, "nextPageKey": str(next_key), "pageSize": len(page), "totalCount": len(events)},
            {},
        )

    # -- transports ------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix(PREFIX)
        body = json.loads(request.content) if request.content else None
        status, payload, headers = self.respond(
            request.method, path, dict(request.url.params), body, request.headers.get("x-token")
        )
        return httpx.Response(status, json=payload, headers=headers)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def asgi_app(self) -> Starlette:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            path = request.url.path.removeprefix(PREFIX)
            try:
                status, payload, headers = self.respond(
                    request.method,
                    path,
                    dict(request.query_params),
                    json.loads(raw) if raw else None,
                    request.headers.get("x-token"),
                )
            except Exception as exc:  # a scripted failure: answer 503 over real HTTP
                return JSONResponse({"code": 503, "message": str(exc)}, status_code=503)
            return JSONResponse(payload, status_code=status, headers=headers)

        return Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST", "PUT", "DELETE"])])


STARTED = "sh.keptn.event.deployment.started"
FINISHED = "sh.keptn.event.deployment.finished"


def answers_to(cp: FakeControlPlane, event: dict[str, Any]) -> list[dict[str, Any]]:
    """The events posted in answer to ``event``, in order."""
    return [e for e in cp.posted if e.get("triggeredid") == event["id"]]


async def run_until_answered(
    integration: Any, cp: FakeControlPlane, *events: dict[str, Any], count: int = 2
) -> None:
    """Run the integration until every event got ``count`` answers."""
    async with integration.running():
        await wait_for(lambda: all(len(answers_to(cp, e)) >= count for e in events), "answers", within=5)


async def wait_for(predicate: Callable[[], bool], what: str = "condition", *, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
