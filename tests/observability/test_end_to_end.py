"""Traces and metrics of a real delivery: gateway and worker processes, a real OTLP receiver.

The processes are configured the way an operator does it, with ``OTEL_*`` and ``CAPSTAN_*``
variables only; spans arrive over OTLP/HTTP (protobuf) at a receiver in this test, the pushed
event at a real HTTP receiver, and the metrics are scraped from both processes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from capstan.sdk._events import answer_event, finished_data, scope_data
from capstan.telemetry import parse_traceparent, trace_id_for_context
from keptn.event_types import EventKind
from tests.fixtures.receiver import Receiver
from tests.observability.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver
from tests.observability.processes import Processes, control_plane
from tests.observability.prometheus_scrape import query_until, scraping_prometheus
from tests.workflows.stack import terminate_open_workflows

TOKEN = "otel-token"
METRICS_TOKEN = "scrape-me"
SHIPYARD = """apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {name: otel}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}]
"""


async def eventually(probe: Callable[[], Any], what: str, within: float = 20) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = probe()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def setup_project(api: httpx.AsyncClient, project: str, push_url: str) -> None:
    body = {"name": project, "shipyard": base64.b64encode(SHIPYARD.encode()).decode()}
    assert (await api.post("/controlPlane/v1/project", json=body)).status_code == 201
    service = await api.post(f"/controlPlane/v1/project/{project}/service", json={"serviceName": "carts"})
    assert service.status_code == 200, service.text
    registration = {
        "name": "deployer",
        "subscriptions": [
            {
                "event": "sh.keptn.event.deployment.triggered",
                "filter": {"projects": [project]},
                "url": push_url,
            }
        ],
    }
    registered = await api.post("/controlPlane/v1/uniform/registration", json=registration)
    assert registered.status_code in (200, 201), registered.text


async def run_delivery(
    api: httpx.AsyncClient, project: str, receiver: Receiver, incoming: str
) -> dict[str, Any]:
    """Trigger with a traceparent, answer the pushed task as an SDK integration does; return what happened."""
    trigger = {
        "type": "sh.keptn.event.dev.delivery.triggered",
        "source": "ci-pipeline",
        "traceparent": incoming,
        "data": {"project": project, "stage": "dev", "service": "carts"},
    }
    response = await api.post("/v1/event", json=trigger)
    assert response.status_code == 200, response.text
    context = response.json()["keptnContext"]
    pushed = await eventually(lambda: receiver.requests, "the pushed deployment.triggered")
    triggered = json.loads(pushed[0]["body"])
    answers = [
        answer_event(triggered, EventKind.STARTED, source="deployer", data=scope_data(triggered)),
        answer_event(triggered, EventKind.FINISHED, source="deployer", data=finished_data(triggered, None)),
    ]
    for answer in answers:
        answered = await api.post("/v1/event", json=answer)
        assert answered.status_code == 200, answered.text
    finished_type = "sh.keptn.event.dev.delivery.finished"

    async def finished() -> bool:
        found = await api.get(
            "/mongodb-datastore/event", params={"keptnContext": context, "type": finished_type}
        )
        return bool(found.json().get("events"))

    await eventually(finished, "the sequence to finish", within=30)
    events = await api.get("/mongodb-datastore/event", params={"keptnContext": context, "project": project})
    return {"context": context, "push": pushed[0], "events": events.json()["events"]}


async def test_one_trace_per_context_and_metrics_of_a_real_delivery(
    db_url: str, temporal_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path
) -> None:
    client = temporal_env.client
    queue = f"otel-{uuid.uuid4()}"
    project = f"otel-{uuid.uuid4().hex[:8]}"
    sender_trace, sender_span = secrets.randbits(128) | 1, secrets.randbits(64) | 1
    incoming = f"00-{sender_trace:032x}-{sender_span:016x}-01"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAPSTAN_", "OTEL_"))}
    with otlp_receiver() as otlp:
        env.update(
            CAPSTAN_DATABASE_URL=db_url,
            CAPSTAN_TEMPORAL_ADDRESS=client.service_client.config.target_host,
            CAPSTAN_TEMPORAL_TASK_QUEUE=queue,
            CAPSTAN_API_TOKEN=TOKEN,
            CAPSTAN_DATA_DIR=str(tmp_path / "data"),
            CAPSTAN_METRICS_TOKEN=METRICS_TOKEN,
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        async with control_plane(env, tmp_path / "logs") as plane:
            async with httpx.AsyncClient(
                base_url=plane.api_url, headers={"x-token": TOKEN}, timeout=10
            ) as api:
                await setup_project(api, project, receiver.url)
                try:
                    seen = await run_delivery(api, project, receiver, incoming)
                finally:
                    await terminate_open_workflows(client, queue)
                await check_traces(otlp, seen, sender_trace, sender_span)
                await check_metrics(plane)
                await check_prometheus_scrapes(plane, tmp_path)


async def check_traces(otlp: OtlpReceiver, seen: dict[str, Any], sender_trace: int, sender_span: int) -> None:
    context = seen["context"]
    # a new context started by a traced event continues the sender's trace
    assert trace_id_for_context(context) == sender_trace == uuid.UUID(context).int
    trace_id = sender_trace

    def in_trace() -> list[ReceivedSpan]:
        spans = [span for span in otlp.received() if span.trace_id == trace_id]
        names = {span.name for span in spans}
        wanted = {
            "receive sh.keptn.event.dev.delivery.triggered",
            "SignalWithStartWorkflow:KeptnContext",
            "RunWorkflow:KeptnContext",
            "RunActivity:emit_event",
            "push sh.keptn.event.deployment.triggered",
            "receive sh.keptn.event.deployment.finished",
        }
        return spans if wanted <= names else []

    try:
        spans = await eventually(in_trace, "the spans of the context's trace")
    except AssertionError:
        got = sorted((s.service, s.name, s.trace_id == trace_id) for s in otlp.received())
        raise AssertionError(f"spans received: {got}") from None
    by_name: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    # gateway and worker both report into the one trace
    assert {span.service for span in spans} >= {"capstan-gateway", "capstan-worker"}
    trigger_span = by_name["receive sh.keptn.event.dev.delivery.triggered"][0]
    assert trigger_span.service == "capstan-gateway"
    assert trigger_span.parent_span_id == sender_span, "the incoming traceparent is the parent"
    assert trigger_span.attributes["keptn.context"] == context

    # the push: one span, whose id is in the HTTP header and in the pushed event alike
    push_span = by_name["push sh.keptn.event.deployment.triggered"][0]
    assert push_span.service == "capstan-worker"
    header = seen["push"]["headers"].get("traceparent") or seen["push"]["headers"].get("Traceparent")
    body = json.loads(seen["push"]["body"])
    assert header == body["traceparent"]
    pushed = parse_traceparent(header)
    assert pushed is not None and (pushed.trace_id, pushed.span_id) == (trace_id, push_span.span_id)

    # every event the control plane emitted carries a traceparent of an emit_event span in the trace
    emit_spans = {span.span_id for span in by_name["RunActivity:emit_event"]}
    emitted = [e for e in seen["events"] if e["source"] == "shipyard-controller"]
    assert emitted, seen["events"]
    for event in emitted:
        parent = parse_traceparent(event.get("traceparent"))
        assert parent is not None, event
        assert parent.trace_id == trace_id and parent.span_id in emit_spans, event

    # the SDK's answer carried the pushed task's traceparent on: the push span is its parent
    answer_span = by_name["receive sh.keptn.event.deployment.finished"][0]
    assert answer_span.parent_span_id == push_span.span_id


async def check_metrics(plane: Processes) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        denied = await http.get(plane.api_url.removesuffix("/api") + "/metrics")
        assert denied.status_code == 401
        auth = {"authorization": f"Bearer {METRICS_TOKEN}"}
        gateway = await http.get(plane.api_url.removesuffix("/api") + "/metrics", headers=auth)
        assert gateway.status_code == 200, gateway.text
        assert (await http.get(f"{plane.worker_metrics_url}/metrics")).status_code == 401
        worker = await http.get(f"{plane.worker_metrics_url}/metrics", headers=auth)
        assert worker.status_code == 200
        assert (await http.get(f"{plane.worker_metrics_url}/healthz")).status_code == 200
    scraped = samples(gateway.text)
    count = "capstan_http_request_duration_seconds_count"
    # the trigger and two answers, by route template and status
    assert value(scraped, count, method="POST", route="/api/v1/event", status="200") == 3
    assert value(scraped, count, method="POST", route="/api/controlPlane/v1/project", status="201") == 1
    services = "/api/controlPlane/v1/project/{project}/service"
    assert value(scraped, count, method="POST", route=services, status="200") == 1
    assert value(scraped, "capstan_events_ingested_total", kind="sequence.triggered", outcome="stored") == 1
    assert value(scraped, "capstan_events_ingested_total", kind="task.finished", outcome="stored") == 1
    assert value(scraped, "capstan_sequences", state="finished") == 1
    assert value(scraped, "capstan_task_duration_seconds_count", task="deployment", result="pass") == 1
    worker_scraped = samples(worker.text)
    assert value(worker_scraped, "capstan_events_emitted_total", kind="task.triggered") == 1
    assert value(worker_scraped, "capstan_events_emitted_total", kind="sequence.finished") == 1
    assert value(worker_scraped, "capstan_push_deliveries_total", outcome="ok") == 1


async def check_prometheus_scrapes(plane: Processes, tmp_path: Path) -> None:
    """A real Prometheus scrapes both processes with the bearer token and reads the values."""
    targets = {
        "capstan-gateway": plane.api_url.removeprefix("http://").removesuffix("/api"),
        "capstan-worker": plane.worker_metrics_url.removeprefix("http://"),
    }
    async with scraping_prometheus(targets, METRICS_TOKEN, tmp_path) as prometheus:
        await query_until(prometheus, 'up{job="capstan-gateway"}', 1)
        await query_until(prometheus, 'up{job="capstan-worker"}', 1)
        await query_until(prometheus, 'capstan_sequences{state="finished"}', 1)
        await query_until(prometheus, 'capstan_push_deliveries_total{outcome="ok"}', 1)
