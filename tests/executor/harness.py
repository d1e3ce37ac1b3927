"""A restartable gateway on a fixed loopback port, and ``capstan executor`` as a separate process.

The stack (``tests/workflows/stack.py``) runs the worker and an in-process gateway the tests use
for setup. The executor talks to a second gateway, a real uvicorn server of its own app instance
on the same database and task queue, which :meth:`Gateway.restart` stops and replaces by a new
instance on the same port: what a control-plane restart looks like from an execution plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Generator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import uvicorn

from api.main import create_app
from capstan.settings import Settings
from tests.capstan.cli_runner import CAPSTAN
from tests.fixtures.ports import free_port
from tests.workflows.stack import TOKEN, Stack


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the test runner owns the signals


class Gateway:
    """A gateway served on ``127.0.0.1:<port>`` that can be stopped and started again.

    Args:
        settings: the gateway's settings (same database, Temporal and task queue as the stack).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self._server: _Server | None = None
        self._serving: asyncio.Task[None] | None = None
        self._lifespan: AbstractAsyncContextManager[Any] | None = None
        self.starts = 0

    async def start(self) -> None:
        """Start a new app instance (its own lifespan: pool, Temporal client) on the port."""
        app = create_app(self.settings)
        # The lifespan is run here, not by uvicorn: a forced uvicorn exit skips the lifespan's
        # shutdown and drops its still-pending task, whose coroutine the garbage collector then
        # finalised in whichever thread allocated next. That crashed the test process (SIGSEGV
        # while a thread-pool thread ran the finaliser, twice in CI).
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        self._lifespan = lifespan
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, lifespan="off", log_config=None, access_log=False
        )
        self._server = _Server(config)
        self._serving = asyncio.create_task(self._server.serve())
        while not self._server.started:
            assert not self._serving.done(), "the gateway stopped while starting"
            await asyncio.sleep(0.01)
        self.starts += 1

    async def stop(self) -> None:
        """Stop it: the port refuses connections until :meth:`start`."""
        if self._server is None or self._serving is None:
            return
        self._server.should_exit = True
        self._server.force_exit = True
        try:
            await asyncio.wait_for(self._serving, 15)
        finally:
            lifespan, self._lifespan = self._lifespan, None
            self._server = self._serving = None
            if lifespan is not None:
                await lifespan.__aexit__(None, None, None)  # closes its pool and Temporal client

    async def restart(self, down_for: float) -> None:
        """Stop, stay down ``down_for`` seconds, start a new instance."""
        await self.stop()
        await asyncio.sleep(down_for)
        await self.start()


def gateway_settings(stack: Stack, db_url: str, **more: Any) -> Settings:
    """Settings of a gateway in front of the stack's database, Temporal and task queue."""
    return Settings(
        database_url=db_url,
        api_token=TOKEN,
        temporal_address=stack.client.service_client.config.target_host,
        temporal_task_queue=stack.task_queue,
        **more,
    )


class ExecutorProcess:
    """``capstan executor`` in its own process, its output in a log file.

    Args:
        api_url: the gateway's API URL.
        log: where its stdout and stderr go.
        args: further options, e.g. ``--task test``.
    """

    def __init__(self, api_url: str, log: Path, *args: str) -> None:
        self.api_url = api_url
        self.log = log
        self.state_dir = log.parent / "executor-state"
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None
        self.killed = False

    async def start(self) -> None:
        """Start it with a clean ``CAPSTAN_*`` environment (URL and token from variables)."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("CAPSTAN_")}
        env.update(
            CAPSTAN_EXECUTOR_URL=self.api_url,
            CAPSTAN_EXECUTOR_TOKEN=TOKEN,
            CAPSTAN_EXECUTOR_POLL_INTERVAL="0.1",
            CAPSTAN_EXECUTOR_HEARTBEAT_INTERVAL="0.5",
            CAPSTAN_EXECUTOR_STATE_DIR=str(self.state_dir),
        )
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                CAPSTAN,
                "executor",
                *self.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=env,
            )

    def output(self) -> str:
        """Everything it logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def running(self) -> bool:
        """Whether the process is still alive."""
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        """SIGKILL: the executor gets no chance to answer or clean up."""
        assert self.proc is not None
        self.proc.kill()
        await self.proc.wait()
        self.killed = True

    async def stop(self, within: float = 20) -> int:
        """SIGTERM, wait; SIGKILL if it does not stop in time. Returns its exit code."""
        if self.proc is None:
            return 0
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), within)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        assert self.proc.returncode is not None
        return self.proc.returncode
