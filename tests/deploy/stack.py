"""Capstan on "external" services, scaled out: what the deployment tests run.

:class:`DeployStack` starts what an operator runs instead of ``capstan up``:

* a Temporal dev server started separately (its own SQLite file, free ports, headless), with a
  non-default namespace created by ``--namespace`` and **no** search attributes: the workers must
  register them;
* the machine's own PostgreSQL service (``CAPSTAN_DEPLOY_POSTGRES_URL``, default
  ``postgresql://postgres@127.0.0.1:5432/postgres``), in a database created for the run and
  dropped afterwards;
* two workers and two gateways (``python -m worker`` / ``python -m api``), separate processes
  configured only by ``CAPSTAN_*`` variables, on one task queue.

Clients reach the gateways through :class:`Balancer`, a round-robin load balancer in the test
process that moves a request to the next gateway when one refuses connections (as compose's or
Kubernetes' service routing would).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx

from capstan.devserver import TEMPORAL_HTTP_PORT_OFFSET, TEMPORAL_METRICS_PORT_OFFSET, temporal_cli
from tests.chaos.faults import Managed, StackProcessError, _until, free_port
from tests.fixtures.database import with_database

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "deploy-token"
POSTGRES_ENV = "CAPSTAN_DEPLOY_POSTGRES_URL"
POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_server() -> str:
    """The URL of the machine's PostgreSQL service (maintenance database)."""
    return os.environ.get(POSTGRES_ENV, POSTGRES_DEFAULT)


async def postgres_reachable() -> bool:
    """Whether the machine's PostgreSQL service answers (the tests skip without it)."""
    try:
        conn = await asyncio.wait_for(asyncpg.connect(postgres_server()), 5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # fields[11], fields[12]: utime, stime (the 14th and 15th of proc(5), counted after the name)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Balancer(httpx.AsyncBaseTransport):
    """Round-robin over the gateways; a refused connection moves the request to the next one."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.inner = httpx.AsyncHTTPTransport()
        self.served: Counter[int] = Counter()
        """Requests answered, by gateway port."""
        self._next = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for _ in range(len(self.ports)):
            port = self.ports[self._next % len(self.ports)]
            self._next += 1
            request.url = request.url.copy_with(host="127.0.0.1", port=port)
            try:
                response = await self.inner.handle_async_request(request)
            except httpx.ConnectError:
                continue  # that gateway is down (restarting): nothing was sent, try the next
            self.served[port] += 1
            return response
        raise httpx.ConnectError("no gateway accepts connections", request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class DeployStack:
    """A separately started Temporal, a database on the machine's PostgreSQL, 2 workers, 2 gateways."""

    def __init__(self, data_dir: Path, code: Path | None = None) -> None:
        self.data_dir = data_dir
        self.code = code
        """Where the workers and gateways are imported from at their next start (None: this checkout)."""
        self.log_dir = data_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.namespace = f"capstan-deploy-{uuid.uuid4().hex[:6]}"
        self.task_queue = f"deploy-{uuid.uuid4().hex}"
        self.database = f"capstan_deploy_{uuid.uuid4().hex[:10]}"
        self.database_url = with_database(postgres_server(), self.database)
        port = free_port(TEMPORAL_HTTP_PORT_OFFSET, TEMPORAL_METRICS_PORT_OFFSET)
        self.temporal_target = f"127.0.0.1:{port}"
        argv = [
            temporal_cli(), "server", "start-dev", "--headless",
            "--ip", "127.0.0.1", "--port", str(port),
            "--http-port", str(port + TEMPORAL_HTTP_PORT_OFFSET),
            "--metrics-port", str(port + TEMPORAL_METRICS_PORT_OFFSET),
            "--db-filename", str(data_dir / "temporal.db"),
            "--namespace", self.namespace,
            "--log-level", "warn",
        ]  # fmt: skip
        self.temporal = Managed("temporal", argv, dict(os.environ), self.log_dir)
        self.gateway_ports = [free_port(), free_port()]
        self.workers = [
            Managed(f"worker-{n}", [sys.executable, "-m", "worker"], {}, self.log_dir) for n in "ab"
        ]
        self.gateways = [
            Managed(f"gateway-{n}", [sys.executable, "-m", "api"], {}, self.log_dir) for n in "ab"
        ]

    def api_url(self, port: int | None = None) -> str:
        """A gateway's API base URL (the first gateway's by default)."""
        return f"http://127.0.0.1:{port or self.gateway_ports[0]}/api"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a worker or gateway: every setting explicit, nothing defaulted."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSTAN_")}
        env.update(
            PYTHONPATH=str(ROOT),
            CAPSTAN_DATA_DIR=str(self.data_dir / "capstan"),
            CAPSTAN_DATABASE_URL=self.database_url,
            CAPSTAN_TEMPORAL_ADDRESS=self.temporal_target,
            CAPSTAN_TEMPORAL_NAMESPACE=self.namespace,
            CAPSTAN_TEMPORAL_TASK_QUEUE=self.task_queue,
            CAPSTAN_API_TOKEN=TOKEN,
            CAPSTAN_API_HOST="127.0.0.1",
            CAPSTAN_LOG_FORMAT="json",
            CAPSTAN_LOG_LEVEL="info",
            **extra,
        )
        return env

    async def create_database(self) -> None:
        """Create the run's database on the machine's PostgreSQL."""
        admin = await asyncpg.connect(postgres_server())
        try:
            await admin.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await admin.close()

    async def drop_database(self) -> None:
        """Drop the run's database (the processes are stopped by then)."""
        admin = await asyncpg.connect(postgres_server())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            await admin.close()

    async def start_temporal(self) -> None:
        """Start the dev server; return when an RPC on the run's namespace works."""
        from temporalio.client import Client

        self.temporal.spawn()

        async def serving() -> bool:
            try:
                client = await asyncio.wait_for(
                    Client.connect(self.temporal_target, namespace=self.namespace), 3
                )
                return await asyncio.wait_for(client.service_client.check_health(), 3)
            except Exception:  # refused or still starting
                return False

        await _until(serving, "the Temporal dev server", self.temporal)

    def _prepare(self, proc: Managed, module: str, **extra: str) -> None:
        proc.env = self.env(**extra)
        proc.argv = [sys.executable, "-m", module]
        if self.code is not None:
            # -P: the working directory (this checkout) is not put first on sys.path, so the
            # modules come from PYTHONPATH, the other tree
            proc.env["PYTHONPATH"] = str(self.code)
            proc.argv.insert(1, "-P")

    async def start_worker(self, index: int) -> None:
        """Start worker ``index`` and wait for its "worker started" line."""
        worker = self.workers[index]
        self._prepare(worker, "worker")
        worker.spawn()
        log = worker.log_file

        async def polling() -> bool:
            return b'"worker started"' in log.read_bytes()

        await _until(polling, worker.name, worker)

    async def start_gateway(self, index: int) -> None:
        """Start gateway ``index`` and wait until its ``/api/health`` answers 200."""
        gateway = self.gateways[index]
        port = self.gateway_ports[index]
        self._prepare(gateway, "api", CAPSTAN_API_PORT=str(port))
        gateway.spawn()
        async with httpx.AsyncClient(timeout=2) as http:

            async def healthy() -> bool:
                try:
                    return (await http.get(f"{self.api_url(port)}/health")).status_code == 200
                except httpx.HTTPError:
                    return False

            await _until(healthy, gateway.name, gateway)

    async def start(self) -> None:
        """Database, Temporal, then the workers and the gateways (each pair started together)."""
        await self.create_database()
        await self.start_temporal()
        await asyncio.gather(*(self.start_worker(i) for i in range(2)))
        await asyncio.gather(*(self.start_gateway(i) for i in range(2)))

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each running worker and gateway, and by the Temporal server."""
        procs = [*self.workers, *self.gateways, self.temporal]
        return {p.name: cpu_seconds(p.current.pid) for p in procs if p.current is not None}

    def worker_pids(self) -> list[int]:
        """Pids of every worker process ever started (the SDK's identity is ``<pid>@<host>``)."""
        return [proc.pid for worker in self.workers for proc in worker.started]

    async def close(self) -> None:
        """Stop everything, whatever state it is in, and drop the database."""
        for proc in (*self.gateways, *self.workers):
            await proc.stop(5)
        await self.temporal.stop()
        for proc in (*self.gateways, *self.workers, self.temporal):
            proc.kill_all()
        await self.drop_database()

    def logs(self) -> str:
        """The tail of each process's latest log, for failure messages."""
        return "".join(f"\n--- {p.log_file.name} ---\n{p.tail()}" for p in (*self.workers, *self.gateways))


@contextlib.asynccontextmanager
async def deploy_stack(code: Path | None = None) -> AsyncIterator[DeployStack]:
    """A started :class:`DeployStack` on a fresh temp dir; stopped, dropped and removed on exit.

    Args:
        code: run the workers and gateways from this code tree at first (another version).

    ``CAPSTAN_DEPLOY_KEEP_LOGS=<dir>`` copies the processes' logs there first.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="capstan-deploy-"))
    stack = DeployStack(data_dir, code)
    try:
        try:
            await stack.start()
        except StackProcessError as exc:
            raise StackProcessError(f"{exc}{stack.logs()}") from None
        yield stack
    finally:
        await stack.close()
        if keep := os.environ.get("CAPSTAN_DEPLOY_KEEP_LOGS"):
            shutil.copytree(stack.log_dir, keep, dirs_exist_ok=True)
        shutil.rmtree(data_dir, ignore_errors=True)
