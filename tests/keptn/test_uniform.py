import hashlib

import pytest

from keptn.errors import InvalidInputError
from keptn.uniform import (
    SubscriptionFilter,
    event_type_matches,
    filter_matches,
    integration_id,
    subscription_matches,
    validate_event_pattern,
    validate_push_url,
    validate_subscription,
)


def test_integration_id_is_keptns_sha1_of_name_namespace_node():
    # go-utils IntegrationID.Hash: sha1("<name>-<namespace>-<nodename>") in hex
    assert (
        integration_id("helm-service", "keptn", "node-1")
        == hashlib.sha1(b"helm-service-keptn-node-1").hexdigest()
    )
    assert integration_id("helm-service", "keptn", "node-1") == "4a986e6ceedb358e0e34d062de1dea5ffc053b44"
    assert integration_id("a", "", "") == hashlib.sha1(b"a--").hexdigest()


def test_integration_id_needs_a_name():
    with pytest.raises(InvalidInputError) as caught:
        integration_id("", "keptn", "node")
    assert caught.value.field == "name"


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("sh.keptn.event.deployment.triggered", "sh.keptn.event.deployment.triggered", True),
        ("sh.keptn.event.deployment.triggered", "sh.keptn.event.deployment.finished", False),
        ("sh.keptn.event.deployment.triggered", "sh.keptn.event.deployment.triggered.x", False),
        ("sh.keptn.event.*.triggered", "sh.keptn.event.test.triggered", True),
        ("sh.keptn.event.*.triggered", "sh.keptn.event.dev.delivery.triggered", False),
        ("sh.keptn.event.*.*.triggered", "sh.keptn.event.dev.delivery.triggered", True),
        ("sh.keptn.>", "sh.keptn.event.dev.delivery.triggered", True),
        ("sh.keptn.>", "sh.keptn.log.error", True),
        ("sh.keptn.>", "sh.keptn", False),
        (">", "anything.at.all", True),
        ("sh.keptn.event.>", "sh.keptn.events.problem", False),
        ("*", "a", True),
        ("*", "a.b", False),
        ("a.>.b", "a.x.b", False),  # '>' in the middle is literal and never matches
    ],
)
def test_event_type_matches_like_nats(pattern, event_type, expected):
    assert event_type_matches(pattern, event_type) is expected


def test_empty_filter_matches_everything():
    assert filter_matches(SubscriptionFilter(), {"project": "p", "stage": "s", "service": "x"})
    assert filter_matches(SubscriptionFilter(), {})
    assert filter_matches(SubscriptionFilter.of(None, [], None), {"project": "p"})
    # Keptn joined and split the list: only empty strings means "all" as well
    assert filter_matches(SubscriptionFilter.of([""]), {"project": "p"})


def test_each_non_empty_dimension_must_contain_the_value():
    f = SubscriptionFilter.of(["sockshop", "other"], ["dev"], ["carts"])
    assert filter_matches(f, {"project": "other", "stage": "dev", "service": "carts"})
    assert not filter_matches(f, {"project": "x", "stage": "dev", "service": "carts"})
    assert not filter_matches(f, {"project": "sockshop", "stage": "prod", "service": "carts"})
    assert not filter_matches(f, {"project": "sockshop", "stage": "dev", "service": "db"})
    assert not filter_matches(f, {"project": "sockshop", "stage": "dev"})
    assert filter_matches(SubscriptionFilter.of(["p"]), {"project": "p", "stage": "any"})


def test_data_that_is_not_an_object_never_matches():
    assert not filter_matches(SubscriptionFilter(), "text")
    assert not filter_matches(SubscriptionFilter(), None)
    assert not filter_matches(SubscriptionFilter.of(["p"]), {"project": 1})


def test_subscription_matches_type_and_data():
    event = {"type": "sh.keptn.event.deployment.triggered", "data": {"project": "p", "stage": "dev"}}
    assert subscription_matches("sh.keptn.event.*.triggered", SubscriptionFilter.of(["p"]), event)
    assert not subscription_matches("sh.keptn.event.test.triggered", SubscriptionFilter(), event)
    assert not subscription_matches("sh.keptn.>", SubscriptionFilter.of(["q"]), event)
    assert not subscription_matches("sh.keptn.>", SubscriptionFilter(), {"data": {}})


@pytest.mark.parametrize("pattern", ["sh.keptn.>", "sh.keptn.event.*.triggered", "a", ">", "*"])
def test_valid_patterns(pattern):
    validate_event_pattern(pattern)


@pytest.mark.parametrize(
    ("pattern", "needle"),
    [
        ("", "must be specified"),
        ("sh..keptn", "non-empty"),
        ("sh.keptn.", "non-empty"),
        ("sh.ke ptn", "white space"),
        ("sh.>.x", "last token"),
    ],
)
def test_invalid_patterns_name_the_field(pattern, needle):
    with pytest.raises(InvalidInputError) as caught:
        validate_event_pattern(pattern, field="subscriptions[1].event")
    assert caught.value.field == "subscriptions[1].event"
    assert needle in caught.value.message
    assert caught.value.message.startswith("subscriptions[1].event:")


def test_services_need_stages():
    with pytest.raises(InvalidInputError) as caught:
        validate_subscription(
            "sh.keptn.>", SubscriptionFilter.of(services=["carts"]), prefix="subscriptions[0]."
        )
    assert caught.value.field == "subscriptions[0].filter.stages"
    assert "at least one stage" in caught.value.message
    validate_subscription("sh.keptn.>", SubscriptionFilter.of(stages=["dev"], services=["carts"]))
    validate_subscription("sh.keptn.>", SubscriptionFilter.of(services=[]))


@pytest.mark.parametrize("projects", [None, [], ["a", "b"]])
def test_webhook_service_needs_exactly_one_project(projects):
    with pytest.raises(InvalidInputError) as caught:
        validate_subscription(
            "sh.keptn.event.deployment.triggered",
            SubscriptionFilter.of(projects),
            integration_name="webhook-service",
        )
    assert caught.value.field == "filter.projects"
    assert "exactly one project" in caught.value.message


def test_webhook_rule_applies_only_to_webhook_service():
    validate_subscription("sh.keptn.>", SubscriptionFilter(), integration_name="helm-service")
    validate_subscription("sh.keptn.>", SubscriptionFilter.of(["p"]), integration_name="webhook-service")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/events", "https://hooks.example.com/keptn?x=1", "HTTP://host", "http://[::1]:9/"],
)
def test_valid_push_urls(url):
    validate_push_url(url)


@pytest.mark.parametrize(
    "url", ["", "ftp://host/x", "host:8080", "/relative", "http://", "http://host:99999/", "http://ho st/"]
)
def test_invalid_push_urls(url):
    with pytest.raises(InvalidInputError) as caught:
        validate_subscription("sh.keptn.>", SubscriptionFilter(), url=url, prefix="subscriptions[2].")
    assert caught.value.field == "subscriptions[2].url"
    assert "http://" in caught.value.message
