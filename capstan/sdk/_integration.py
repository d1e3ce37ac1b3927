"""The :class:`Integration`: task handlers, registration, and pull or push delivery in one object.

Example::

    from capstan.sdk import Integration, TaskContext

    integration = Integration("helm-service", api_url="http://127.0.0.1:8080/api", token="…")

    @integration.task("deployment", projects=["sockshop"])
    async def deploy(ctx: TaskContext) -> dict[str, object]:
        return {"deployment": {"deploymentURIsLocal": [f"http://{ctx.service}.{ctx.stage}"]}}

    integration.run()
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Literal, TypeVar

import httpx

from keptn.errors import InvalidEventError
from keptn.event_types import EventKind, task_event_type

from ._client import Backoff, ControlPlaneClient
from ._context import TaskHandler
from ._dispatch import Dispatcher, TaskSpec
from ._pull import Poller
from ._push import PushServer, build_app
from ._registration import Registrar
from ._subscriptions import Subscription, SubscriptionBook

__all__ = ["Integration"]

_log = logging.getLogger("capstan.sdk")

DISTRIBUTOR_VERSION = "capstan-sdk"
H = TypeVar("H", bound=TaskHandler)


def _names(values: Sequence[str] | None, what: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str) or not all(isinstance(v, str) and v for v in values):
        raise TypeError(f"{what} must be a list of non-empty strings, got {values!r}")
    return tuple(values)


class Integration:
    """An execution-plane service that answers Keptn task events.

    Register one handler per task with :meth:`task`, then :meth:`run` (blocking, stops on
    SIGINT/SIGTERM) or ``async with integration.running(): …``. On start the integration
    registers with the control plane (retrying until it succeeds) and keeps a heartbeat; events
    arrive by polling (``mode="pull"``, a remote execution plane) or by HTTP POST from the
    control plane to ``public_url`` (``mode="push"``).

    Args:
        name: the integration's name, also the ``source`` of its events.
        api_url: the API's base URL, e.g. ``http://127.0.0.1:8080/api``. Default: the
            ``KEPTN_API_ENDPOINT`` environment variable.
        token: the API token. Default: the ``KEPTN_API_TOKEN`` environment variable.
        mode: ``pull`` (default) or ``push``.
        poll_interval: seconds between polls in pull mode. Default 1 s (Keptn's SDK).
        heartbeat_interval: seconds between heartbeats. Default 10 s.
        max_concurrency: handlers running at once. Default 10.
        shutdown_grace: seconds running handlers get to finish on shutdown. Default 30 s.
        host: push mode: the address to listen on. Default ``127.0.0.1``.
        port: push mode: the port to listen on; 0 picks one. Default 8080.
        public_url: push mode: the URL the control plane posts to. Default
            ``http://<host>:<port>/`` (the host name if ``host`` is a wildcard address).
        version: the integration's version, shown with its registration. Default ``0.0.0``.
        namespace: the registration's namespace (part of its identity). Default: the
            ``K8S_NAMESPACE`` environment variable, else ``default``.
        backoff: retries of sent events and registration. Default :class:`Backoff` ().
        timeout: seconds per HTTP request to the control plane. Default 10 s.
        transport: an httpx transport for the control plane calls (tests use
            ``httpx.MockTransport``).
    """

    def __init__(
        self,
        name: str,
        *,
        api_url: str | None = None,
        token: str | None = None,
        mode: Literal["pull", "push"] = "pull",
        poll_interval: float = 1.0,
        heartbeat_interval: float = 10.0,
        max_concurrency: int = 10,
        shutdown_grace: float = 30.0,
        host: str = "127.0.0.1",
        port: int = 8080,
        public_url: str | None = None,
        version: str = "0.0.0",
        namespace: str | None = None,
        backoff: Backoff | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not name:
            raise ValueError("an integration needs a name")
        if mode not in ("pull", "push"):
            raise ValueError(f"mode must be 'pull' or 'push', not {mode!r}")
        if poll_interval <= 0 or heartbeat_interval <= 0 or max_concurrency < 1 or shutdown_grace < 0:
            raise ValueError("intervals and max_concurrency must be positive, shutdown_grace >= 0")
        api_url = api_url or os.environ.get("KEPTN_API_ENDPOINT")
        token = token if token is not None else os.environ.get("KEPTN_API_TOKEN")
        if not api_url or not token:
            raise ValueError("api_url and token are required (or KEPTN_API_ENDPOINT and KEPTN_API_TOKEN)")
        self.name = name
        self.api_url = api_url
        self.mode = mode
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.max_concurrency = max_concurrency
        self.shutdown_grace = shutdown_grace
        self.host = host
        self.port = port
        self.version = version
        self.namespace = namespace or os.environ.get("K8S_NAMESPACE") or "default"
        self.backoff = backoff or Backoff()
        self._token = token
        self._timeout = timeout
        self._transport = transport
        self._public_url = public_url
        self._tasks: dict[str, TaskSpec] = {}
        self._book: SubscriptionBook | None = None
        self._registrar: Registrar | None = None
        self._dispatcher: Dispatcher | None = None
        self._stop: asyncio.Event | None = None

    def task(
        self,
        name: str,
        *,
        projects: Sequence[str] | None = None,
        stages: Sequence[str] | None = None,
        services: Sequence[str] | None = None,
        auto_response: bool = True,
    ) -> Callable[[H], H]:
        """Register the decorated ``async def handler(ctx)`` for ``sh.keptn.event.<name>.triggered``.

        Example::

            @integration.task("deployment", projects=["sockshop"], stages=["dev", "staging"])
            async def deploy(ctx: TaskContext) -> dict[str, Any]:
                return {"deployment": {"deploymentURIsLocal": ["http://carts.dev"]}}

        Args:
            name: the task name (no dots).
            projects: only events of these projects; None or empty means all.
            stages: only events of these stages; None or empty means all.
            services: only events of these services (needs ``stages`` too, as in Keptn).
            auto_response: send ``.started`` before and ``.finished`` after the handler
                (default); False leaves both to the handler (:meth:`TaskContext.send_started`).

        Returns:
            A decorator that registers the function and returns it unchanged.

        Raises:
            ValueError: bad task name, a second handler for the task, or services without stages.
            TypeError: the handler is not an ``async def`` function.
        """
        try:
            event_type = task_event_type(name, EventKind.TRIGGERED)
        except InvalidEventError as exc:
            raise ValueError(str(exc)) from None
        if name in self._tasks:
            raise ValueError(f"task {name!r} already has a handler")
        subscription = Subscription(
            event=event_type,
            projects=_names(projects, "projects"),
            stages=_names(stages, "stages"),
            services=_names(services, "services"),
        )
        if subscription.services and not subscription.stages:
            raise ValueError("a subscription that lists services must also list stages")

        def register(handler: H) -> H:
            function: object = handler  # a TypeGuard would narrow `handler` away from H
            if not inspect.iscoroutinefunction(function):
                raise TypeError(f"the handler of task {name!r} must be an async function")
            self._tasks[name] = TaskSpec(name, handler, auto_response, subscription)
            return handler

        return register

    @property
    def registration_id(self) -> str | None:
        """The id the control plane gave this integration; None until registered."""
        return self._registrar.integration_id if self._registrar else None

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """The subscriptions in force: declared ones, then the control plane's after a heartbeat."""
        if self._book is not None:
            return self._book.current
        return tuple(spec.subscription for spec in self._tasks.values())

    @property
    def public_url(self) -> str | None:
        """Push mode: the URL the control plane posts events to; None in pull mode."""
        if self.mode != "push":
            return None
        if self._public_url:
            return self._public_url
        wildcard = self.host in ("", "0.0.0.0", "::")
        return f"http://{socket.gethostname() if wildcard else self.host}:{self.port}/"

    async def wait_until_registered(self) -> str:
        """Wait for the registration (inside :meth:`running`); return the integration id."""
        if self._registrar is None:
            raise RuntimeError("the integration is not running")
        await self._registrar.registered.wait()
        assert self._registrar.integration_id is not None
        return self._registrar.integration_id

    def registration(self) -> dict[str, Any]:
        """The body of ``POST /controlPlane/v1/uniform/registration``."""
        kubernetes = {"namespace": self.namespace}
        for key, variable in (("podname", "K8S_POD_NAME"), ("deploymentname", "K8S_DEPLOYMENT_NAME")):
            if os.environ.get(variable):
                kubernetes[key] = os.environ[variable]
        url = self.public_url
        return {
            "name": self.name,
            "metadata": {
                "hostname": os.environ.get("K8S_NODE_NAME") or socket.gethostname(),
                "integrationversion": self.version,
                "distributorversion": DISTRIBUTOR_VERSION,
                "location": "control-plane" if self.mode == "push" else "remote-execution-plane",
                "kubernetesmetadata": kubernetes,
            },
            "subscriptions": [
                Subscription(
                    spec.subscription.event,
                    spec.subscription.projects,
                    spec.subscription.stages,
                    spec.subscription.services,
                    url=url,
                ).to_json()
                for spec in self._tasks.values()
            ],
        }

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Integration]:
        """Run the integration for the duration of an ``async with`` block.

        Registration, heartbeat and delivery run in the background. Leaving the block stops
        taking events, gives running handlers ``shutdown_grace`` seconds, then cancels them.

        Raises:
            RuntimeError: no handler is registered, or the integration is already running.
            OSError: push mode cannot listen on ``host:port``.
        """
        if not self._tasks:
            raise RuntimeError("register at least one task handler before starting")
        if self._dispatcher is not None:
            raise RuntimeError("the integration is already running")
        client = ControlPlaneClient(
            self.api_url, self._token, backoff=self.backoff, timeout=self._timeout, transport=self._transport
        )
        book = SubscriptionBook(spec.subscription for spec in self._tasks.values())
        dispatcher = Dispatcher(
            source=self.name,
            tasks=self._tasks,
            book=book,
            send=client.send_event,
            max_concurrency=self.max_concurrency,
        )
        registrar = Registrar(
            client, self.registration, book, heartbeat_interval=self.heartbeat_interval, backoff=self.backoff
        )
        self._book, self._dispatcher, self._registrar = book, dispatcher, registrar
        background: list[asyncio.Task[None]] = []
        server: PushServer | None = None
        try:
            if self.mode == "push":
                server = PushServer(
                    build_app(dispatcher, is_registered=registrar.registered.is_set),
                    host=self.host,
                    port=self.port,
                )
                await server.start()
                self.port = server.port
            else:
                poller = Poller(
                    client,
                    book,
                    dispatcher,
                    event_types={spec.subscription.event for spec in self._tasks.values()},
                    interval=self.poll_interval,
                )
                background.append(asyncio.create_task(poller.run(), name="capstan-sdk poller"))
            background.insert(0, asyncio.create_task(registrar.run(), name="capstan-sdk registration"))
            _log.info("%s started in %s mode against %s", self.name, self.mode, self.api_url)
            yield self
        finally:
            # Stop intake first, then let handlers finish (they need the client), then the rest.
            for task in background[1:]:
                task.cancel()
            if server is not None:
                await server.stop()
            await dispatcher.drain(self.shutdown_grace)
            for task in background[:1]:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await client.aclose()
            self._book = self._dispatcher = self._registrar = None
            _log.info("%s stopped", self.name)

    def stop(self) -> None:
        """Ask :meth:`serve` to return (as SIGTERM does); a second call cancels running handlers."""
        if self._stop is None:
            return
        if self._stop.is_set() and self._dispatcher is not None:
            self._dispatcher.cancel_all()
        self._stop.set()

    async def serve(self) -> None:
        """Run until SIGINT/SIGTERM or :meth:`stop`; a second signal cancels running handlers."""
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, self.stop)
        try:
            async with self.running():
                await self._stop.wait()
                _log.info("%s stopping", self.name)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            self._stop = None

    def run(self) -> None:
        """Run the integration until SIGINT/SIGTERM (blocking); logs to stderr if nothing else does."""
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll otherwise
        asyncio.run(self.serve())
