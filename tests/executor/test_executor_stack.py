"""``capstan executor`` as a separate process against a real stack (Temporal, PostgreSQL, gateway).

Deliveries whose tasks run real commands: env from the event and from a secret created through
the secrets API, files from the resource store, a failing command, a timeout, and a restart of
the gateway while a task runs (the executor reconnects and runs the task once).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from temporalio.testing import WorkflowEnvironment

from tests.executor.harness import ExecutorProcess, Gateway, gateway_settings
from tests.fixtures.ports import free_port
from tests.workflows.stack import Stack, running_stack

pytestmark = pytest.mark.timeout(90)

PY = sys.executable
KEY = Fernet.generate_key().decode()
SECRET = "tok-8f2c91d7e5"
SOURCE = "job-executor-service"
COUNT = "import os, time; open(os.environ['COUNTER'], 'a').write(f'run {os.getpid()}\\\\n'); time.sleep(4)"

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: jobs}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}]
"""

DEPLOY_SCRIPT = """\
import os, sys
print("deploying", sys.argv[1], "to", os.environ["KEPTN_STAGE"])
print("token=" + os.environ["DEPLOY_TOKEN"])
print("greeting=" + os.environ["GREETING"])
print("files:", sorted(os.listdir(".")), sorted(os.listdir("../config")))
"""

CONFIG = f"""\
apiVersion: v2
actions:
  - name: deploy
    events: [{{name: sh.keptn.event.deployment.triggered}}]
    tasks:
      - name: deploy
        files: [scripts/deploy.py, config]
        cmd: ["{PY}"]
        args: [deploy.py, "$(IMAGE)"]
        workingDir: /keptn/scripts
        env:
          - {{name: IMAGE, value: "$.data.configurationChange.values.image", valueFrom: event}}
          - {{name: deploy-token, valueFrom: secret}}
          - {{name: GREETING, value: "hello; $(rm -rf /)", valueFrom: string}}
  - name: failing test
    events:
      - name: sh.keptn.event.test.triggered
        jsonpath: {{property: $.data.labels.mode, match: fail}}
    tasks:
      - name: broken
        cmd: ["{PY}", -c, "import sys; print('boom', file=sys.stderr); sys.exit(4)"]
  - name: slow test
    events:
      - name: sh.keptn.event.test.triggered
        jsonpath: {{property: $.data.labels.mode, match: slow}}
    tasks:
      - name: sleeper
        cmd: ["{PY}", -c, "import time; print('sleeping', flush=True); time.sleep(60)"]
        timeout: 1s
  - name: counted test
    events:
      - name: sh.keptn.event.test.triggered
        jsonpath: {{property: $.data.labels.mode, match: counted}}
    tasks:
      - name: count
        cmd: ["{PY}", -c, "{COUNT}"]
        env: [{{name: COUNTER, value: "$.data.labels.counter", valueFrom: event}}]
  - name: plain test
    events: [{{name: sh.keptn.event.test.triggered}}]
    tasks:
      - name: check
        cmd: ["{PY}", -c, "print('all good')"]
"""


@pytest_asyncio.fixture
async def stack(db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    async with running_stack(db_url, pool, temporal_env.client, secret_key=KEY) as running:
        await running.create_project(running.project, SHIPYARD, "carts", "orders")
        for service in ("carts", "orders"):
            await running.add_resource("dev", service, "job/config.yaml", CONFIG)
        await running.add_resource("dev", "carts", "scripts/deploy.py", DEPLOY_SCRIPT)
        await running.add_resource("dev", "carts", "config/app.yaml", "replicas: 1\n")
        await running.add_resource("dev", "carts", "config/extra/more.yaml", "x: 1\n")
        created = await running.api.post(
            "/api/secrets/v1/secret",
            json={
                "name": "deploy-token",
                "scope": "keptn-job-executor-service",
                "data": {"DEPLOY_TOKEN": SECRET},
            },
        )
        assert created.status_code == 201, created.text
        yield running


@pytest_asyncio.fixture
async def gateway(stack: Stack, db_url: str) -> AsyncIterator[Gateway]:
    served = Gateway(gateway_settings(stack, db_url, secret_key=KEY))
    await served.start()
    try:
        yield served
    finally:
        await served.stop()


@pytest_asyncio.fixture
async def executor(stack: Stack, gateway: Gateway, tmp_path: Path) -> AsyncIterator[ExecutorProcess]:
    proc = ExecutorProcess(
        gateway.api_url, tmp_path / "executor.log", "--task", "deployment,test", "--project", stack.project
    )
    await proc.start()
    try:
        yield proc
    finally:
        code = await proc.stop()
        assert code == 0 or proc.killed, proc.output()


async def answers(stack: Stack, context: str, task: str) -> list[dict[str, Any]]:
    """The executor's .started/.finished of a task, oldest first."""
    found = []
    for kind in ("started", "finished"):
        found += [
            e for e in await stack.events(context, f"sh.keptn.event.{task}.{kind}") if e["source"] == SOURCE
        ]
    return found


async def test_a_delivery_runs_real_commands_with_env_files_and_secrets(
    stack: Stack, executor: ExecutorProcess
):
    context = await stack.trigger(
        stack.project, "dev", "delivery", "carts", configurationChange={"values": {"image": "carts:1.2.3"}}
    )
    finished = await stack.finished(context, "dev", "delivery", within=40)
    assert (finished["data"]["result"], finished["data"]["status"]) == ("pass", "succeeded"), (
        executor.output()
    )

    started, deployed = await answers(stack, context, "deployment")
    assert started["type"] == "sh.keptn.event.deployment.started"
    assert deployed["data"]["result"] == "pass"
    assert deployed["data"]["message"] == "action 'deploy': 1 task(s) succeeded"
    (task,) = deployed["data"]["jobExecutor"]["tasks"]
    assert task["exitCode"] == 0
    assert task["stdout"].splitlines() == [
        "deploying carts:1.2.3 to dev",
        "token=***",  # the secret's value is masked
        "greeting=hello; $(rm -rf /)",  # passed as it is, never through a shell
        "files: ['deploy.py'] ['app.yaml', 'extra']",
    ]
    assert SECRET not in str(await stack.events(context))

    _, tested = await answers(stack, context, "test")
    assert tested["data"]["jobExecutor"]["action"] == "plain test"
    assert tested["data"]["jobExecutor"]["tasks"][0]["stdout"] == "all good\n"
    assert tested["data"]["test"]["start"] <= tested["data"]["test"]["end"]  # the window an evaluation uses


async def test_a_failing_command_and_a_timeout_fail_their_sequences(stack: Stack, executor: ExecutorProcess):
    image = {"values": {"image": "carts:2"}}
    failing = await stack.trigger(
        stack.project, "dev", "delivery", "carts", labels={"mode": "fail"}, configurationChange=image
    )
    missing = await stack.trigger(
        stack.project, "dev", "delivery", "orders", labels={"mode": "slow"}, configurationChange=image
    )
    no_image = await stack.trigger(stack.project, "dev", "delivery", "carts")

    finished = await stack.finished(failing, "dev", "delivery", within=40)
    assert finished["data"]["result"] == "fail", executor.output()
    _, tested = await answers(stack, failing, "test")
    assert (tested["data"]["result"], tested["data"]["status"]) == ("fail", "succeeded")
    assert tested["data"]["message"] == "task 'broken' exited with code 4: boom"
    assert tested["data"]["jobExecutor"]["tasks"][0]["exitCode"] == 4

    # orders has no deploy.py: the deployment fails to find its file
    finished = await stack.finished(missing, "dev", "delivery", within=40)
    assert finished["data"]["result"] == "fail"
    _, deployed = await answers(stack, missing, "deployment")
    assert deployed["data"]["status"] == "errored"
    assert (
        deployed["data"]["message"]
        == "task 'deploy': file 'scripts/deploy.py' not found in the project's resources"
    )
    # an event without the value an env entry reads fails the task, naming the path
    finished = await stack.finished(no_image, "dev", "delivery", within=40)
    _, deployed = await answers(stack, no_image, "deployment")
    assert deployed["data"]["message"] == (
        "task 'deploy': env IMAGE: JSONPath '$.data.configurationChange.values.image': "
        "nothing at 'configurationChange'"
    )

    # a slow test on carts (after the failing one released the queue) times out
    timed = await stack.trigger(
        stack.project, "dev", "delivery", "carts", labels={"mode": "slow"}, configurationChange=image
    )
    begun = time.monotonic()
    finished = await stack.finished(timed, "dev", "delivery", within=40)
    assert finished["data"]["result"] == "fail"
    _, tested = await answers(stack, timed, "test")
    assert (tested["data"]["result"], tested["data"]["status"]) == ("fail", "errored")
    assert tested["data"]["message"] == "task 'sleeper' timed out after 1 s and was killed"
    (task,) = tested["data"]["jobExecutor"]["tasks"]
    assert (task["timedOut"], task["stdout"]) == (True, "sleeping\n")
    assert time.monotonic() - begun < 20


async def test_a_stopped_gateway_leaves_no_task_behind(gateway: Gateway):
    # A pending lifespan task left behind is finalised later by the garbage collector, in any
    # thread: that crashed the test process (see Gateway.start).
    await gateway.restart(down_for=0.0)
    await gateway.stop()
    left = [task for task in asyncio.all_tasks() if "lifespan" in repr(task.get_coro()).lower()]
    assert left == []


async def test_a_gateway_restart_mid_task_runs_the_task_once(
    stack: Stack, gateway: Gateway, executor: ExecutorProcess, tmp_path: Path
):
    counter = tmp_path / "runs.txt"
    context = await stack.trigger(
        stack.project, "dev", "delivery", "carts",
        labels={"mode": "counted", "counter": str(counter)},
        configurationChange={"values": {"image": "carts:3"}},
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (await answers(stack, context, "test")):
        assert time.monotonic() < deadline, executor.output()
        await asyncio.sleep(0.05)

    # The task runs for 4 s: the gateway goes away for 1 s, a new instance comes up, and the
    # executor polls the still open test.triggered again for ~2 s before the task ends.
    await gateway.restart(down_for=1.0)
    if len(await answers(stack, context, "test")) == 1:  # still running (the usual case)
        open_events = await stack.open_triggered("test", project=stack.project)
        assert [e["data"]["labels"]["mode"] for e in open_events] == ["counted"]  # polled again, not rerun
    finished = await stack.finished(context, "dev", "delivery", within=40)
    assert finished["data"]["result"] == "pass", executor.output()
    assert len(counter.read_text().splitlines()) == 1
    assert [e["type"] for e in await answers(stack, context, "test")] == [
        "sh.keptn.event.test.started",
        "sh.keptn.event.test.finished",
    ]
    assert executor.running
    assert "polling failed" in executor.output()
    assert gateway.starts == 2


async def test_a_killed_executor_does_not_run_its_task_again(
    stack: Stack, gateway: Gateway, executor: ExecutorProcess, tmp_path: Path
):
    counter = tmp_path / "runs.txt"
    context = await stack.trigger(
        stack.project, "dev", "delivery", "carts",
        labels={"mode": "counted", "counter": str(counter)},
        configurationChange={"values": {"image": "carts:4"}},
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not counter.exists() or not counter.read_text():  # the task runs (for 4 s)
        assert time.monotonic() < deadline, executor.output()
        await asyncio.sleep(0.05)
    task_pid = int(counter.read_text().split()[1])

    await executor.kill()  # no .finished, no clean-up: the journal on disk is all that is left
    for _ in range(100):  # the task dies with the executor (parent-death signal)
        if not _alive(task_pid):
            break
        await asyncio.sleep(0.05)
    assert not _alive(task_pid)

    restarted = ExecutorProcess(executor.api_url, executor.log, *executor.args)
    await restarted.start()
    try:
        finished = await stack.finished(context, "dev", "delivery", within=40)
    finally:
        assert await restarted.stop() == 0, restarted.output()
    assert finished["data"]["result"] == "fail"
    started, answered = await answers(stack, context, "test")
    assert started["type"] == "sh.keptn.event.test.started"
    assert (answered["data"]["result"], answered["data"]["status"]) == ("fail", "errored")
    assert (
        answered["data"]["message"]
        == "the executor was stopped while this task ran; it is not run a second time"
    )
    assert len(counter.read_text().splitlines()) == 1


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_push_mode_receives_the_events_over_http(stack: Stack, gateway: Gateway, tmp_path: Path):
    port = free_port()
    pushed = ExecutorProcess(
        gateway.api_url, tmp_path / "push.log",
        "--task", "deployment,test", "--project", stack.project,
        "--mode", "push", "--port", str(port), "--public-url", f"http://127.0.0.1:{port}/",
    )  # fmt: skip
    await pushed.start()
    try:
        # Push reaches only integrations registered when an event is emitted (pull would catch up).
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while url not in {s.get("url") for s in await subscriptions(stack)}:
            assert time.monotonic() < deadline, pushed.output()
            await asyncio.sleep(0.05)
        context = await stack.trigger(
            stack.project, "dev", "delivery", "carts", configurationChange={"values": {"image": "carts:5"}}
        )
        finished = await stack.finished(context, "dev", "delivery", within=40)
    finally:
        assert await pushed.stop() == 0, pushed.output()
    assert finished["data"]["result"] == "pass", pushed.output()
    assert {s["url"] for s in await subscriptions(stack)} == {url}
    assert "push mode" in pushed.output()


async def subscriptions(stack: Stack) -> list[dict[str, Any]]:
    """The executor's subscriptions as the control plane has them."""
    registrations = await stack.api.get("/api/controlPlane/v1/uniform/registration", params={"name": SOURCE})
    assert registrations.status_code == 200, registrations.text
    return [sub for registration in registrations.json() for sub in registration["subscriptions"]]
