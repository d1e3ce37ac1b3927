"""The control plane unreachable before an action starts: the event is given back, nothing runs.

Real HTTP both ways: a closed loopback port (connection refused, after the retries) and a small
server answering the resource read. The give-back itself (the next poll takes the event again,
the resent ``.started`` has the same id) is tested in tests/sdk/test_answers.py.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from capstan.executor.resources import ResourceReader
from capstan.executor.service import NAME, Executor, ExecutorOptions
from capstan.sdk import Backoff, TaskContext, TryAgainLater
from capstan.sdk._client import ControlPlaneClient
from tests.fixtures.json_server import JSONServer
from tests.fixtures.ports import free_port
from tests.sdk.fakes import triggered

FAST = Backoff(initial=0.01, maximum=0.02, attempts=2)
CONFIG = """apiVersion: v2
actions: [{name: a, events: [{name: sh.keptn.event.test.triggered}], tasks: [{name: t, cmd: ["true"]}]}]
"""


async def _handle(executor: Executor, send_to: str) -> tuple[TaskContext, TryAgainLater]:
    client = ControlPlaneClient(send_to, "token", backoff=FAST)
    ctx = TaskContext(triggered("test"), source=NAME, send=client.send_event, auto_response=False)
    try:
        with pytest.raises(TryAgainLater) as caught:
            await executor.handle(ctx)
    finally:
        await client.aclose()
    return ctx, caught.value


@pytest.fixture
async def executor(tmp_path: Path):
    executor = Executor(
        ExecutorOptions(api_url="http://127.0.0.1:9/api", token="token", tasks=("test",), state_dir=tmp_path)
    )
    executor.journal.open()
    yield executor
    executor.journal.close()
    if executor._reader is not None:
        await executor._reader.aclose()


async def test_an_unreadable_config_gives_the_event_back(executor: Executor):
    closed = f"http://127.0.0.1:{free_port()}/api"
    executor._reader = ResourceReader(closed, "token", backoff=FAST)
    ctx, later = await _handle(executor, closed)
    assert "cannot read job/config.yaml" in later.message
    assert executor.journal.state(ctx.triggered_id) is None


async def test_a_started_that_cannot_be_sent_gives_the_event_back(
    executor: Executor, json_server: JSONServer, tmp_path: Path
):
    json_server.document = {"resourceContent": base64.b64encode(CONFIG.encode()).decode()}
    executor._reader = ResourceReader(json_server.url + "/api", "token", backoff=FAST)
    ctx, later = await _handle(executor, f"http://127.0.0.1:{free_port()}/api")
    assert "could not send .started" in later.message
    assert json_server.paths and "job/config.yaml" in json_server.paths[0]  # the config was read
    assert executor.journal.state(ctx.triggered_id) is None  # so the next try runs it, once


async def test_an_invalid_config_whose_answer_cannot_be_sent_is_given_back(
    executor: Executor, json_server: JSONServer
):
    json_server.document = {"resourceContent": base64.b64encode(b"apiVersion: v9\n").decode()}
    executor._reader = ResourceReader(json_server.url + "/api", "token", backoff=FAST)
    ctx, later = await _handle(executor, f"http://127.0.0.1:{free_port()}/api")
    assert "could not send .started" in later.message
    assert executor.journal.state(ctx.triggered_id) is None
