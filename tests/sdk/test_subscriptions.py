"""Subscriptions: matching (go-utils eventmatcher), pull query parameters, the uniform JSON."""

from __future__ import annotations

import pytest

from capstan.sdk import Subscription
from tests.sdk.fakes import triggered

DEPLOY = "sh.keptn.event.deployment.triggered"


def test_empty_filter_matches_every_event_of_the_type():
    sub = Subscription(DEPLOY)
    assert sub.matches(triggered())
    assert not sub.matches(triggered("test"))


def test_each_non_empty_filter_list_must_contain_the_value():
    sub = Subscription(DEPLOY, projects=("sockshop", "other"), stages=("dev",))
    assert sub.matches(triggered(project="other", stage="dev"))
    assert not sub.matches(triggered(stage="prod"))
    assert not sub.matches(triggered(project="third"))


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [("sh.keptn.>", True), ("sh.keptn.event.*.triggered", True), ("sh.keptn.event.*", False)],
)
def test_nats_wildcards(pattern, expected):
    assert Subscription(pattern).matches(triggered()) is expected
    assert Subscription(pattern).pollable is False


def test_query_sends_a_filter_only_when_exactly_one_value_is_configured():
    sub = Subscription(DEPLOY, projects=("sockshop",), stages=("dev", "staging"), services=("carts",))
    assert sub.query_params() == {"project": "sockshop", "service": "carts"}
    assert Subscription(DEPLOY).query_params() == {}


def test_json_round_trip_and_go_nulls():
    sub = Subscription(DEPLOY, projects=("p",), id="s1", url="http://x/")
    assert Subscription.from_json(sub.to_json()) == sub
    assert sub.to_json() == {
        "event": DEPLOY,
        "filter": {"projects": ["p"], "stages": [], "services": []},
        "id": "s1",
        "url": "http://x/",
    }
    read = Subscription.from_json({"event": DEPLOY, "filter": {"projects": None}, "id": ""})
    assert read == Subscription(DEPLOY)


@pytest.mark.parametrize("bad", [{}, {"event": ""}, {"event": DEPLOY, "filter": {"stages": "dev"}}, ["x"]])
def test_bad_json_is_refused(bad):
    with pytest.raises(ValueError):
        Subscription.from_json(bad)


def test_id_cache_forgets_the_least_recently_seen():
    from capstan.sdk._dispatch import IdCache

    cache = IdCache(3)
    for event_id in ("a", "b", "c"):
        cache.add(event_id)
    assert cache.seen("a")  # still listed by the control plane: stays
    cache.add("d")
    assert not cache.seen("b")
    assert all(cache.seen(x) for x in ("a", "c", "d"))
    assert len(cache) == 3
    with pytest.raises(ValueError):
        IdCache(0)
