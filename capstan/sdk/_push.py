"""Push mode: an HTTP endpoint the control plane POSTs ``.triggered`` CloudEvents to.

The endpoint takes one event per request, in any mode the CloudEvents HTTP binding defines:
structured (``application/cloudevents+json``), binary (``ce-*`` headers, JSON body = ``data``)
or Keptn's plain JSON body. It answers ``202 Accepted`` at once and handles the event in the
background; an id seen before is accepted again without running the handler twice. A body that
is not an event gets ``400`` with Keptn's error body. ``GET /health`` answers 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import unquote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ._dispatch import Dispatcher, Outcome

__all__ = ["PushServer", "build_app"]

_log = logging.getLogger("capstan.sdk")

MAX_BODY_BYTES = 4 * 1024 * 1024


class _BadEvent(ValueError):
    pass


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"code": status, "message": message}, status_code=status)


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _BadEvent(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _BadEvent(f"{what} must be a JSON object")
    return value


async def _read_event(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise _BadEvent(f"event larger than {MAX_BODY_BYTES} bytes")
    if "ce-specversion" in request.headers:
        event: dict[str, Any] = {
            name[3:]: unquote(value) for name, value in request.headers.items() if name.startswith("ce-")
        }
        event["data"] = _json_object(body, "data")
    else:
        event = _json_object(body, "body")
    for attribute in ("id", "type"):
        if not isinstance(event.get(attribute), str) or not event[attribute]:
            raise _BadEvent(f"CloudEvent attribute '{attribute}' is required and must be a non-empty string")
    return event


def build_app(dispatcher: Dispatcher, *, is_registered: Callable[[], bool]) -> Starlette:
    """Build the ASGI app that receives events for ``dispatcher``.

    Args:
        dispatcher: takes each received event.
        is_registered: tells ``GET /health`` whether the integration is registered.

    Returns:
        A Starlette app: ``POST`` on any path receives an event, ``GET /health`` reports.
    """

    async def receive(request: Request) -> JSONResponse:
        try:
            event = await _read_event(request)
        except _BadEvent as exc:
            return _error(400, str(exc))
        outcome = dispatcher.offer(event, wait=True)
        if outcome is not Outcome.IGNORED:
            _log.debug("received %s %s: %s", event["type"], event["id"], outcome.value)
        return JSONResponse({"id": event["id"], "outcome": outcome.value}, status_code=202)

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "registered": is_registered(), "running": dispatcher.in_flight})

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/{path:path}", receive, methods=["POST"]),
        ]
    )


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The integration owns SIGINT/SIGTERM: it stops intake, then drains its handlers.
        yield


class PushServer:
    """Serves an ASGI app with uvicorn on a socket bound before start, inside the running loop.

    Args:
        app: the ASGI app.
        host: the address to bind.
        port: the port to bind; 0 picks a free one (see :attr:`port`).
    """

    def __init__(self, app: Starlette, *, host: str, port: int) -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        if self._socket is None:
            raise RuntimeError("the server is not started")
        port: int = self._socket.getsockname()[1]
        return port

    async def start(self) -> None:
        """Bind the socket and start serving.

        Raises:
            OSError: the address cannot be bound (e.g. the port is in use).
        """
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._requested_port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        # log_config=None: leave the host application's logging configuration alone.
        config = uvicorn.Config(
            self._app, lifespan="off", log_config=None, log_level="warning", access_log=False
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="capstan-sdk push server")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the push server stopped while starting")
            await asyncio.sleep(0.01)
        _log.info("receiving events on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        """Stop accepting requests and close the socket."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await self._task
        if self._socket is not None:
            self._socket.close()
        self._server = self._task = None
