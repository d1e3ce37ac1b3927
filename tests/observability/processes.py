"""Gateway and worker as separate processes, configured only through the environment."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.fixtures.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
START_WITHIN = 40.0


@dataclass
class Processes:
    """The running control plane's addresses."""

    api_url: str
    worker_metrics_url: str
    logs: Path

    def tail(self) -> str:
        return "".join(
            f"\n--- {log.name} ---\n" + "".join(log.read_text(errors="replace").splitlines(True)[-25:])
            for log in sorted(self.logs.glob("*.log"))
        )


def _spawn(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped by pid below
        )


async def _until(check: object, what: str, procs: list[subprocess.Popen[bytes]], logs: Path) -> None:
    deadline = time.monotonic() + START_WITHIN
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            raise AssertionError(
                f"a process exited while waiting for {what}:{Processes('', '', logs).tail()}"
            )
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}:{Processes('', '', logs).tail()}")


async def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@asynccontextmanager
async def control_plane(env: dict[str, str], logs: Path) -> AsyncIterator[Processes]:
    """Start worker and gateway with ``env`` (plus ports chosen here); stop both afterwards."""
    api_port, metrics_port = free_port(), free_port()
    env = {
        **env,
        "PYTHONPATH": str(ROOT),
        "CAPSTAN_API_HOST": "127.0.0.1",
        "CAPSTAN_API_PORT": str(api_port),
        "CAPSTAN_WORKER_METRICS_PORT": str(metrics_port),
        "CAPSTAN_LOG_FORMAT": "json",
    }
    await asyncio.to_thread(logs.mkdir, parents=True, exist_ok=True)
    procs = [_spawn("worker", env, logs / "worker.log")]
    try:
        worker_log = logs / "worker.log"

        async def worker_started() -> bool:
            return b'"worker started"' in worker_log.read_bytes()

        await _until(worker_started, "the worker", procs, logs)
        procs.append(_spawn("api", env, logs / "gateway.log"))
        api_url = f"http://127.0.0.1:{api_port}/api"
        async with httpx.AsyncClient(timeout=2) as http:

            async def healthy() -> bool:
                try:
                    return (await http.get(f"{api_url}/health")).status_code == 200
                except httpx.HTTPError:
                    return False

            await _until(healthy, "the gateway", procs, logs)
        yield Processes(api_url, f"http://127.0.0.1:{metrics_port}", logs)
    finally:
        for proc in reversed(procs):
            await _stop(proc)
