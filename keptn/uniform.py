"""Keptn's uniform as pure code: integration ids, subscription matching and validation.

An *integration* (a Keptn service such as helm-service, or a remote execution plane) registers
with the control plane and holds *subscriptions*: an event type pattern plus a filter on
``data.project``/``data.stage``/``data.service``. These rules are go-utils'
(``IntegrationID.Hash``, ``eventmatcher.Matches``) and shipyard-controller's
(``UniformParamsValidator``); the store, the API and the push delivery all call this module.

Patterns are NATS subjects, as Keptn's in-cluster distributor subscribed them: tokens separated by
dots, ``*`` matches exactly one token, ``>`` (last token only) matches one or more remaining
tokens, and any other token must be equal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from keptn.errors import InvalidInputError

__all__ = [
    "WEBHOOK_SERVICE_NAME",
    "SubscriptionFilter",
    "event_type_matches",
    "filter_matches",
    "integration_id",
    "subscription_matches",
    "validate_event_pattern",
    "validate_push_url",
    "validate_subscription",
]

WEBHOOK_SERVICE_NAME = "webhook-service"
"""The integration whose every subscription must name exactly one project (webhooks are per project)."""

_SINGLE = "*"
_REST = ">"


def integration_id(name: str, namespace: str, node_name: str) -> str:
    """Keptn's integration id: the hex SHA-1 of ``<name>-<namespace>-<node name>``.

    This is go-utils ``IntegrationID.Hash``, so an integration keeps the id it had in Keptn. Keptn
    refused an empty namespace or node name; Capstan integrations often run outside Kubernetes,
    so only the name is required (an empty part hashes as the empty string).

    Args:
        name: the integration name (``name`` of the registration).
        namespace: ``metadata.kubernetesmetadata.namespace``.
        node_name: ``metadata.hostname``.

    Returns:
        40 lower-case hex digits.

    Raises:
        InvalidInputError: the name is empty.
    """
    if not name:
        raise InvalidInputError("name: the integration name must not be empty", field="name")
    raw = f"{name}-{namespace}-{node_name}"
    return hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()


def event_type_matches(pattern: str, event_type: str) -> bool:
    """Whether an event type matches a subscription's NATS-style pattern.

    Args:
        pattern: e.g. ``sh.keptn.event.deployment.triggered``, ``sh.keptn.event.*.triggered`` or
            ``sh.keptn.>``.
        event_type: the CloudEvent ``type``.

    Returns:
        True if every token matches (see the module docstring).
    """
    wanted = pattern.split(".")
    tokens = event_type.split(".")
    for index, token in enumerate(wanted):
        if token == _REST and index == len(wanted) - 1:
            return len(tokens) > index  # ">" needs at least one token to match
        if index >= len(tokens):
            return False
        if token != _SINGLE and token != tokens[index]:
            return False
    return len(tokens) == len(wanted)


@dataclass(frozen=True)
class SubscriptionFilter:
    """Which projects, stages and services a subscription wants; an empty dimension means all.

    Attributes:
        projects: ``data.project`` must be one of these (when any is given).
        stages: ``data.stage`` must be one of these (when any is given).
        services: ``data.service`` must be one of these (when any is given).
    """

    projects: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    services: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        projects: Iterable[str] | None = None,
        stages: Iterable[str] | None = None,
        services: Iterable[str] | None = None,
    ) -> SubscriptionFilter:
        """Build a filter from Keptn's JSON lists (``null`` and ``[]`` both mean all)."""
        return cls(tuple(projects or ()), tuple(stages or ()), tuple(services or ()))


def _dimension_matches(allowed: tuple[str, ...], value: Any) -> bool:
    # Keptn joined the list with "," and tested the joined text for "": a list of empty strings
    # therefore meant "all" as well.
    if not any(allowed):
        return True
    return isinstance(value, str) and value in allowed


def filter_matches(filter: SubscriptionFilter, data: Any) -> bool:
    """Whether an event's ``data`` passes a subscription filter (go-utils ``eventmatcher.Matches``).

    Args:
        filter: the subscription's filter.
        data: the event's ``data``; anything but a JSON object never matches.

    Returns:
        True if each non-empty dimension contains the corresponding ``data`` field.
    """
    if not isinstance(data, Mapping):
        return False
    return (
        _dimension_matches(filter.projects, data.get("project", ""))
        and _dimension_matches(filter.stages, data.get("stage", ""))
        and _dimension_matches(filter.services, data.get("service", ""))
    )


def subscription_matches(pattern: str, filter: SubscriptionFilter, event: Mapping[str, Any]) -> bool:
    """Whether a wire event is for a subscription: its type matches the pattern and its data the filter.

    Args:
        pattern: the subscription's ``event``.
        filter: the subscription's ``filter``.
        event: the Keptn wire event (``type``, ``data``, ...).
    """
    event_type = event.get("type")
    return (
        isinstance(event_type, str)
        and event_type_matches(pattern, event_type)
        and filter_matches(filter, event.get("data"))
    )


def validate_event_pattern(pattern: str, *, field: str = "event") -> None:
    """Check a subscription's event pattern.

    Raises:
        InvalidInputError: the pattern is empty, has an empty token or white space, or uses ``>``
            anywhere but as the last token.
    """
    if not pattern:
        raise InvalidInputError(
            f"{field}: the event must be specified when setting up a subscription", field=field
        )
    tokens = pattern.split(".")
    if any(not token or any(ch.isspace() for ch in token) for token in tokens):
        raise InvalidInputError(
            f"{field}: invalid event pattern {pattern!r}: tokens between dots must be non-empty and"
            " contain no white space",
            field=field,
        )
    if _REST in tokens[:-1]:
        raise InvalidInputError(
            f"{field}: invalid event pattern {pattern!r}: '>' may only be the last token", field=field
        )


def validate_push_url(url: str, *, field: str = "url") -> None:
    """Check the URL Capstan pushes matching events to (a Capstan extension of subscriptions).

    Raises:
        InvalidInputError: not an absolute ``http``/``https`` URL with a host.
    """
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port that is not a number in range
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid or any(ch.isspace() for ch in url):
        raise InvalidInputError(
            f"{field}: must be an absolute http:// or https:// URL with a host, got {url!r}", field=field
        )


def validate_subscription(
    event: str,
    filter: SubscriptionFilter,
    *,
    url: str | None = None,
    integration_name: str = "",
    prefix: str = "",
) -> None:
    """Apply shipyard-controller's subscription rules (and Capstan's ``url`` rule).

    Args:
        event: the event type pattern.
        filter: the filter.
        url: the optional push URL.
        integration_name: the integration the subscription belongs to; ``webhook-service`` must
            name exactly one project in every subscription.
        prefix: prepended to field names in errors, e.g. ``subscriptions[2].``.

    Raises:
        InvalidInputError: naming the field (``event``, ``filter.stages``, ``filter.projects``, ``url``).
    """
    validate_event_pattern(event, field=f"{prefix}event")
    if any(filter.services) and not any(filter.stages):
        field = f"{prefix}filter.stages"
        raise InvalidInputError(
            f"{field}: at least one stage must be specified when setting up a subscription filter"
            " for a service",
            field=field,
        )
    if integration_name == WEBHOOK_SERVICE_NAME and len([p for p in filter.projects if p]) != 1:
        field = f"{prefix}filter.projects"
        raise InvalidInputError(
            f"{field}: webhook should refer to exactly one project (subscriptions of {WEBHOOK_SERVICE_NAME}"
            " cannot apply to all projects)",
            field=field,
        )
    if url is not None:
        validate_push_url(url, field=f"{prefix}url")
