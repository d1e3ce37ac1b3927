"""Keptn's answers to a task: .started first, .finished with the handler's outcome, opt-out."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from capstan.sdk import TaskContext, TaskFailed, TryAgainLater
from tests.sdk.conftest import MakeIntegration
from tests.sdk.fakes import FINISHED, STARTED, answers_to, run_until_answered, triggered, wait_for


async def test_started_then_finished_with_the_handlers_data(make_integration: MakeIntegration, cp):
    integration = make_integration()
    seen: list[TaskContext] = []

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        seen.append(ctx)
        assert [e["type"] for e in answers_to(cp, event)] == [STARTED]  # .started came first
        return {"deployment": {"deploymentURIsLocal": ["http://carts.dev"]}}

    event = triggered(labels={"owner": "a"}, configurationChange={"values": {"image": "carts:1"}})
    cp.add(event)
    await run_until_answered(integration, cp, event)

    started, finished = answers_to(cp, event)
    assert (started["type"], finished["type"]) == (STARTED, FINISHED)
    assert started["id"] != finished["id"]
    for answer in (started, finished):
        assert answer["source"] == "helm-service"
        assert answer["shkeptncontext"] == event["shkeptncontext"]
        assert answer["gitcommitid"] == "c0ffee"
    scope = {"project": "sockshop", "stage": "dev", "service": "carts", "labels": {"owner": "a"}}
    assert started["data"] == scope
    assert finished["data"] == {
        **scope,
        "deployment": {"deploymentURIsLocal": ["http://carts.dev"]},
        "result": "pass",
        "status": "succeeded",
    }
    [ctx] = seen
    assert (ctx.project, ctx.stage, ctx.service, ctx.task) == ("sockshop", "dev", "carts", "deployment")
    assert ctx.keptn_context == event["shkeptncontext"] and ctx.triggered_id == event["id"]
    assert ctx.git_commit_id == "c0ffee" and ctx.labels == {"owner": "a"}
    assert ctx.data["configurationChange"] == {"values": {"image": "carts:1"}}
    assert ctx.event["type"] == "sh.keptn.event.deployment.triggered"


async def test_the_handler_may_set_result_status_and_message(make_integration: MakeIntegration, cp):
    integration = make_integration()

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        return {"result": "warning", "message": "slow rollout"}

    event = triggered()
    cp.add(event)
    await run_until_answered(integration, cp, event)
    finished = answers_to(cp, event)[1]["data"]
    assert (finished["result"], finished["status"], finished["message"]) == (
        "warning",
        "succeeded",
        "slow rollout",
    )


async def test_returning_none_still_finishes(make_integration: MakeIntegration, cp):
    integration = make_integration()

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> None:
        return None

    event = triggered()
    cp.add(event)
    await run_until_answered(integration, cp, event)
    assert answers_to(cp, event)[1]["data"]["result"] == "pass"


async def test_an_exception_finishes_errored_with_the_error(make_integration: MakeIntegration, cp):
    integration = make_integration()

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        raise RuntimeError("helm upgrade failed")

    event = triggered()
    cp.add(event)
    await run_until_answered(integration, cp, event)
    started, finished = answers_to(cp, event)
    assert started["type"] == STARTED
    assert finished["data"] == {
        "project": "sockshop",
        "stage": "dev",
        "service": "carts",
        "result": "fail",
        "status": "errored",
        "message": "RuntimeError: helm upgrade failed",
    }


async def test_task_failed_reports_a_failed_result_without_an_error(make_integration: MakeIntegration, cp):
    integration = make_integration()

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        raise TaskFailed("3 of 40 tests failed", result="warning", data={"test": {"failed": 3}})

    event = triggered()
    cp.add(event)
    await run_until_answered(integration, cp, event)
    data = answers_to(cp, event)[1]["data"]
    assert (data["result"], data["status"], data["message"]) == (
        "warning",
        "succeeded",
        "3 of 40 tests failed",
    )
    assert data["test"] == {"failed": 3}


async def test_default_task_failed_is_fail_succeeded(make_integration: MakeIntegration, cp):
    integration = make_integration()

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        raise TaskFailed("nope")

    event = triggered()
    cp.add(event)
    await run_until_answered(integration, cp, event)
    data = answers_to(cp, event)[1]["data"]
    assert (data["result"], data["status"]) == ("fail", "succeeded")


async def test_unserialisable_data_finishes_errored(make_integration: MakeIntegration, cp):
    integration = make_integration()

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        return {"deployment": object()}

    event = triggered()
    cp.add(event)
    await run_until_answered(integration, cp, event)
    data = answers_to(cp, event)[1]["data"]
    assert (data["result"], data["status"]) == ("fail", "errored")
    assert data["message"].startswith("invalid task data")


async def test_opt_out_lets_the_handler_answer(make_integration: MakeIntegration, cp):
    integration = make_integration()

    @integration.task("deployment", auto_response=False)
    async def deploy(ctx: TaskContext) -> None:
        assert cp.posted == []  # nothing automatic
        await ctx.send_started({"deployment": {"progress": 0}})
        await ctx.send_finished({"deployment": {"done": True}}, result="warning", message="partial")

    event = triggered()
    cp.add(event)
    await run_until_answered(integration, cp, event)
    started, finished = answers_to(cp, event)
    assert started["type"] == STARTED and started["data"]["deployment"] == {"progress": 0}
    assert finished["data"]["result"] == "warning" and finished["data"]["status"] == "succeeded"
    assert finished["data"]["message"] == "partial" and finished["data"]["deployment"] == {"done": True}


async def test_opt_out_handler_that_raises_sends_nothing(make_integration: MakeIntegration, cp):
    integration = make_integration()
    ran = asyncio.Event()

    @integration.task("deployment", auto_response=False)
    async def deploy(ctx: TaskContext) -> None:
        ran.set()
        raise RuntimeError("boom")

    cp.add(triggered())
    async with integration.running():
        await asyncio.wait_for(ran.wait(), 5)
        await asyncio.sleep(0.1)
    assert cp.posted == []


async def test_automatic_handlers_cannot_send_started_or_finished(make_integration: MakeIntegration, cp):
    integration = make_integration()
    errors: list[Exception] = []

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        for send in (ctx.send_started, ctx.send_finished):
            try:
                await send()
            except RuntimeError as exc:
                errors.append(exc)
        return {}

    event = triggered()
    cp.add(event)
    await run_until_answered(integration, cp, event)
    assert len(errors) == 2 and "auto_response=False" in str(errors[0])
    assert [e["type"] for e in answers_to(cp, event)] == [STARTED, FINISHED]


async def test_status_changed_is_sent_with_the_scope(make_integration: MakeIntegration, cp):
    integration = make_integration()

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        await ctx.send_status_changed({"message": "50 %"})
        return {}

    event = triggered()
    cp.add(event)
    await run_until_answered(integration, cp, event, count=3)
    types = [e["type"] for e in answers_to(cp, event)]
    assert types == [STARTED, "sh.keptn.event.deployment.status.changed", FINISHED]
    assert answers_to(cp, event)[1]["data"]["message"] == "50 %"


async def test_a_refused_status_changed_does_not_fail_the_task(make_integration: MakeIntegration, cp):
    integration = make_integration()
    returned: list[str | None] = []

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        returned.append(await ctx.send_status_changed({"message": "50 %"}))
        return {}

    cp.script("event", (200, {}, {}), 400)  # .started accepted, .status.changed refused (as Keptn did)
    event = triggered()
    cp.add(event)
    await run_until_answered(integration, cp, event)
    assert returned == [None]
    assert answers_to(cp, event)[1]["data"]["result"] == "pass"


async def test_manual_answers_are_sent_once(make_integration: MakeIntegration, cp):
    integration = make_integration()
    errors: list[str] = []

    @integration.task("deployment", auto_response=False)
    async def deploy(ctx: TaskContext) -> None:
        await ctx.send_started()
        for send in (ctx.send_started, ctx.send_finished, ctx.send_finished):
            try:
                await send()
            except RuntimeError as exc:
                errors.append(str(exc))

    event = triggered()
    cp.add(event)
    await run_until_answered(integration, cp, event)
    assert errors == ["send_started: already sent for this task", "send_finished: already sent for this task"]
    assert [e["type"] for e in answers_to(cp, event)] == [STARTED, FINISHED]


async def test_answers_are_retried_with_the_same_id(make_integration: MakeIntegration, cp):
    integration = make_integration()

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        return {}

    cp.script("event", 503, httpx.ConnectError("refused"))
    event = triggered()
    cp.add(event)
    await run_until_answered(integration, cp, event)
    posts = [c.body for c in cp.calls_to("POST", "/v1/event")]
    assert [p["type"] for p in posts] == [STARTED, STARTED, STARTED, FINISHED]
    assert len({p["id"] for p in posts[:3]}) == 1


async def test_a_rejected_started_skips_the_handler(make_integration: MakeIntegration, cp):
    integration = make_integration()
    ran = []

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        ran.append(ctx)
        return {}

    cp.script("event", 400)
    cp.add(triggered())
    async with integration.running():
        await wait_for(lambda: cp.calls_to("POST", "/v1/event"), "the .started attempt")
        await asyncio.sleep(0.15)  # several polls: the event is not taken again
    assert ran == []
    assert len(cp.calls_to("POST", "/v1/event")) == 1


async def test_a_started_the_control_plane_never_got_is_tried_again_on_a_later_poll(
    make_integration: MakeIntegration, cp
):
    integration = make_integration()
    ran = []

    @integration.task("deployment")
    async def deploy(ctx: TaskContext) -> dict[str, Any]:
        ran.append(ctx.triggered_id)
        return {}

    cp.script("event", *[httpx.ConnectError("down")] * 4)  # every attempt of the first try
    event = triggered()
    cp.add(event)
    await run_until_answered(integration, cp, event)
    posts = [c.body for c in cp.calls_to("POST", "/v1/event")]
    assert [p["type"] for p in posts] == [STARTED] * 5 + [FINISHED]
    assert len({p["id"] for p in posts[:5]}) == 1  # the resend is the same .started
    assert ran == [event["id"]]


async def test_a_handler_can_give_its_event_back_before_answering(make_integration: MakeIntegration, cp):
    integration = make_integration()
    tries = []

    @integration.task("deployment", auto_response=False)
    async def deploy(ctx: TaskContext) -> None:
        tries.append(ctx.triggered_id)
        if len(tries) == 1:
            raise TryAgainLater("the resource store is away")
        await ctx.send_started()
        await ctx.send_finished({})

    event = triggered()
    cp.add(event)
    await run_until_answered(integration, cp, event)
    assert tries == [event["id"], event["id"]]
    assert [e["type"] for e in answers_to(cp, event)] == [STARTED, FINISHED]


async def test_giving_back_after_started_is_refused(make_integration: MakeIntegration, cp):
    integration = make_integration()
    tries = []

    @integration.task("deployment", auto_response=False)
    async def deploy(ctx: TaskContext) -> None:
        tries.append(ctx.triggered_id)
        await ctx.send_started()
        raise TryAgainLater("too late for that")

    cp.add(triggered())
    async with integration.running():
        await wait_for(lambda: cp.calls_to("POST", "/v1/event"), "the .started")
        await asyncio.sleep(0.15)  # several polls: the event is not taken again
    assert len(tries) == 1
