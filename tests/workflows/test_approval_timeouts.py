"""Approval timeouts (beyond Keptn), on the time-skipping test server."""

from __future__ import annotations

from datetime import timedelta

from tests.workflows.timeskip import Plane, at, plane, ts_env

__all__ = ["plane", "ts_env"]  # fixtures, imported so that pytest finds them here


async def test_an_unanswered_approval_passes_after_its_timeout_when_told_to(plane: Plane):
    context = await plane.trigger("gated")
    approval = await plane.next_open("approval", context)
    assert approval["data"]["approval"] == {"pass": "manual", "timeout": "1h", "onTimeout": "pass"}

    await plane.env.sleep(timedelta(minutes=59))
    assert await plane.running(context)
    assert (await plane.execution(context)).state == "waitingForApproval"
    await plane.env.sleep(timedelta(minutes=2))
    [finished] = await plane.events(context, "sh.keptn.event.approval.finished")
    assert finished["source"] == "approval-service"
    assert (finished["data"]["result"], finished["data"]["status"]) == ("pass", "succeeded")
    assert finished["data"]["message"] == "approval timed out after 1h0m0s: passed automatically"
    assert timedelta(hours=1) <= at(finished) - at(approval) < timedelta(hours=1, minutes=1)
    release = await plane.next_open("release", context)
    await plane.answer(release, "started")
    await plane.answer(release, "finished")
    assert (await plane.finished(context, "gated"))["data"]["result"] == "pass"


async def test_an_unanswered_approval_is_declined_after_its_timeout_by_default(plane: Plane):
    context = await plane.trigger("gated-strict")
    await plane.next_open("approval", context)
    await plane.env.sleep(timedelta(hours=2, minutes=1))
    finished = await plane.finished(context, "gated-strict")
    assert (finished["data"]["result"], finished["data"]["status"]) == ("fail", "succeeded")
    [declined] = await plane.events(context, "sh.keptn.event.approval.finished")
    assert declined["data"]["message"] == "approval timed out after 2h0m0s: declined automatically"
    assert await plane.open("release", context) == []


async def test_a_decision_before_the_timeout_cancels_it(plane: Plane):
    context = await plane.trigger("gated-strict")
    approval = await plane.next_open("approval", context)
    await plane.env.sleep(timedelta(minutes=30))
    await plane.answer(approval, "finished", source="alice")
    release = await plane.next_open("release", context)
    await plane.answer(release, "started")
    await plane.env.sleep(timedelta(hours=3))  # well past the approval's timeout: nothing happens
    await plane.answer(release, "finished")
    assert (await plane.finished(context, "gated-strict"))["data"]["result"] == "pass"
    finished = await plane.events(context, "sh.keptn.event.approval.finished")
    assert [e["source"] for e in finished] == ["alice"]
