"""Record workflow histories of a given version of Capstan's code, for the replay test.

Run from the repository root, usually through ``scripts/record-histories <git revision>``::

    .venv/bin/python -m tests.replay.record --code /tmp/capstan-old --out tests/replay/histories/<name>

It starts the fault suite's stack (:mod:`tests.chaos.faults`: embedded PostgreSQL, a Temporal dev
server, worker and gateway as separate processes) with the worker and gateway imported from
``--code`` instead of this checkout, runs the scenarios below through the API with a real SDK
integration, and writes the history of every workflow of the namespace as Temporal's JSON (what
``temporal workflow show --output json`` prints) to ``--out``, one file per workflow run.

Scenarios, all in one project (``dev`` then ``prod`` by ``triggeredOn``):

* ``delivery`` on ``carts``: deployment, evaluation (built-in lighthouse, no SLI provider),
  a manual approval decided by an ``approval.finished`` event, release; then the deliveries of
  ``prod`` and ``prod-eu`` side by side (the context must end after the second one);
* two ``delivery`` triggers on ``orders`` at once: the second waits in the service's queue;
* ``remediation`` on ``carts``: get-action (built-in, from ``remediation.yaml``), action,
  evaluation;
* ``notify`` on ``orders``: one task answered by the built-in webhook service, which calls an
  HTTP receiver in this process (allow-listed with ``CAPSTAN_WEBHOOK_ALLOW_LIST``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from temporalio.client import Client

from capstan.sdk import Integration, TaskContext
from tests.chaos.faults import TOKEN, FaultStack, _dispose, _fresh_dir

SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: shipyard-replay}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks:
            - {name: deployment}
            - {name: evaluation, properties: {timeframe: 5m}}
            - {name: approval, properties: {pass: manual, warning: manual}}
            - {name: release}
        - name: remediation
          tasks:
            - {name: get-action}
            - {name: action}
            - {name: evaluation, properties: {timeframe: 1m}}
        - name: notify
          tasks: [{name: notify}]
    - name: prod
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}, {name: release}]
    - name: prod-eu
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}]
"""
REMEDIATION = """apiVersion: spec.keptn.sh/0.1.4
kind: Remediation
metadata: {name: carts-remediation}
spec:
  remediations:
    - problemType: Response time degradation
      actionsOnOpen:
        - {name: Scale up, action: scaling, description: Scale up by one, value: "1"}
"""
WEBHOOK = """apiVersion: webhookconfig.keptn.sh/v1beta1
kind: WebhookConfig
metadata: {name: webhook-configuration}
spec:
  webhooks:
    - type: sh.keptn.event.notify.triggered
      subscriptionID: "%(subscription)s"
      sendFinished: true
      requests:
        - url: http://127.0.0.1:%(port)d/hook
          method: POST
          headers: [{key: Content-Type, value: application/json}]
          payload: '{"project": "{{.data.project}}", "service": "{{.data.service}}"}'
"""
APPROVAL = "sh.keptn.event.approval.triggered"


@contextlib.contextmanager
def hook_receiver() -> Iterator[tuple[int, list[bytes]]]:
    """The system a webhook calls: an HTTP server on loopback answering JSON; yields port and bodies."""
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers.get("content-length", 0))))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", "11")
            self.end_headers()
            self.wfile.write(b'{"ok":true}')

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class CodeStack(FaultStack):
    """The fault suite's stack, with the worker and the gateway imported from another code tree."""

    def __init__(self, data_dir: Path, code: Path, allow: str) -> None:
        self.code = code
        self.allow = allow
        super().__init__(data_dir)
        for proc in (self.worker, self.gateway):
            # -P: the working directory (this checkout) is not put first on sys.path, so the
            # modules come from PYTHONPATH, the other tree.
            proc.argv = [sys.executable, "-P", *proc.argv[1:]]

    def _base_env(self) -> dict[str, str]:
        env = super()._base_env()
        env["PYTHONPATH"] = str(self.code)
        return env

    def _capstan_env(self) -> dict[str, str]:
        env = super()._capstan_env()
        env["CAPSTAN_WEBHOOK_ALLOW_LIST"] = self.allow  # the webhook's receiver is on loopback
        return env


@contextlib.asynccontextmanager
async def code_stack(code: Path, allow: str) -> AsyncIterator[CodeStack]:
    """A started :class:`CodeStack` on a fresh temp dir; stopped and removed on exit."""
    stack = CodeStack(_fresh_dir(), code, allow)
    try:
        await stack.start()
        yield stack
    finally:
        await _dispose(stack)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def _post(api: httpx.AsyncClient, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = await api.post(path, json=body)
    if response.status_code != status:
        raise AssertionError(f"POST {path}: {response.status_code} {response.text}")
    answer: dict[str, Any] = response.json()
    return answer


async def _setup(api: httpx.AsyncClient, project: str, hook_port: int) -> None:
    await _post(api, "/controlPlane/v1/project", {"name": project, "shipyard": _b64(SHIPYARD)}, 201)
    for service in ("carts", "orders"):
        await _post(api, f"/controlPlane/v1/project/{project}/service", {"serviceName": service})
    # the built-in webhook service answers notify.triggered (webhooks.md, "Setting one up")
    found = await api.get("/controlPlane/v1/uniform/registration", params={"name": "webhook-service"})
    webhook_service = found.json()[0]["id"]
    subscription = {"event": "sh.keptn.event.notify.triggered", "filter": {"projects": [project]}}
    path = f"/controlPlane/v1/uniform/registration/{webhook_service}/subscription"
    subscription_id = (await _post(api, path, subscription, 201))["id"]
    webhook = WEBHOOK % {"subscription": subscription_id, "port": hook_port}
    hooks = {"resources": [{"resourceURI": "webhook/webhook.yaml", "resourceContent": _b64(webhook)}]}
    await _post(api, f"/resource-service/v1/project/{project}/resource", hooks, 201)
    resources = {"resources": [{"resourceURI": "remediation.yaml", "resourceContent": _b64(REMEDIATION)}]}
    await _post(
        api, f"/resource-service/v1/project/{project}/stage/dev/service/carts/resource", resources, 201
    )


async def _trigger(api: httpx.AsyncClient, project: str, sequence: str, service: str, **data: Any) -> str:
    event = {
        "id": str(uuid.uuid4()),
        "type": f"sh.keptn.event.dev.{sequence}.triggered",
        "source": "recorder",
        "data": {"project": project, "stage": "dev", "service": service, **data},
    }
    context: str = (await _post(api, "/v1/event", event))["keptnContext"]
    return context


async def _approve_all(api: httpx.AsyncClient, project: str, stop: asyncio.Event) -> None:
    """Approve every open approval of the project by Keptn's event, as the Bridge did."""
    decided: set[str] = set()
    while not stop.is_set():
        response = await api.get(f"/controlPlane/v1/event/triggered/{APPROVAL}", params={"project": project})
        for event in response.json().get("events", []) if response.status_code == 200 else []:
            if event["id"] in decided:
                continue
            decided.add(event["id"])
            data = {k: event["data"][k] for k in ("project", "stage", "service")}
            answer = {
                "type": "sh.keptn.event.approval.finished",
                "source": "recorder-approver",
                "triggeredid": event["id"],
                "shkeptncontext": event["shkeptncontext"],
                "data": {**data, "status": "succeeded", "result": "pass"},
            }
            await _post(api, "/v1/event", answer)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.3)


async def _until_finished(database_url: str, expected: dict[str, str], within: float) -> None:
    """Wait until the store has, for each context, the sequence ``.finished`` named for it."""
    deadline = time.monotonic() + within
    conn = await asyncpg.connect(database_url)
    try:
        while time.monotonic() < deadline:
            rows = await conn.fetch(
                "SELECT shkeptncontext, type, event FROM events WHERE shkeptncontext = ANY($1::text[])",
                list(expected),
            )
            seen = {(row["shkeptncontext"], row["type"]): row["event"] for row in rows}
            if all((context, kind) in seen for context, kind in expected.items()):
                for key in expected.items():
                    data = json.loads(seen[key])["data"]
                    if data.get("result") != "pass":
                        raise AssertionError(f"{key[1]} of {key[0]} did not pass: {data}")
                return
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    raise AssertionError(f"the scenarios did not finish within {within:.0f} s")


async def run_scenarios(api_url: str, database_url: str, project: str, hook_port: int) -> list[str]:
    """Run every scenario to its end through the API; return the Keptn contexts."""
    async with httpx.AsyncClient(base_url=api_url, headers={"x-token": TOKEN}, timeout=15) as api:
        await _setup(api, project, hook_port)
        integration = Integration("recorder", api_url=api_url, token=TOKEN, poll_interval=0.2)

        async def handle(ctx: TaskContext) -> dict[str, Any]:
            return {ctx.task: {"by": "recorder"}}

        for task in ("deployment", "release", "action"):
            integration.task(task, projects=[project])(handle)
        stop = asyncio.Event()
        async with integration.running():
            await asyncio.wait_for(integration.wait_until_registered(), 30)
            approver = asyncio.create_task(_approve_all(api, project, stop))
            try:
                delivered = "sh.keptn.event.prod.delivery.finished"
                expected = {await _trigger(api, project, "delivery", "carts"): delivered}
                for _ in range(2):  # the second one waits in orders' queue
                    expected[await _trigger(api, project, "delivery", "orders")] = delivered
                problem = {
                    "problemTitle": "Response time degradation",
                    "rootCause": "Response time degradation",
                }
                remediation = await _trigger(api, project, "remediation", "carts", problem=problem)
                expected[remediation] = "sh.keptn.event.dev.remediation.finished"
                notify = await _trigger(api, project, "notify", "orders")
                expected[notify] = "sh.keptn.event.dev.notify.finished"
                await _until_finished(database_url, expected, within=240)
                side_by_side = "sh.keptn.event.prod-eu.delivery.finished"
                deliveries = [context for context, kind in expected.items() if kind == delivered]
                await _until_finished(database_url, dict.fromkeys(deliveries, side_by_side), within=60)
            finally:
                stop.set()
                await approver
    return list(expected)


async def fetch_histories(target: str, namespace: str) -> dict[str, str]:
    """Every workflow run's history in ``namespace`` as Temporal's JSON, by a file name."""
    client = await Client.connect(target, namespace=namespace)
    found = {}
    async for execution in client.list_workflows():
        history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        name = re.sub(
            r"[^A-Za-z0-9_.-]", "_", f"{execution.workflow_type}-{execution.id}-{execution.run_id[:8]}"
        )
        # compact: the files are committed, and read only by the replay test
        found[f"{name}.json"] = json.dumps(json.loads(history.to_json()), separators=(",", ":")) + "\n"
    return found


async def _contexts_closed(target: str, namespace: str, within: float) -> bool:
    """Wait until no context workflow runs; False if some still run after ``within`` seconds."""
    client = await Client.connect(target, namespace=namespace)
    query = "WorkflowType = 'KeptnContext' AND ExecutionStatus = 'Running'"
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not [execution async for execution in client.list_workflows(query)]:
            return True
        await asyncio.sleep(0.5)
    return False


def write_histories(histories: dict[str, str], out: Path) -> list[Path]:
    """Write the histories into ``out``; return the files."""
    out.mkdir(parents=True, exist_ok=True)
    for name, text in histories.items():
        (out / name).write_text(text)
    return [out / name for name in histories]


async def record(code: Path, out: Path) -> list[Path]:
    """Run the scenarios on ``code``'s worker and gateway and write their histories to ``out``."""
    with hook_receiver() as (hook_port, hooks_received):
        async with code_stack(code, f"127.0.0.1:{hook_port}") as stack:
            await run_scenarios(stack.api_url, stack.database_url, "replay", hook_port)
            if not hooks_received:
                raise AssertionError("the notify webhook was never called")
            # Let background work (pushes, state writes, lock hand-overs) settle before reading,
            # and the contexts end (versions before 'reap-while-waiting' leave some open for ever).
            await asyncio.sleep(3)
            await _contexts_closed(stack.temporal_target, "default", within=20)
            histories = await fetch_histories(stack.temporal_target, "default")
    return write_histories(histories, out)


def main(argv: list[str] | None = None) -> int:
    """Record histories; print what was written."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.replay.record", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--code", type=Path, required=True, help="root of the code tree to run")
    parser.add_argument("--out", type=Path, required=True, help="directory the histories are written to")
    args = parser.parse_args(argv)
    written = asyncio.run(record(args.code.resolve(), args.out))
    for path in sorted(written):
        print(path)  # noqa: T201
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
