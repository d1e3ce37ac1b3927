"""The control plane client: retries with the same event, 4xx final, paging, registration calls."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from capstan.sdk import Backoff, ControlPlaneError
from capstan.sdk._client import ControlPlaneClient
from tests.sdk.conftest import FAST_BACKOFF
from tests.sdk.fakes import API, TOKEN, triggered


@pytest.fixture
async def client(cp):
    opened = ControlPlaneClient(API, TOKEN, backoff=FAST_BACKOFF, transport=cp.transport())
    yield opened
    await opened.aclose()


def answer(event):
    return {
        **event,
        "id": "answer-1",
        "type": "sh.keptn.event.deployment.started",
        "triggeredid": event["id"],
    }


async def test_sends_to_v1_event_with_the_token(client, cp):
    event = answer(triggered())
    await client.send_event(event)
    [call] = cp.calls
    assert (call.method, call.path, call.body) == ("POST", "/v1/event", event)
    assert cp.posted == [event]


@pytest.mark.parametrize(
    "failure", [500, 502, 503, 429, httpx.ConnectError("refused"), httpx.ReadTimeout("slow")]
)
async def test_transient_failures_are_retried_with_the_same_event(client, cp, failure):
    cp.script("event", failure, failure)
    event = answer(triggered())
    await client.send_event(event)
    bodies = [call.body for call in cp.calls_to("POST", "/v1/event")]
    assert len(bodies) == 3
    assert all(body == event for body in bodies)  # same id every time: the gateway dedupes
    assert cp.posted == [event]


@pytest.mark.parametrize("status", [400, 401, 404, 409, 413])
async def test_client_errors_are_not_retried(client, cp, status):
    cp.script("event", status)
    with pytest.raises(ControlPlaneError) as caught:
        await client.send_event(answer(triggered()))
    assert caught.value.status_code == status
    assert not caught.value.retryable
    assert f"HTTP {status}: scripted {status}" in caught.value.message
    assert len(cp.calls) == 1


async def test_gives_up_after_the_configured_attempts(client, cp):
    cp.script("event", *[503] * 10)
    with pytest.raises(ControlPlaneError) as caught:
        await client.send_event(answer(triggered()))
    assert caught.value.status_code == 503 and caught.value.retryable
    assert len(cp.calls) == FAST_BACKOFF.attempts


async def test_no_retry_when_asked(client, cp):
    cp.script("event", httpx.ConnectError("refused"))
    with pytest.raises(ControlPlaneError) as caught:
        await client.send_event(answer(triggered()), retry=False)
    assert caught.value.status_code is None
    assert len(cp.calls) == 1


async def test_retry_after_is_honoured_up_to_the_maximum(cp):
    cp.script("event", (429, {"code": 429, "message": "slow down"}, {"retry-after": "0.03"}))
    backoff = Backoff(initial=1000.0, maximum=1000.0, attempts=2)  # would hang without Retry-After
    client = ControlPlaneClient(API, TOKEN, backoff=backoff, transport=cp.transport())
    began = time.monotonic()
    await client.send_event(answer(triggered()))
    elapsed = time.monotonic() - began
    await client.aclose()
    assert 0.02 < elapsed < 5
    assert len(cp.posted) == 1


def test_backoff_grows_to_its_maximum():
    backoff = Backoff(initial=1.0, maximum=5.0, multiplier=2.0)
    delays = [backoff.delay(n) for n in range(1, 8)]
    assert 0.8 <= delays[0] <= 1.2
    assert 1.6 <= delays[1] <= 2.4
    assert all(d <= 6.0 for d in delays)
    with pytest.raises(ValueError):
        Backoff(initial=2.0, maximum=1.0)


async def test_open_triggered_events_follows_pages(client, cp):
    events = [triggered(event_id=f"e{i}") for i in range(5)]
    cp.add(*events)
    found = await client.open_triggered_events("sh.keptn.event.deployment.triggered", {"project": "sockshop"})
    assert [e["id"] for e in found] == ["e0", "e1", "e2", "e3", "e4"]
    calls = cp.calls_to("GET", "/event/triggered/")
    assert [c.params.get("nextPageKey") for c in calls] == [None, "2", "4"]
    assert all(c.params["project"] == "sockshop" for c in calls)
    assert calls[0].path == "/controlPlane/v1/event/triggered/sh.keptn.event.deployment.triggered"


async def test_a_repeated_page_key_ends_the_listing(client, cp):
    page: tuple[int, dict[str, Any], dict[str, str]] = (
        200,
        {"events": [triggered(event_id="same")], "nextPageKey": "7"},
        {},
    )
    cp.script("triggered", page, page, page)
    found = await client.open_triggered_events("sh.keptn.event.deployment.triggered", {})
    assert [e["id"] for e in found] == ["same", "same"]
    assert len(cp.calls) == 2


async def test_register_and_ping(client, cp):
    assert await client.register({"name": "x", "subscriptions": []}) == "integration-1"
    pinged = await client.ping("integration-1")
    assert pinged["id"] == "integration-1"
    assert cp.calls[-1].method == "PUT"
    assert cp.calls[-1].path == "/controlPlane/v1/uniform/registration/integration-1/ping"
    assert await client.ping("unknown") is None


async def test_register_without_id_is_an_error(client, cp):
    cp.script("register", (201, {"name": "x"}, {}))
    with pytest.raises(ControlPlaneError, match="without an id"):
        await client.register({"name": "x"})


async def test_wrong_token_is_a_401(cp):
    client = ControlPlaneClient(API, "wrong", backoff=FAST_BACKOFF, transport=cp.transport())
    with pytest.raises(ControlPlaneError) as caught:
        await client.send_event(answer(triggered()))
    await client.aclose()
    assert caught.value.status_code == 401
