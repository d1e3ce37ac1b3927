"""The ``end_to_end`` phase of :mod:`bench.evaluations`: quality gates through the real stack.

A project with one stage ``dev`` and one service per concurrency slot (the queue lock is per
project/stage/service, so evaluations of one service run one after the other), each with the same
``slo.yaml`` and ``previous`` earlier ``evaluation.finished`` events posted through the API. The
project's SLI provider is ``bench-sli``, not a built-in one: an SDK integration in this process
answers ``get-sli.triggered`` in push mode with one value per objective. Evaluations are triggered
with ``POST /controlPlane/v1/project/{p}/stage/dev/service/{svc}/evaluation``; an observer with a
push subscription learns when lighthouse's ``evaluation.finished`` and the sequence's end arrive,
and when they were stored is read from PostgreSQL afterwards, with the events themselves, which
are checked.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.client import Client

from bench.evaluation_data import previous_evaluation_data, sli_values, slo_yaml
from bench.evaluation_report import (
    EVALUATION_FINISHED,
    LIGHTHOUSE,
    SEQUENCE_FINISHED,
    STAGE,
    TASK,
    Run,
    check,
    metrics,
    profile,
    stored_events,
)
from bench.recorder import drive, sample
from bench.stack import Stack
from capstan.sdk import Integration, TaskContext
from capstan.sdk._push import PushServer

log = logging.getLogger("bench.evaluations")

PROVIDER = "bench-sli"
SHIPYARD = f"""apiVersion: spec.keptn.sh/0.2.4
kind: Shipyard
metadata: {{name: shipyard-bench-evaluations}}
spec:
  stages:
    - name: {STAGE}
"""
HEARTBEAT_S = 10.0


async def _setup(http: httpx.AsyncClient, project: str, services: list[str], slo: str) -> None:
    shipyard = base64.b64encode(SHIPYARD.encode()).decode()
    created = await http.post("/controlPlane/v1/project", json={"name": project, "shipyard": shipyard})
    created.raise_for_status()
    content = base64.b64encode(slo.encode()).decode()
    for service in services:
        added = await http.post(f"/controlPlane/v1/project/{project}/service", json={"serviceName": service})
        added.raise_for_status()
        stored = await http.post(
            f"/resource-service/v1/project/{project}/stage/{STAGE}/service/{service}/resource",
            json={"resources": [{"resourceURI": "slo.yaml", "resourceContent": content}]},
        )
        stored.raise_for_status()
    configured = await http.post(
        "/v1/event",
        json={
            "type": "sh.keptn.event.monitoring.configure",
            "source": "bench",
            "specversion": "1.0",
            "data": {"project": project, "service": services[0], "type": PROVIDER},
        },
    )
    configured.raise_for_status()


async def _seed(
    http: httpx.AsyncClient, project: str, services: list[str], *, objectives: int, previous: int
) -> bool:
    """Post ``previous`` earlier ``evaluation.finished`` events per service; False if the API refuses."""
    slots = asyncio.Semaphore(8)
    refused = False

    async def post(service: str, index: int) -> None:
        nonlocal refused
        scope = {"project": project, "stage": STAGE, "service": service}
        event = {
            "type": EVALUATION_FINISHED,
            "source": LIGHTHOUSE,
            "specversion": "1.0",
            "shkeptncontext": str(uuid.uuid4()),
            "triggeredid": str(uuid.uuid4()),
            "data": previous_evaluation_data(scope, objectives, seed=1000 + index),
        }
        async with slots:
            if refused:
                return
            answer = await http.post("/v1/event", json=event)
            if answer.status_code == 400:
                log.warning("the API refused a previous evaluation.finished: %s", answer.text)
                refused = True
                return
            answer.raise_for_status()

    for index in range(previous):  # oldest first, so the store's time order is the seeding order
        await asyncio.gather(*(post(service, index) for service in services))
        if refused:
            return False
    return True


def _provider(stack: Stack, project: str, run: Run, *, objectives: int, slots: int) -> Integration:
    integration = Integration(
        PROVIDER,
        api_url=stack.api_url,
        token=stack.token,
        mode="push",
        port=0,
        heartbeat_interval=HEARTBEAT_S,
        max_concurrency=slots,
        shutdown_grace=5.0,
    )
    answered = 0

    @integration.task(TASK, projects=[project], auto_response=False)
    async def handle(ctx: TaskContext) -> None:
        nonlocal answered
        key = (ctx.keptn_context, TASK)
        run.recorder.arrived.setdefault(key, time.time())
        window = ctx.data.get("get-sli") or {}
        run.indicators_asked[ctx.keptn_context] = len(window.get("indicators") or [])
        answered += 1
        values = sli_values(objectives, seed=answered)
        await ctx.send_started()
        run.recorder.answer_sent[key] = time.time()
        sli = {"start": window.get("start", ""), "end": window.get("end", ""), "indicatorValues": values}
        run.recorder.answer_ids[key] = await ctx.send_finished({"get-sli": sli})
        run.recorder.answer_returned[key] = time.time()

    return integration


def _observer_app(run: Run) -> Starlette:
    released: set[str] = set()

    async def receive(request: Request) -> JSONResponse:
        now = time.time()
        event = json.loads(await request.body())
        context = str(event.get("shkeptncontext"))
        if context in run.service:
            if event.get("type") == EVALUATION_FINISHED and event.get("source") == LIGHTHOUSE:
                run.evaluation_seen.setdefault(context, now)
            elif event.get("type") == SEQUENCE_FINISHED and context not in released:
                released.add(context)
                run.free.put_nowait(run.service[context])
                run.recorder.mark_done(context, now)
        return JSONResponse({}, status_code=200)

    return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])


@contextlib.asynccontextmanager
async def _observer(http: httpx.AsyncClient, project: str, run: Run) -> AsyncIterator[None]:
    server = PushServer(_observer_app(run), host="127.0.0.1", port=0)
    await server.start()
    url = f"http://127.0.0.1:{server.port}/"
    body = {
        "name": f"bench-observer-{project}",
        "metadata": {"hostname": "bench", "distributorversion": "bench", "location": "control-plane"},
        "subscriptions": [
            {"event": kind, "filter": {"projects": [project]}, "url": url}
            for kind in (EVALUATION_FINISHED, SEQUENCE_FINISHED)
        ],
    }
    registered = await http.post("/controlPlane/v1/uniform/registration", json=body)
    registered.raise_for_status()
    integration_id = registered.json()["id"]

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            with contextlib.suppress(httpx.HTTPError):
                await http.put(f"/controlPlane/v1/uniform/registration/{integration_id}/ping")

    beating = asyncio.create_task(heartbeat())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await server.stop()


async def run_end_to_end(
    stack: Stack,
    *,
    count: int,
    concurrency: int,
    objectives: int,
    previous: int,
    warmup: int,
    evaluation_timeout: float,
    sampled: int,
) -> dict[str, Any]:
    """Run the Capstan side of the end-to-end phase and return its metrics.

    Args:
        stack: the running ``capstan up``.
        count: evaluations to measure.
        concurrency: evaluations in flight (and services).
        objectives: SLO objectives (and SLI values per answer).
        previous: earlier evaluations per service, and ``number_of_comparison_results``.
        warmup: evaluations run first and not measured.
        evaluation_timeout: seconds one evaluation may take.
        sampled: how many evaluations' workflow histories to break down.
    """
    project = f"bench-eval-{uuid.uuid4().hex[:8]}"
    services = [f"svc-{i}" for i in range(min(concurrency, count))]
    run = Run()
    for service in services:
        run.free.put_nowait(service)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers={"x-token": stack.token}, timeout=30.0, limits=limits
    ) as http:
        began = time.perf_counter()
        await _setup(http, project, services, slo_yaml(objectives, previous))
        seeded = await _seed(http, project, services, objectives=objectives, previous=previous)
        setup_s = time.perf_counter() - began

        async def trigger(_index: int) -> str:
            service = await asyncio.wait_for(run.free.get(), evaluation_timeout)
            path = f"/controlPlane/v1/project/{project}/stage/{STAGE}/service/{service}/evaluation"
            sent = time.time()
            accepted = await http.post(path, json={"timeframe": "5m"})
            now = time.time()
            if accepted.is_error:
                run.free.put_nowait(service)
                accepted.raise_for_status()
            context = str(accepted.json()["keptnContext"])
            run.service[context] = service
            run.recorder.trigger_sent[context] = sent
            run.recorder.trigger_accepted[context] = now
            return context

        provider = _provider(stack, project, run, objectives=objectives, slots=max(10, 2 * concurrency))
        async with provider.running(), _observer(http, project, run):
            await asyncio.wait_for(provider.wait_until_registered(), 30)
            if not seeded:
                log.info("end to end: %d real evaluations per service as previous ones", previous)
                for _ in range(previous):
                    await drive(
                        len(services),
                        len(services),
                        trigger,
                        run.recorder,
                        sequence_timeout=evaluation_timeout,
                    )
            if warmup:
                log.info("end to end: %d warm-up evaluations", warmup)
                await drive(warmup, concurrency, trigger, run.recorder, sequence_timeout=evaluation_timeout)
            log.info("end to end: %d evaluations, %d at a time", count, concurrency)
            result = await drive(
                count, concurrency, trigger, run.recorder, sequence_timeout=evaluation_timeout
            )
    keys = result.keys
    stored = await stored_events(stack, project)
    report = metrics(run, stored, keys, count=count, failed=result.failed, wall_s=result.wall_s)
    report["check"] = check(run, stored, keys, objectives=objectives, previous=previous)
    report["setup"] = {
        "services": len(services),
        "previous_per_service": previous,
        "seeded_by": "events" if seeded else "evaluations",
        "setup_s": round(setup_s, 2),
    }
    client = await Client.connect(stack.temporal_target)
    report["profile"] = await profile(client, project, run, stored, sample(keys, sampled))
    return report
