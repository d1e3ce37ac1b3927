import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.delivery import (
    PUSH_EVENT_OPTIONS,
    PUSH_TARGETS_OPTIONS,
    DeliveryActivities,
    PushEventInput,
    PushResult,
    PushTarget,
    PushTargetsInput,
    with_subscription_id,
)
from activities.sequence import EmitEventInput, SequenceActivities
from keptn.uniform import SubscriptionFilter
from store import uniform
from store.uniform import Registration, SubscriptionSpec
from tests.fixtures.ports import free_port
from tests.store.factories import wire


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
        yield client


def target(url: str) -> PushTarget:
    return PushTarget(subscription_id="sub-1", integration_id="int-1", integration_name="tester", url=url)


EVENT = wire("sh.keptn.event.deployment.triggered", id="e-1", deployment={"strategy": "direct"})


async def push(pool, http, url, event=EVENT):
    activities = DeliveryActivities(pool, http)
    return await ActivityEnvironment().run(
        activities.push_event, PushEventInput(event=event, target=target(url))
    )


async def test_pushes_a_structured_cloudevent_with_the_subscription_id(pool, http, receiver):
    result = await push(pool, http, receiver.url)
    assert result == PushResult(status_code=200)
    (request,) = receiver.requests
    assert request["path"] == "/events"
    assert request["headers"]["content-type"] == "application/cloudevents+json"
    assert not [h for h in request["headers"] if h.lower().startswith("ce-")]  # structured, not binary
    body = json.loads(request["body"])
    expected = {
        **EVENT,
        "data": {**EVENT["data"], "temporaryData": {"distributor": {"subscriptionID": "sub-1"}}},
    }
    assert body == expected
    assert EVENT["data"].get("temporaryData") is None  # the input is not modified


async def test_every_attempt_sends_the_same_event_id(pool, http, receiver):
    await push(pool, http, receiver.url)
    await push(pool, http, receiver.url)
    assert [json.loads(r["body"])["id"] for r in receiver.requests] == ["e-1", "e-1"]


async def test_2xx_other_than_200_is_success(pool, http, receiver):
    receiver.status = 202
    assert (await push(pool, http, receiver.url)).status_code == 202


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
async def test_busy_or_failing_integrations_are_retried(pool, http, receiver, status):
    receiver.status = status
    with pytest.raises(ApplicationError) as caught:
        await push(pool, http, receiver.url)
    assert caught.value.type == "IntegrationUnavailable"
    assert not caught.value.non_retryable
    assert caught.value.next_retry_delay is None
    assert str(status) in caught.value.message and "tester" in caught.value.message


@pytest.mark.parametrize(("header", "delay"), [("7", timedelta(seconds=7)), ("86400", timedelta(minutes=5))])
async def test_retry_after_sets_the_next_retry_delay(pool, http, receiver, header, delay):
    receiver.status = 503
    receiver.headers = {"Retry-After": header}
    with pytest.raises(ApplicationError) as caught:
        await push(pool, http, receiver.url)
    assert caught.value.type == "IntegrationUnavailable"
    assert caught.value.next_retry_delay == delay


async def test_retry_after_as_http_date(pool, http, receiver):
    receiver.status = 429
    receiver.headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}  # in the past: retry now
    with pytest.raises(ApplicationError) as caught:
        await push(pool, http, receiver.url)
    assert caught.value.next_retry_delay == timedelta(0)


@pytest.mark.parametrize("status", [400, 401, 404, 410, 301])
async def test_rejections_are_not_retried(pool, http, receiver, status):
    receiver.status = status
    with pytest.raises(ApplicationError) as caught:
        await push(pool, http, receiver.url)
    assert caught.value.type == "IntegrationRejected"
    assert caught.value.non_retryable
    assert list(PUSH_EVENT_OPTIONS["retry_policy"].non_retryable_error_types or []) == ["IntegrationRejected"]


async def test_connection_refused_is_retried(pool, http):
    with pytest.raises(ApplicationError) as caught:
        await push(pool, http, f"http://127.0.0.1:{free_port()}/")
    assert caught.value.type == "IntegrationUnavailable"
    assert not caught.value.non_retryable
    assert "unreachable" in caught.value.message


def test_options_are_bounded():
    for options in (PUSH_TARGETS_OPTIONS, PUSH_EVENT_OPTIONS):
        assert options["start_to_close_timeout"] <= options["schedule_to_close_timeout"]
        assert options["retry_policy"].backoff_coefficient > 1
    assert PUSH_EVENT_OPTIONS["schedule_to_close_timeout"] == timedelta(minutes=10)


def test_with_subscription_id_keeps_other_temporary_data():
    event: dict[str, Any] = {"type": "t", "data": {"temporaryData": {"mine": 1, "distributor": {"x": 1}}}}
    delivered = with_subscription_id(event, "s")
    assert delivered["data"]["temporaryData"] == {"mine": 1, "distributor": {"subscriptionID": "s"}}
    assert event["data"]["temporaryData"]["distributor"] == {"x": 1}
    assert with_subscription_id({"type": "t"}, "s")["data"] == {
        "temporaryData": {"distributor": {"subscriptionID": "s"}}
    }


async def test_push_targets_reads_live_matching_subscriptions(pool, http):
    registered = await uniform.register_integration(
        pool,
        Registration(
            name="deployer",
            metadata={"hostname": "h"},
            subscriptions=(
                SubscriptionSpec(
                    "sh.keptn.event.*.triggered", SubscriptionFilter.of(["sockshop"]), url="http://a/x"
                ),
                SubscriptionSpec("sh.keptn.event.deployment.triggered"),  # pull only
                SubscriptionSpec("sh.keptn.event.test.triggered", url="http://a/y"),
            ),
        ),
        ttl=timedelta(minutes=1),
    )
    activities = DeliveryActivities(pool, http)
    found = await ActivityEnvironment().run(activities.push_targets, PushTargetsInput(event=EVENT))
    assert [(t.integration_id, t.integration_name, t.url) for t in found.targets] == [
        (registered.id, "deployer", "http://a/x")
    ]
    other = wire("sh.keptn.event.deployment.triggered", project="other")
    assert (
        await ActivityEnvironment().run(activities.push_targets, PushTargetsInput(event=other))
    ).targets == []
    # emit_event stores the event and, when asked, answers with the same targets
    emit = SequenceActivities(pool).emit_event
    emitted = await ActivityEnvironment().run(
        emit, EmitEventInput(event=EVENT, open_task=True, with_targets=True)
    )
    assert emitted.stored and emitted.targets == found.targets
    again = await ActivityEnvironment().run(emit, EmitEventInput(event=EVENT, open_task=True))
    assert (again.stored, again.targets) == (False, None)
    assert await pool.fetchval("SELECT count(*) FROM events WHERE id = $1", EVENT["id"]) == 1
