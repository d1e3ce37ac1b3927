"""Pull mode: paging, handled once, filters, concurrency limit, shutdown, polling errors."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from capstan.sdk import TaskContext
from tests.sdk.conftest import MakeIntegration
from tests.sdk.fakes import FINISHED, STARTED, answers_to, run_until_answered, triggered, wait_for


async def test_each_event_is_handled_once_across_polls_and_pages(make_integration: MakeIntegration, cp):
    integration = make_integration()
    handled: list[str] = []

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        handled.append(ctx.triggered_id)
        return {}

    cp.close_answered = False  # the events stay listed, as if the control plane were slow
    events = [triggered(event_id=f"e{i}") for i in range(5)]
    cp.add(*events)
    async with integration.running():
        await wait_for(lambda: len(cp.posted) == 10, "all answers")
        polls = len(cp.calls_to("GET", "/event/triggered/"))
        await wait_for(lambda: len(cp.calls_to("GET", "/event/triggered/")) > polls + 6, "more polls")
    assert sorted(handled) == [e["id"] for e in events]
    assert {c.params.get("nextPageKey") for c in cp.calls_to("GET", "/event/triggered/")} == {None, "2", "4"}


async def test_poll_query_carries_single_valued_filters(make_integration: MakeIntegration, cp):
    integration = make_integration()

    @integration.task("deployment", projects=["sockshop"], stages=["dev", "staging"])
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        return {}

    @integration.task("test", stages=["dev"], services=["carts"])
    async def test(ctx: TaskContext) -> dict[str, Any]:
        return {}

    wanted = triggered(stage="staging")
    other_stage = triggered(stage="prod")
    other_project = triggered(project="elsewhere")
    cp.add(wanted, other_stage, other_project)
    async with integration.running():
        await wait_for(lambda: len(answers_to(cp, wanted)) == 2, "answers")
        await asyncio.sleep(0.1)
    params = {c.path.rsplit("/", 1)[-1]: c.params for c in cp.calls_to("GET", "/event/triggered/")}
    assert params["sh.keptn.event.deployment.triggered"] == {"project": "sockshop"}
    assert params["sh.keptn.event.test.triggered"] == {"stage": "dev", "service": "carts"}
    # the control plane filtered by project; the two-stage filter was applied by the SDK
    assert answers_to(cp, other_stage) == [] and answers_to(cp, other_project) == []


async def test_concurrency_limit_leaves_the_rest_for_later(make_integration: MakeIntegration, cp):
    integration = make_integration(max_concurrency=2)
    running = 0
    peak = 0
    release = asyncio.Event()

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        return {}

    events = [triggered(event_id=f"e{i}") for i in range(5)]
    cp.add(*events)
    async with integration.running():
        await wait_for(lambda: running == 2, "two handlers running")
        await asyncio.sleep(0.1)
        assert len(cp.posted) == 2  # two .started; the other events were not taken
        release.set()
        await wait_for(lambda: len(cp.posted) == 10, "all answered")
    assert peak == 2


async def test_handlers_run_concurrently(make_integration: MakeIntegration, cp):
    integration = make_integration(max_concurrency=5)
    gate = asyncio.Barrier(3)

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        await asyncio.wait_for(gate.wait(), 5)  # only passes if three run at once
        return {}

    events = [triggered() for _ in range(3)]
    cp.add(*events)
    await run_until_answered(integration, cp, *events)
    assert all(e["data"]["result"] == "pass" for e in cp.posted if e["type"] == FINISHED)


async def test_shutdown_waits_for_running_handlers(make_integration: MakeIntegration, cp):
    integration = make_integration(shutdown_grace=5.0)
    entered = asyncio.Event()

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        entered.set()
        await asyncio.sleep(0.2)
        return {"deployment": {"slow": True}}

    event = triggered()
    cp.add(event)
    async with integration.running():
        await asyncio.wait_for(entered.wait(), 5)
    assert [e["type"] for e in answers_to(cp, event)] == [STARTED, FINISHED]
    assert answers_to(cp, event)[1]["data"]["result"] == "pass"


async def test_shutdown_after_the_grace_period_finishes_errored(make_integration: MakeIntegration, cp):
    integration = make_integration(shutdown_grace=0.1)
    entered = asyncio.Event()

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        entered.set()
        await asyncio.sleep(60)
        return {}

    event = triggered()
    cp.add(event)
    async with integration.running():
        await asyncio.wait_for(entered.wait(), 5)
    finished = answers_to(cp, event)[1]
    assert finished["type"] == FINISHED
    assert (finished["data"]["status"], finished["data"]["result"]) == ("errored", "fail")
    assert "stopped" in finished["data"]["message"]


async def test_polling_survives_control_plane_errors(make_integration: MakeIntegration, cp):
    integration = make_integration()

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        return {}

    cp.script("triggered", httpx.ConnectError("down"), 503, (200, {"not": "a listing"}, {}))
    event = triggered()
    cp.add(event)
    await run_until_answered(integration, cp, event)
    assert len(cp.calls_to("GET", "/event/triggered/")) >= 4


async def test_the_subscription_id_reaches_the_handler(make_integration: MakeIntegration, cp):
    integration = make_integration()
    seen: list[TaskContext] = []

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        seen.append(ctx)
        return {}

    async with integration.running():
        await integration.wait_until_registered()
        await wait_for(lambda: integration.subscriptions[0].id == "sub-0", "subscriptions from the ping")
        event = triggered()
        cp.add(event)
        await wait_for(lambda: len(answers_to(cp, event)) == 2, "answers")
    assert seen[0].subscription_id == "sub-0"
    assert seen[0].data["temporaryData"] == {"distributor": {"subscriptionID": "sub-0"}}
    assert "temporaryData" not in answers_to(cp, event)[1]["data"]


def test_handlers_must_be_async_and_unique(make_integration: MakeIntegration):
    integration = make_integration()
    with pytest.raises(TypeError, match="async"):

        @integration.task("deployment")
        def deploy(ctx):  # not async
            return {}

    @integration.task("deployment")
    async def deploy_async(ctx):
        return {}

    with pytest.raises(ValueError, match="already"):
        integration.task("deployment")
    with pytest.raises(ValueError, match="stages"):
        integration.task("test", services=["carts"])
    with pytest.raises(ValueError, match="dots"):
        integration.task("a.b")


async def test_starting_without_handlers_is_refused(make_integration: MakeIntegration):
    with pytest.raises(RuntimeError, match="at least one"):
        async with make_integration().running():
            pass
