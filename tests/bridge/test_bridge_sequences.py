"""The sequence list, the timeline (model, page, payloads) and its live stream."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx
from temporalio.testing import WorkflowEnvironment

from api.bridge.timeline import build_timeline, worst
from tests.bridge.helpers import login, testids
from tests.bridge.stack_helpers import bridge_stack, sequence_state, wait_for_page
from tests.workflows.stack import TOKEN

CTX = "ctx-1"


def event(event_id: str, event_type: str, second: int, **data: Any) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "id": event_id,
        "type": f"sh.keptn.event.{event_type}",
        "source": "shipyard-controller" if event_type.count(".") == 2 else "helm-service",
        "time": f"2026-01-01T00:00:{second:02d}.000Z",
        "shkeptncontext": CTX,
        "data": {"project": "p", "service": "carts", **data},
    }
    if "triggeredid" in data:
        wire["triggeredid"] = data.pop("triggeredid")
        wire["data"].pop("triggeredid")
    return wire


def test_the_timeline_groups_events_into_stages_tasks_and_answers():
    events = [
        event("s1", "dev.delivery.triggered", 0, stage="dev"),
        event("d1", "deployment.triggered", 1, stage="dev"),
        # an answer stored with an earlier time than its trigger still belongs to it
        event("d1s", "deployment.started", 1, stage="dev", triggeredid="d1"),
        event("d1f", "deployment.finished", 5, stage="dev", triggeredid="d1", result="pass"),
        event("e1", "evaluation.triggered", 6, stage="dev"),
        event("e1f", "evaluation.finished", 9, stage="dev", triggeredid="e1", result="warning"),
        event("s1f", "dev.delivery.finished", 10, stage="dev", result="warning"),
        event("s2", "prod.delivery.triggered", 11, stage="prod"),
        event("d2", "deployment.triggered", 12, stage="prod"),
        event("d2s", "deployment.started", 13, stage="prod", triggeredid="d2"),
        event("x", "deployment.started", 14, stage="prod", triggeredid="unknown"),
    ]
    timeline = build_timeline(CTX, list(reversed(events)))  # any order in
    assert [s.name for s in timeline.stages] == ["dev", "prod"]
    dev, prod = timeline.stages
    assert dev.sequence == "delivery" and dev.state == "finished" and dev.result == "warning"
    assert dev.duration == 10.0
    assert [(t.name, t.state, t.result) for t in dev.tasks] == [
        ("deployment", "finished", "pass"),
        ("evaluation", "finished", "warning"),
    ]
    assert [e.id for e in dev.tasks[0].events] == ["d1", "d1s", "d1f"]
    assert dev.tasks[0].duration == 4.0 and dev.tasks[0].events[2].source == "helm-service"
    assert [(t.name, t.state, t.result, t.duration) for t in prod.tasks] == [
        ("deployment", "started", "", None)
    ]
    assert prod.state == "running" and prod.result == "" and prod.duration is None
    assert [e.id for e in prod.other_events] == ["x"]
    assert timeline.result == "warning" and timeline.task("d2") is prod.tasks[0]
    assert worst(["pass", "fail", "warning", ""]) == "fail" and worst([]) == ""


async def test_sequence_list_filters_by_state_name_and_stage(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
):
    async with bridge_stack(db_url, pool, temporal_env.client) as (stack, page):
        done = await stack.trigger(stack.project, "dev", "gated", "carts")  # the approval waits unanswered
        await stack.next_triggered("approval", project=stack.project)
        context = await stack.trigger(stack.project, "dev", "delivery", "carts")
        await stack.answer(await stack.next_triggered("deployment", project=stack.project))
        await stack.answer(await stack.next_triggered("evaluation", project=stack.project), result="fail")
        await stack.finished(context, "dev", "delivery")

        url = f"/project/{stack.project}/sequences"
        html = await wait_for_page(
            page, url + "?state=finished", lambda text: f'data-context="{context}"' in text
        )
        rows = testids(html, "sequence-row")
        assert [r["data-context"] for r in rows] == [context]
        [state] = testids(html, "sequence-state")
        assert state["text"] == "finished"
        [result] = testids(html, "sequence-result")
        assert result["text"] == "fail"
        assert f'href="/project/{stack.project}/sequence/{context}"' in html
        assert 'sse-connect="/project/' in html and 'sse-swap="sequences"' in html

        everything = await page.get(url)
        assert [r["data-context"] for r in testids(everything.text, "sequence-row")] == [context, done]
        started = await page.get(url, params={"state": "started"})
        assert [r["data-context"] for r in testids(started.text, "sequence-row")] == [done]
        named = await page.get(url, params={"name": "gated", "state": ""})
        assert [r["data-context"] for r in testids(named.text, "sequence-row")] == [done]
        nothing = await page.get(url, params={"stage": "prod", "service": "carts"})
        assert testids(nothing.text, "sequence-row") == []  # the failed delivery never reached prod
        in_dev = await page.get(url, params={"stage": "dev", "state": "started"})
        assert [r["data-context"] for r in testids(in_dev.text, "sequence-row")] == [done]
        other_service = await page.get(url, params={"service": "orders"})
        assert testids(other_service.text, "sequence-row") == []
        by_service = await page.get(url, params={"service": "carts"})
        assert len(testids(by_service.text, "sequence-row")) == 2
        bad = await page.get(url, params={"state": "sleeping"})
        assert bad.status_code == 400 and "state must be one of" in bad.text


async def test_timeline_shows_stages_tasks_events_and_payloads(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
):
    async with bridge_stack(db_url, pool, temporal_env.client) as (stack, page):
        context = await stack.trigger(stack.project, "dev", "delivery", "carts")
        deployment = await stack.next_triggered("deployment", project=stack.project)
        await stack.answer(deployment, source="helm-service")
        await stack.answer(await stack.next_triggered("evaluation", project=stack.project), result="warning")
        await stack.finished(context, "dev", "delivery")
        await stack.next_triggered("deployment", project=stack.project, stage="prod")  # prod runs on

        url = f"/project/{stack.project}/sequence/{context}"
        html = await wait_for_page(page, url, lambda text: sequence_state(text) == "started")
        assert [s["data-stage"] for s in testids(html, "stage")] == ["dev", "prod"]
        tasks = [(t["data-task"], t["data-state"], t["data-result"]) for t in testids(html, "task")]
        assert tasks == [
            ("deployment", "finished", "pass"),
            ("evaluation", "finished", "warning"),
            ("deployment", "triggered", ""),
        ]
        types = [e["data-event-type"] for e in testids(html, "event")]
        assert types[:4] == [
            "sh.keptn.event.dev.delivery.triggered",
            "sh.keptn.event.deployment.triggered",
            "sh.keptn.event.deployment.started",
            "sh.keptn.event.deployment.finished",
        ]
        assert (
            "sh.keptn.event.dev.delivery.finished" in types
            and "sh.keptn.event.prod.delivery.triggered" in types
        )
        started = next(
            e for e in testids(html, "event") if e["data-event-type"].endswith("deployment.started")
        )
        assert "helm-service" in started["text"]
        [result] = testids(html, "sequence-result")
        assert result["text"] == "warning"
        [link] = testids(html, "temporal-link")
        assert link["href"] == (
            f"http://127.0.0.1:8233/namespaces/default/workflows/keptn-{stack.project}-{context}"
        )
        assert f'sse-connect="/project/{stack.project}/sequence/{context}/stream?v=' in html
        assert 'sse-swap="timeline"' in html
        payloads = testids(html, "payload")
        assert payloads[1]["hx-get"] == f"/project/{stack.project}/event/{deployment['id']}"

        payload = await page.get(payloads[1]["hx-get"])
        assert payload.status_code == 200
        assert deployment["id"] in payload.text and "&#34;project&#34;" in payload.text
        missing = await page.get(f"/project/{stack.project}/event/nope")
        assert missing.status_code == 404
        unknown = await page.get(f"/project/{stack.project}/sequence/no-such-context")
        assert unknown.status_code == 404 and "no-such-context" in unknown.text


async def next_push(lines: Any, event_name: str, within: float) -> str:
    """The HTML of the next SSE message named ``event_name``."""
    deadline = time.monotonic() + within
    name, data = "", []
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(anext(lines), timeout=max(0.1, deadline - time.monotonic()))
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])
        elif line == "":
            if name == event_name:
                return "\n".join(data)
            name, data = "", []
    raise AssertionError(f"no {event_name} pushed within {within}s")


async def push_with(lines: Any, event_name: str, needle: str, within: float = 10) -> str:
    """The first SSE message named ``event_name`` whose HTML contains ``needle``."""
    deadline = time.monotonic() + within
    while True:
        pushed = await next_push(lines, event_name, within=max(0.1, deadline - time.monotonic()))
        if needle in pushed:
            return pushed


async def test_the_timeline_stream_pushes_new_events(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
):
    async with bridge_stack(db_url, pool, temporal_env.client, serve=True) as (stack, _):
        assert stack.base_url is not None
        context = await stack.trigger(stack.project, "dev", "delivery", "carts")
        deployment = await stack.next_triggered("deployment", project=stack.project)
        stream = f"/project/{stack.project}/sequence/{context}/stream"
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as browser:
            await login(browser, TOKEN)
            async with browser.stream("GET", stream) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                lines = response.aiter_lines()
                first = await next_push(lines, "timeline", within=10)
                assert 'data-event-type="sh.keptn.event.deployment.triggered"' in first
                assert "deployment.started" not in first
                await stack.answer(deployment, finished=False)
                pushed = await push_with(lines, "timeline", "sh.keptn.event.deployment.started")
                assert 'data-testid="task" data-task="deployment" data-state="started"' in pushed

            # a client that already shows the current version gets nothing until something changes
            current = await browser.get(f"/project/{stack.project}/sequence/{context}")
            version = current.text.split(f"{stream}?v=", 1)[1].split('"', 1)[0]
            async with browser.stream("GET", stream, params={"v": version}) as response:
                lines = response.aiter_lines()
                await stack.answer(deployment, started=False)
                pushed = await next_push(lines, "timeline", within=10)  # nothing before the change
                assert "sh.keptn.event.deployment.finished" in pushed


async def test_the_sequence_list_stream_pushes_new_sequences(
    db_url: str, pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
):
    async with bridge_stack(db_url, pool, temporal_env.client, serve=True) as (stack, _):
        assert stack.base_url is not None
        first = await stack.trigger(stack.project, "dev", "delivery", "carts")
        await stack.next_triggered("deployment", project=stack.project)
        url = f"/project/{stack.project}/sequences"
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as browser:
            await login(browser, TOKEN)
            html = await wait_for_page(browser, url, lambda text: f'data-context="{first}"' in text)
            stream = html.split(f'sse-connect="{url}/stream?', 1)[1].split('"', 1)[0]
            assert stream.startswith("v=")
            async with browser.stream("GET", f"{url}/stream?{stream}") as response:
                assert response.status_code == 200
                lines = response.aiter_lines()
                second = await stack.trigger(stack.project, "dev", "gated", "carts")
                rows: list[str] = []
                while second not in rows:  # an earlier push may show an earlier change
                    pushed = await next_push(lines, "sequences", within=10)
                    rows = [r["data-context"] for r in testids(pushed, "sequence-row")]
                assert rows == [second, first]
