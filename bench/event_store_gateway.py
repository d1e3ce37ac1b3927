"""The gateway alone, on the benchmark's database: ``python -m api`` as ``capstan up`` starts it.

The event-store benchmark needs no worker and no Temporal: the datastore routes read PostgreSQL
only, and the gateway connects to Temporal lazily (on the first call that needs it).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]

from bench.stack import ROOT, _env, _free_port

log = logging.getLogger("bench.event_store")
START_TIMEOUT_S = 60.0


@dataclass
class Gateway:
    """A running gateway process."""

    proc: subprocess.Popen[bytes]
    port: int
    token: str
    log_file: Path

    @property
    def api_url(self) -> str:
        """The Keptn API base URL."""
        return f"http://127.0.0.1:{self.port}/api"

    def rss_mb(self) -> float | None:
        """The gateway's resident memory now, MiB."""
        try:
            rss: int = psutil.Process(self.proc.pid).memory_info().rss
        except psutil.NoSuchProcess:
            return None
        return round(rss / 2**20, 1)


def _wait_ready(gateway: Gateway) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=5.0) as http:
        while time.monotonic() < deadline:
            if gateway.proc.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                answer = http.get(
                    f"{gateway.api_url}/mongodb-datastore/event",
                    params={"keptnContext": "ready-check"},
                    headers={"x-token": gateway.token},
                )
                if answer.status_code == 200:
                    return
            time.sleep(0.2)
    raise RuntimeError(f"the gateway did not start:\n{gateway.log_file.read_text(errors='replace')[-4000:]}")


@contextlib.contextmanager
def running_gateway(database_url: str) -> Iterator[Gateway]:
    """Start ``python -m api`` on a free port against ``database_url``; SIGTERM it on exit."""
    data_dir = Path(tempfile.mkdtemp(prefix="capstan-bench-gw-"))
    port, unused_temporal = _free_port(), _free_port()
    token = secrets.token_urlsafe(24)
    env = _env() | {
        "CAPSTAN_DATA_DIR": str(data_dir),
        "CAPSTAN_DATABASE_URL": database_url,
        "CAPSTAN_API_TOKEN": token,
        "CAPSTAN_API_PORT": str(port),
        # never called by the datastore routes; a closed port makes any attempt fail fast
        "CAPSTAN_TEMPORAL_ADDRESS": f"127.0.0.1:{unused_temporal}",
        "CAPSTAN_LOG_LEVEL": "warning",
    }
    log_file = data_dir / "gateway.log"
    with log_file.open("wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api"], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    gateway = Gateway(proc, port, token, log_file)
    try:
        _wait_ready(gateway)
        yield gateway
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
