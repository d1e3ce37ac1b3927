"""``capstan up``: start PostgreSQL, Temporal, the worker and the gateway; stop them all again.

Start-up order and health signals:

1. the embedded PostgreSQL (unless ``CAPSTAN_DATABASE_URL``) and the Temporal dev server (unless
   ``CAPSTAN_TEMPORAL_ADDRESS``) start side by side, since neither needs the other. PostgreSQL is
   ready when ``pg_ctl start -w`` returns and the ``capstan`` database exists; Temporal when a
   client can describe the namespace.
2. the worker and the gateway then start side by side. The worker is ready when Temporal lists a
   poller with the worker's pid on the task queue; the gateway when ``GET /api/health`` answers 200
   (it checks PostgreSQL and Temporal itself).

Stopping (SIGINT, SIGTERM, SIGHUP, or a child dying) goes the other way: gateway, worker, Temporal
(each SIGTERM, then SIGKILL after a timeout), then ``pg_ctl stop``.


If ``capstan up`` itself is SIGKILLed, its children get SIGTERM from the kernel (see
:mod:`capstan.process`). PostgreSQL is not its child (``pg_ctl`` detaches it), so a small guard
process, which is a child, stops it in that case.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import IO, TypeVar

import httpx
from pydantic import SecretStr
from rich.console import Console
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

from capstan.devserver import DB_FILE_NAME, dev_server_argv, port_claims
from capstan.ports import check_ports_free
from capstan.process import ChildDiedError, ChildProcess
from capstan.secret_box import prepare_secret_key
from capstan.settings import Settings, resolve_api_token
from capstan.temporal import connect_temporal, task_queue_pollers
from keptn.errors import KeptnError
from store.embedded import EmbeddedPostgres, EmbeddedPostgresError

READY_TIMEOUT_S = 60.0
"""How long each component may take to become healthy before ``capstan up`` gives up."""
STOP_TIMEOUTS_S = {"gateway": 10.0, "worker": 20.0, "temporal": 15.0}
"""How long each child may take to exit after SIGTERM before it is SIGKILLed."""

_POLL_S = 0.05
_T = TypeVar("_T")


class SupervisorError(KeptnError):
    """``capstan up`` cannot start or keep running the control plane."""


class _Interrupted(Exception):
    """A stop was requested while starting."""


async def _all_or_none(*awaitables: Awaitable[None]) -> None:
    # Like gather, but the first failure cancels the others instead of leaving them polling
    # children that are about to be stopped.
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if (error := task.exception()) is not None:
            raise error


def _local_host(host: str) -> str:
    # A wildcard bind address is reachable (and printable) through loopback.
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


class Supervisor:
    """Starts, watches and stops the processes of one ``capstan up``.

    Args:
        settings: the resolved settings (``CAPSTAN_*`` and ``capstan up`` options).
        console: where progress and addresses are printed.
    """

    def __init__(self, settings: Settings, *, console: Console) -> None:
        data_dir = settings.data_dir.expanduser().resolve()
        self.settings = settings.model_copy(update={"data_dir": data_dir})
        self.console = console
        self.logs_dir = data_dir / "logs"
        self.children: list[ChildProcess] = []
        self.stop_requested = asyncio.Event()
        self._postgres: EmbeddedPostgres | None = None
        self._postgres_start: asyncio.Future[str] | None = None
        self._postgres_guard: ChildProcess | None = None
        self._client: Client | None = None
        self._lock_file: IO[str] | None = None
        self._child_settings = self.settings

    # ---- start ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start everything and wait until it is healthy, then print the addresses.

        Raises:
            SupervisorError, PortInUseError, ChildDiedError: start-up failed; call
                :meth:`shutdown` to stop what was started.
        """
        began = time.monotonic()
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_data_dir()
        check_ports_free(port_claims(settings))
        cold = not (settings.data_dir / "postgres").exists() and not self._temporal_db.exists()
        token = resolve_api_token(settings, create=True)
        secret_key = prepare_secret_key(settings)

        temporal: ChildProcess | None = None
        if settings.database_url is None:
            self._postgres = EmbeddedPostgres(settings.data_dir)
            self._postgres_start = asyncio.ensure_future(asyncio.to_thread(self._postgres.start))
        if settings.temporal_address is None:
            temporal = self._spawn("temporal", dev_server_argv(settings))
        database_url = await self._postgres_url()
        self._child_settings = settings.model_copy(
            update={"database_url": SecretStr(database_url), "temporal_address": settings.temporal_target}
        )
        self._client = await self._wait_temporal(temporal)

        env = self._child_env(token, secret_key)
        worker = self._spawn("worker", [sys.executable, "-m", "worker"], env=env)
        gateway = self._spawn("gateway", [sys.executable, "-m", "api"], env=env)
        await _all_or_none(self._wait_worker(worker), self._wait_gateway(gateway))
        self._print_ready(time.monotonic() - began, cold=cold)

    @property
    def _temporal_db(self) -> Path:
        return self.settings.data_dir / DB_FILE_NAME

    def _lock_data_dir(self) -> None:
        # A second `capstan up` on the same data dir would share the PostgreSQL and fight over the
        # SQLite file; flock is released by the kernel however this process ends.
        path = self.settings.data_dir / "capstan.lock"
        lock = path.open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "another process"
            lock.close()
            raise SupervisorError(
                f"data dir {self.settings.data_dir} is in use by another `capstan up` (pid {owner})"
            ) from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock_file = lock

    async def _postgres_url(self) -> str:
        if self._postgres_start is None:
            configured = self.settings.database_url
            assert configured is not None  # no embedded server is started only when a URL is configured
            return configured.get_secret_value()
        try:
            url = await self._until_stopped(self._postgres_start)
        except EmbeddedPostgresError as exc:
            raise SupervisorError(str(exc)) from exc
        assert self._postgres is not None
        self._postgres_guard = ChildProcess.spawn(
            "postgres-guard", self._postgres.guard_argv(), env=self._python_env(), log_dir=self.logs_dir
        )
        self.console.print(f"  postgres  ready ({self.settings.data_dir / 'postgres'})")
        return url

    def _python_env(self) -> dict[str, str]:
        # The children import our packages; make that work from any working directory.
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        return env

    def _child_env(self, token: str, secret_key: str) -> dict[str, str]:
        s = self._child_settings
        env = self._python_env()
        assert s.database_url is not None
        env.update(
            CAPSTAN_DATA_DIR=str(s.data_dir),
            CAPSTAN_API_HOST=s.api_host,
            CAPSTAN_API_PORT=str(s.api_port),
            CAPSTAN_API_TOKEN=token,
            CAPSTAN_SECRET_KEY=secret_key,
            CAPSTAN_TEMPORAL_ADDRESS=s.temporal_target,
            CAPSTAN_TEMPORAL_NAMESPACE=s.temporal_namespace,
            CAPSTAN_TEMPORAL_TASK_QUEUE=s.temporal_task_queue,
            CAPSTAN_DATABASE_URL=s.database_url.get_secret_value(),
            CAPSTAN_LOG_LEVEL=s.log_level,
            CAPSTAN_LOG_FORMAT=s.log_format,
        )
        return env

    def _spawn(self, name: str, argv: list[str], *, env: dict[str, str] | None = None) -> ChildProcess:
        child = ChildProcess.spawn(name, argv, env=env or dict(os.environ), log_dir=self.logs_dir)
        self.children.append(child)
        return child

    async def _until_stopped(self, awaitable: Awaitable[_T]) -> _T:
        task = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self.stop_requested.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not task.done():
            raise _Interrupted
        return task.result()

    async def _poll(self, what: str, hint: str, check: Callable[[], Awaitable[bool]]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not await check():
            if self.stop_requested.is_set():
                raise _Interrupted
            for child in self.children:
                child.raise_if_dead()
            if time.monotonic() > deadline:
                raise SupervisorError(f"{what} did not become ready within {READY_TIMEOUT_S:.0f} s; {hint}")
            await asyncio.sleep(_POLL_S)

    async def _wait_temporal(self, temporal: ChildProcess | None) -> Client:
        target = self.settings.temporal_target
        host, _, port = target.rpartition(":")
        hint = f"see {temporal.log_file}" if temporal else f"is CAPSTAN_TEMPORAL_ADDRESS={target} right?"
        client: Client | None = None

        async def ready() -> bool:
            nonlocal client
            try:
                if client is None:
                    # A bare TCP connect first: cheap, and it fails fast while the port is closed.
                    _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 1)
                    writer.close()
                    client = await asyncio.wait_for(connect_temporal(self._child_settings), 5)
                namespace = DescribeNamespaceRequest(namespace=self.settings.temporal_namespace)
                await client.workflow_service.describe_namespace(namespace, timeout=timedelta(seconds=2))
                return True
            except (OSError, TimeoutError, RuntimeError, RPCError):
                return False

        await self._poll("Temporal", hint, ready)
        assert client is not None
        where = "dev server" if temporal else "external"
        self.console.print(f"  temporal  ready ({where}, {target})")
        return client

    async def _wait_worker(self, worker: ChildProcess) -> None:
        assert self._client is not None
        client, s = self._client, self.settings

        async def polling() -> bool:
            # A poller with our child's pid is this worker, not one left over from an earlier run.
            try:
                pollers = await task_queue_pollers(client, s.temporal_namespace, s.temporal_task_queue)
            except RPCError:
                return False
            return any(identity.startswith(f"{worker.pid}@") for identity in pollers)

        await self._poll("the worker", f"see {worker.log_file}", polling)
        self.console.print(f"  worker    ready (polling task queue {s.temporal_task_queue!r})")

    async def _wait_gateway(self, gateway: ChildProcess) -> None:
        url = f"{self.api_url}/health"
        async with httpx.AsyncClient(timeout=2.0) as http:

            async def healthy() -> bool:
                try:
                    return (await http.get(url)).status_code == 200
                except httpx.HTTPError:
                    return False

            await self._poll("the gateway", f"see {gateway.log_file}", healthy)
        self.console.print(f"  gateway   ready ({url})")

    @property
    def api_url(self) -> str:
        """Base URL of the Keptn API, e.g. ``http://127.0.0.1:8080/api``."""
        host = _local_host(self.settings.api_host)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.settings.api_port}/api"

    def _print_ready(self, seconds: float, *, cold: bool) -> None:
        s = self.settings
        kind = "cold start" if cold else "warm start"
        token = "CAPSTAN_API_TOKEN" if s.api_token is not None else str(s.token_file)
        bridge = self.api_url.removesuffix("api")
        rows = [("Bridge", bridge), ("API", self.api_url), ("API token", token)]
        if s.temporal_address is None or s.temporal_ui_url is not None:
            rows.append(("Temporal UI", s.temporal_ui_base))
        rows.append(("Temporal", f"{s.temporal_target} (namespace {s.temporal_namespace})"))
        database = str(s.data_dir / "postgres") if s.database_url is None else "CAPSTAN_DATABASE_URL"
        rows += [("PostgreSQL", database), ("Data dir", str(s.data_dir)), ("Logs", str(self.logs_dir))]
        self.console.print(f"Capstan is up ({kind} in {seconds:.1f} s). Press Ctrl-C to stop.")
        for label, value in rows:
            self.console.print(f"  {label:<12} {value}")

    # ---- run and stop -----------------------------------------------------------------------

    async def watch(self) -> None:
        """Return when a stop is requested; raise :class:`ChildDiedError` if a child dies first."""
        while not self.stop_requested.is_set():
            for child in self.children:
                child.raise_if_dead()
            if self._postgres_guard is not None:
                self._postgres_guard.raise_if_dead()
            if self._postgres is not None and not self._postgres.is_running():
                raise ChildDiedError("postgres", self._postgres.log_file, None)
            try:
                await asyncio.wait_for(self.stop_requested.wait(), 0.5)
            except TimeoutError:
                pass

    @property
    def started_anything(self) -> bool:
        """Whether there is anything to stop."""
        return bool(self.children) or self._postgres is not None

    async def shutdown(self) -> None:
        """Stop everything this supervisor started, newest first; PostgreSQL last."""
        for child in reversed(self.children):
            if child.alive():
                self.console.print(f"  stopping {child.name}")
            await child.stop(STOP_TIMEOUTS_S.get(child.name, 10.0))
        self.children.clear()
        self._client = None
        if self._postgres is not None:
            if self._postgres_start is not None:
                # A start still running in its thread must finish before the server can be stopped.
                await asyncio.gather(self._postgres_start, return_exceptions=True)
            self.console.print("  stopping postgres")
            await asyncio.to_thread(self._postgres.stop)
            self._postgres = None
        if self._postgres_guard is not None:
            await self._postgres_guard.stop(5.0)  # it finds the server stopped and just exits
            self._postgres_guard = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


async def run_up(settings: Settings, *, console: Console, err_console: Console) -> int:
    """Run ``capstan up`` until SIGINT/SIGTERM/SIGHUP or until a child dies.

    Args:
        settings: the resolved settings.
        console: where progress and addresses are printed.
        err_console: where the one-line error is printed.

    Returns:
        The process exit code: 0 after a requested stop, 1 when start-up failed or a child died.
    """
    supervisor = Supervisor(settings, console=console)
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for sig in signals:
        loop.add_signal_handler(sig, supervisor.stop_requested.set)
    code = 0
    try:
        await supervisor.start()
        await supervisor.watch()
    except _Interrupted:
        pass
    except KeptnError as exc:
        err_console.print(f"error: {exc}", style="bold red", highlight=False, markup=False)
        code = 1
    finally:
        if supervisor.started_anything:
            console.print("Stopping Capstan")
        await supervisor.shutdown()
        for sig in signals:
            loop.remove_signal_handler(sig)
    if code == 0 and supervisor.stop_requested.is_set():
        console.print("Capstan stopped")
    return code
