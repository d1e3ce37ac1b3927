"""Task timeouts, ``triggeredAfter`` and answer counting, on the time-skipping test server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.workflows.timeskip import FINISHED_TIMEOUT, STARTED_TIMEOUT, Plane, at, plane, ts_env

__all__ = ["plane", "ts_env"]  # fixtures, imported so that pytest finds them here


async def test_no_answer_within_10_minutes_times_out_like_keptn_and_frees_the_service(plane: Plane):
    context = await plane.trigger("delivery")
    triggered = await plane.next_open("deployment", context)
    queued = await plane.trigger("single")  # same project/stage/service: waits for the first

    await plane.env.sleep(timedelta(minutes=9, seconds=50))
    assert await plane.running(context) and await plane.open("deployment", queued) == []
    await plane.env.sleep(timedelta(seconds=20))
    finished = await plane.finished(context, "delivery")

    data = finished["data"]
    assert (data["status"], data["result"]) == ("errored", "fail")
    assert data["message"] == STARTED_TIMEOUT.format(task="deployment")
    assert timedelta(minutes=10) <= at(finished) - at(triggered) < timedelta(minutes=11)
    [trigger] = await plane.events(context, "sh.keptn.event.dev.delivery.triggered")
    assert finished["triggeredid"] == trigger["id"]
    assert (await plane.execution(context)).state == "timedOut"
    # Keptn triggers no follow-up after a timeout, not even one asking for result: fail
    for sequence in ("delivery", "rollback"):
        assert await plane.events(context, f"sh.keptn.event.prod.{sequence}.triggered") == []
    assert await plane.open("deployment", context) == []
    assert await plane.events(context, "sh.keptn.event.test.triggered") == []
    # the slot was released (no watcher runs here, so only the sequence itself can have freed it)
    deployment = await plane.next_open("deployment", queued)
    await plane.answer(deployment, "started")
    await plane.answer(deployment, "finished")
    assert (await plane.finished(queued, "single"))["data"]["result"] == "pass"


async def test_a_started_task_waits_for_its_finished_forever_by_default(plane: Plane):
    context = await plane.trigger("single")
    deployment = await plane.next_open("deployment", context)
    await plane.answer(deployment, "started")
    before = await plane.env.get_current_time()

    await plane.env.sleep(timedelta(days=30))

    assert await plane.env.get_current_time() - before >= timedelta(days=30)
    assert await plane.running(context)
    assert await plane.events(context, "sh.keptn.event.dev.single.finished") == []
    assert [e["id"] for e in await plane.open("deployment", context)] == [deployment["id"]]
    assert (await plane.execution(context)).state == "started"
    await plane.answer(deployment, "finished")
    assert (await plane.finished(context, "single"))["data"]["result"] == "pass"


async def test_a_finished_timeout_ends_a_started_task_errored(plane: Plane):
    context = await plane.trigger("single", task_finished_timeout=timedelta(hours=1))
    deployment = await plane.next_open("deployment", context)
    answered = await plane.env.get_current_time()  # read first: the timer starts after it
    await plane.answer(deployment, "started")

    await plane.env.sleep(timedelta(minutes=59))
    assert await plane.running(context)
    await plane.env.sleep(timedelta(minutes=2))
    finished = await plane.finished(context, "single")

    data = finished["data"]
    assert (data["status"], data["result"]) == ("errored", "fail")
    assert data["message"] == FINISHED_TIMEOUT.format(after="1h0m0s", task="deployment")
    assert timedelta(hours=1) <= at(finished) - answered < timedelta(hours=1, minutes=1)
    assert (await plane.execution(context)).state == "timedOut"
    assert await plane.open("deployment", context) == []


@pytest.mark.parametrize("setting", [None, timedelta(hours=1)], ids=["no-setting", "1h-setting"])
async def test_a_tasks_properties_timeout_overrides_the_setting(plane: Plane, setting: timedelta | None):
    context = await plane.trigger("bounded", task_finished_timeout=setting)
    deployment = await plane.next_open("deployment", context)
    assert deployment["data"]["deployment"] == {"timeout": "5m"}
    answered = await plane.env.get_current_time()  # read first: the timer starts after it
    await plane.answer(deployment, "started")

    await plane.env.sleep(timedelta(minutes=4))
    assert await plane.running(context)
    await plane.env.sleep(timedelta(minutes=2))
    finished = await plane.finished(context, "bounded")

    assert (finished["data"]["status"], finished["data"]["result"]) == ("errored", "fail")
    assert finished["data"]["message"] == FINISHED_TIMEOUT.format(after="5m0s", task="deployment")
    assert timedelta(minutes=5) <= at(finished) - answered < timedelta(minutes=6)


async def test_triggered_after_delays_the_task_on_a_durable_timer_and_does_not_time_out(plane: Plane):
    # the delay (10m) is longer than the started timeout (5m): Keptn bug #5501 timed such tasks out
    context = await plane.trigger("delayed", task_started_wait_duration=timedelta(minutes=5))
    deployment = await plane.next_open("deployment", context)
    await plane.answer(deployment, "started")
    done = await plane.env.get_current_time()
    await plane.answer(deployment, "finished")

    await plane.env.sleep(timedelta(minutes=9))
    assert await plane.events(context, "sh.keptn.event.test.triggered") == []
    assert await plane.events(context, "sh.keptn.event.dev.delayed.finished") == []
    assert await plane.running(context)

    await plane.env.sleep(timedelta(minutes=2))
    test = await plane.next_open("test", context)
    assert timedelta(minutes=10) <= at(test) - done < timedelta(minutes=11)
    await plane.env.sleep(timedelta(minutes=3))  # 4 of its 5 started-timeout minutes have passed
    await plane.answer(test, "started")
    await plane.answer(test, "finished")
    finished = await plane.finished(context, "delayed")
    assert (finished["data"]["result"], finished["data"]["status"]) == ("pass", "succeeded")


async def test_keptn_counting_never_completes_a_finished_without_a_started(plane: Plane):
    waits = await plane.trigger("single", "carts")
    bounded = await plane.trigger("single", "orders", task_finished_timeout=timedelta(hours=1))
    for context in (waits, bounded):
        await plane.answer(await plane.next_open("deployment", context), "finished")

    await plane.env.sleep(timedelta(hours=2))

    # answered, so the started timeout is off; but #finished (1) != #started (0): never complete
    assert await plane.running(waits)
    assert await plane.events(waits, "sh.keptn.event.dev.single.finished") == []
    assert (await plane.execution(waits)).state == "started"
    # ... until the finished timeout, if one is set
    finished = await plane.finished(bounded, "single")
    assert (finished["data"]["status"], finished["data"]["result"]) == ("errored", "fail")
    assert finished["data"]["message"] == FINISHED_TIMEOUT.format(after="1h0m0s", task="deployment")


async def test_per_source_counting_completes_a_finished_without_a_started(plane: Plane):
    context = await plane.trigger("single", task_completion="per-source")
    await plane.answer(await plane.next_open("deployment", context), "finished")
    finished = await plane.finished(context, "single")
    assert (finished["data"]["result"], finished["data"]["status"]) == ("pass", "succeeded")


@pytest.mark.parametrize("completion", ["keptn", "per-source"])
async def test_duplicate_deliveries_of_an_answer_count_once(plane: Plane, completion: str):
    context = await plane.trigger("pair", task_completion=completion)

    # two integrations started the deployment; helm's .finished arrives twice (a client retry)
    deployment = await plane.next_open("deployment", context)
    await plane.answer(deployment, "started", source="helm")
    await plane.answer(deployment, "started", source="notifier")
    helm = await plane.answer(deployment, "finished", source="helm")
    await plane.answer(deployment, "finished", source="helm", id=helm["id"])
    await plane.env.sleep(timedelta(minutes=1))
    # counted twice, Keptn's rule would see #finished == #started == 2 and move on
    assert [e["id"] for e in await plane.open("deployment", context)] == [deployment["id"]]
    assert await plane.open("test", context) == []
    await plane.answer(deployment, "finished", source="notifier")

    # the test's .started arrives twice: counted twice, one .finished would never complete it
    test = await plane.next_open("test", context)
    started = await plane.answer(test, "started")
    await plane.answer(test, "started", id=started["id"])
    await plane.answer(test, "finished")
    finished = await plane.finished(context, "pair")
    assert (finished["data"]["result"], finished["data"]["status"]) == ("pass", "succeeded")
    assert len(await plane.events(context, "sh.keptn.event.deployment.finished")) == 2  # stored once
