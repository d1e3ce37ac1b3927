"""The echo example as a separate process, against the fake control plane over loopback HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from capstan.sdk._push import PushServer
from tests.fixtures.ports import free_port
from tests.sdk.fakes import TOKEN, FakeControlPlane, triggered, wait_for

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def served(cp: FakeControlPlane) -> AsyncIterator[str]:
    """The fake control plane on a loopback port; yields its API URL."""
    server = PushServer(cp.asgi_app(), host="127.0.0.1", port=0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}/api"
    finally:
        await server.stop()


def start_echo(api_url: str, *extra: str) -> subprocess.Popen[str]:
    argv = [
        sys.executable, "-m", "capstan.sdk.examples.echo",
        "--task", "deployment",
        "--api-url", api_url,
        "--token", TOKEN,
        "--poll-interval", "0.05",
        "--heartbeat-interval", "0.2",
        *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


async def stop(proc: subprocess.Popen[str], *, within: float = 20) -> tuple[int, str]:
    """SIGTERM, then wait without blocking the loop (the fake control plane lives in it)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.to_thread(proc.wait, within)
    except subprocess.TimeoutExpired:
        proc.kill()
    output = proc.communicate()[0]
    return proc.wait(), output


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_pull_mode_process_registers_answers_and_stops_on_sigterm(served, cp, processes):
    proc = start_echo(served, "--name", "echo-pull", "--project", "sockshop")
    processes.append(proc)
    await wait_for(lambda: cp.registrations, "the registration", within=20)
    assert cp.registrations[0]["name"] == "echo-pull"
    assert cp.registrations[0]["metadata"]["location"] == "remote-execution-plane"
    event = triggered()
    cp.add(event)
    await wait_for(lambda: len(cp.posted) == 2, "the answers", within=20)
    started, finished = cp.posted
    assert started["type"] == "sh.keptn.event.deployment.started"
    assert finished["source"] == "echo-pull"
    assert finished["data"]["deployment"] == {
        "echo": {"by": "echo-pull", "project": "sockshop", "stage": "dev", "service": "carts"}
    }
    assert finished["data"]["result"] == "pass"
    code, output = await stop(proc)
    assert code == 0, output
    assert "echo-pull stopped" in output


async def test_sigterm_lets_a_running_handler_finish(served, cp, processes):
    proc = start_echo(served, "--sleep", "1.0")
    processes.append(proc)
    event = triggered()
    cp.add(event)
    await wait_for(lambda: len(cp.posted) == 1, "the .started", within=20)
    code, output = await stop(proc)
    assert code == 0, output
    assert [e["type"] for e in cp.posted] == [
        "sh.keptn.event.deployment.started",
        "sh.keptn.event.deployment.finished",
    ]
    assert cp.posted[1]["data"]["status"] == "succeeded"


async def test_push_mode_process_receives_posted_events(served, cp, processes):
    port = free_port()
    proc = start_echo(served, "--mode", "push", "--port", str(port))
    processes.append(proc)
    await wait_for(lambda: cp.registrations, "the registration", within=20)
    url = f"http://127.0.0.1:{port}/"
    assert cp.registrations[0]["subscriptions"][0]["url"] == url
    event = triggered()
    async with httpx.AsyncClient() as http:
        response = await http.post(url, json=event, headers={"content-type": "application/cloudevents+json"})
    assert response.status_code == 202
    await wait_for(lambda: len(cp.posted) == 2, "the answers", within=20)
    assert cp.posted[1]["triggeredid"] == event["id"]
    code, output = await stop(proc)
    assert code == 0, output


async def test_the_process_waits_for_a_control_plane_that_is_down(cp, processes):
    port = free_port()  # nothing listens here yet
    proc = start_echo(f"http://127.0.0.1:{port}/api")
    processes.append(proc)
    await asyncio.sleep(1.0)
    assert proc.poll() is None  # still running, retrying
    server = PushServer(cp.asgi_app(), host="127.0.0.1", port=port)
    await server.start()
    try:
        await wait_for(lambda: cp.registrations, "the late registration", within=30)
    finally:
        code, output = await stop(proc)
        await server.stop()
    assert code == 0, output
