"""docs/executor.md's recipe end to end: a ``test`` task runs a load-test script through the
executor, then the built-in quality gate judges the service's Prometheus metrics over the window
the test reported (``data.test.start``/``end``). Real Prometheus, real stack, executor process.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.executor.harness import ExecutorProcess, Gateway, gateway_settings
from tests.fixtures.prometheus import PrometheusServer
from tests.workflows.stack import Stack, running_stack

pytestmark = pytest.mark.timeout(90)

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: load-tested}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: test}, {name: evaluation}]
"""

LOAD_SCRIPT = """\
import os, time, urllib.request

target = os.environ["TARGET"]
count = int(os.environ["REQUESTS"])
took = []
for _ in range(count):
    begun = time.perf_counter()
    with urllib.request.urlopen(target, timeout=5) as answer:
        answer.read()
    took.append(time.perf_counter() - begun)
took.sort()
print(f"{count} requests to {target}: median {took[count // 2] * 1000:.1f} ms")
"""

JOB_CONFIG = f"""\
apiVersion: v2
actions:
  - name: load test
    events:
      - name: sh.keptn.event.test.triggered
        jsonpath: {{property: $.data.test.teststrategy, match: performance}}
    tasks:
      - name: load
        files: [load/load.py]
        cmd: ["{sys.executable}"]
        args: [load/load.py]
        env:
          - {{name: TARGET, value: "$.data.deployment.deploymentURIsLocal[0]", valueFrom: event}}
          - {{name: REQUESTS, value: "20"}}
        timeout: 1m
"""

SLI = """spec_version: "1.0"
indicators:
  response_time: 'capstan_test_response_time_seconds{project="sockshop",stage="$STAGE",service="$SERVICE"}'
  throughput: 'sum(capstan_test_requests_total{service="$SERVICE"})'
"""

SLO = """spec_version: "1.0"
objectives:
  - sli: response_time
    pass: [{criteria: ["<=0.5"]}]
    key_sli: true
  - sli: throughput
    pass: [{criteria: [">=1000"]}]
total_score: {pass: "90%", warning: "75%"}
"""


@pytest_asyncio.fixture
async def stack(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment, prometheus: PrometheusServer
) -> AsyncIterator[Stack]:
    async with running_stack(
        db_url,
        pool,
        temporal_env.client,
        builtin=True,
        prometheus_url=prometheus.url,
        prometheus_user=prometheus.user,
        prometheus_password=prometheus.password,
    ) as running:
        await running.create_project(running.project, SHIPYARD, "carts")
        for uri, content in (
            ("job/config.yaml", JOB_CONFIG),
            ("load/load.py", LOAD_SCRIPT),
            ("prometheus/sli.yaml", SLI),
            ("slo.yaml", SLO),
        ):
            await running.add_resource("dev", "carts", uri, content)
        configure = await running.send(
            {
                "type": "sh.keptn.event.monitoring.configure",
                "source": "tests",
                "data": {"project": running.project, "service": "carts", "type": "prometheus"},
            }
        )
        assert configure.status_code == 200, configure.text
        yield running


async def test_a_load_test_task_then_a_prometheus_quality_gate(
    stack: Stack, db_url: str, prometheus: PrometheusServer, tmp_path: Path
):
    gateway = Gateway(gateway_settings(stack, db_url))
    await gateway.start()
    executor = ExecutorProcess(gateway.api_url, tmp_path / "executor.log", "--task", "test")
    await executor.start()
    try:
        context = await stack.trigger(
            stack.project, "dev", "delivery", "carts",
            test={"teststrategy": "performance"},
            deployment={"deploymentURIsLocal": [prometheus.metrics_url]},
        )  # fmt: skip
        finished = await stack.finished(context, "dev", "delivery", within=60)
    finally:
        assert await executor.stop() == 0, executor.output()
        await gateway.stop()
    assert (finished["data"]["result"], finished["data"]["status"]) == ("pass", "succeeded"), (
        executor.output()
    )

    (tested,) = await stack.events(context, "sh.keptn.event.test.finished")
    assert tested["source"] == "job-executor-service"
    (load,) = tested["data"]["jobExecutor"]["tasks"]
    assert load["stdout"].startswith(f"20 requests to {prometheus.metrics_url}: median ")
    (evaluated,) = [
        e
        for e in await stack.events(context, "sh.keptn.event.evaluation.finished")
        if e["source"] == "lighthouse-service"
    ]
    evaluation = evaluated["data"]["evaluation"]
    assert (evaluated["data"]["result"], evaluation["score"]) == ("pass", 100)
    # judged over exactly the window the load test reported
    assert (evaluation["timeStart"], evaluation["timeEnd"]) == (
        tested["data"]["test"]["start"],
        tested["data"]["test"]["end"],
    )
