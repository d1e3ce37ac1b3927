"""A real Prometheus (Debian's package, as tests/fixtures/prometheus.py) scraping Capstan's /metrics."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.fixtures.ports import free_port

SCRAPE_WITHIN = 30.0


def _start(binary: str, root: Path, port: int) -> subprocess.Popen[bytes]:
    with (root / "prometheus.log").open("wb") as out:
        return subprocess.Popen(
            [
                binary,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@asynccontextmanager
async def scraping_prometheus(targets: dict[str, str], token: str, root: Path) -> AsyncIterator[str]:
    """Run Prometheus scraping ``{job: host:port}`` every second with a bearer token; yield its URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("the 'prometheus' binary is missing: run scripts/install --dev")
    port = free_port()
    jobs = "".join(
        f"  - job_name: {job}\n    authorization: {{credentials: '{token}'}}\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
        for job, target in targets.items()
    )
    config = f"global:\n  scrape_interval: 1s\nscrape_configs:\n{jobs}"
    await asyncio.to_thread((root / "prometheus.yml").write_text, config)
    process = _start(binary, root, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def query_until(url: str, promql: str, expected: float) -> None:
    """Wait until the instant query's first value is ``expected``."""
    deadline = time.monotonic() + SCRAPE_WITHIN
    last = "no answer yet"
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            try:
                body = (await http.get(f"{url}/api/v1/query", params={"query": promql})).json()
                result = body.get("data", {}).get("result", [])
                if result and float(result[0]["value"][1]) == expected:
                    return
                last = str(body)[:300]
            except (httpx.HTTPError, ValueError) as exc:
                last = repr(exc)
            await asyncio.sleep(0.2)
    raise AssertionError(f"Prometheus: {promql} did not become {expected} ({last})")
