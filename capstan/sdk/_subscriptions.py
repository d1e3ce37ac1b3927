"""Subscriptions: which ``.triggered`` events an integration receives (behaviour spec §8).

A subscription names an event type and filters on ``data.project``, ``data.stage`` and
``data.service``; an empty filter list means "all". The same rules decide which events the pull
loop asks for (:meth:`Subscription.query_params`) and which events reach a handler
(:meth:`Subscription.matches`), as go-utils' ``eventmatcher`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Subscription", "SubscriptionBook"]

_FILTER_KEYS = (("projects", "project"), ("stages", "stage"), ("services", "service"))


def _subject_matches(pattern: str, subject: str) -> bool:
    # NATS subjects, as Keptn's in-cluster subscriptions used them: "*" is one token, ">" the rest.
    if pattern == subject:
        return True
    wanted, actual = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(actual) > index
        if index >= len(actual) or (token != "*" and token != actual[index]):
            return False
    return len(wanted) == len(actual)


def _names(value: object) -> tuple[str, ...]:
    # Go clients serialise an empty filter list as null.
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"filter lists must be lists of strings, got {value!r}")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class Subscription:
    """One uniform subscription: an event type and a project/stage/service filter.

    Attributes:
        event: the event type, e.g. ``sh.keptn.event.deployment.triggered``.
        projects: only events of these projects; empty (the default) means all.
        stages: only events of these stages; empty (the default) means all.
        services: only events of these services; empty (the default) means all.
        id: the id the control plane gave the subscription; None until it was registered.
        url: where the control plane pushes matching events (Capstan's extension for push
            mode); None in pull mode.
    """

    event: str
    projects: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    id: str | None = None
    url: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the subscription as the uniform API's JSON object."""
        body: dict[str, Any] = {
            "event": self.event,
            "filter": {
                "projects": list(self.projects),
                "stages": list(self.stages),
                "services": list(self.services),
            },
        }
        if self.id is not None:
            body["id"] = self.id
        if self.url is not None:
            body["url"] = self.url
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Subscription:
        """Read a subscription from the uniform API's JSON object.

        Args:
            body: e.g. ``{"id": "…", "event": "…", "filter": {"projects": ["sockshop"]}}``.

        Returns:
            The subscription.

        Raises:
            ValueError: if ``event`` is missing or a filter is not a list of strings.
        """
        if not isinstance(body, Mapping):
            raise ValueError(f"a subscription must be an object, got {body!r}")
        event = body.get("event")
        if not isinstance(event, str) or not event:
            raise ValueError(f"subscription without an event type: {dict(body)!r}")
        raw_filter = body.get("filter") or {}
        if not isinstance(raw_filter, Mapping):
            raise ValueError(f"subscription filter must be an object, got {raw_filter!r}")
        sub_id, url = body.get("id"), body.get("url")
        return cls(
            event=event,
            projects=_names(raw_filter.get("projects")),
            stages=_names(raw_filter.get("stages")),
            services=_names(raw_filter.get("services")),
            id=sub_id if isinstance(sub_id, str) and sub_id else None,
            url=url if isinstance(url, str) and url else None,
        )

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether an event has this subscription's type and passes its filter.

        Args:
            event: a Keptn event as a JSON object.

        Returns:
            True if every non-empty filter list contains the event's ``data`` value.
        """
        event_type = event.get("type")
        if not isinstance(event_type, str) or not _subject_matches(self.event, event_type):
            return False
        data = event.get("data")
        data = data if isinstance(data, Mapping) else {}
        for attribute, key in _FILTER_KEYS:
            allowed: tuple[str, ...] = getattr(self, attribute)
            if allowed and data.get(key) not in allowed:
                return False
        return True

    def query_params(self) -> dict[str, str]:
        """Return the query of ``GET /controlPlane/v1/event/triggered/{type}`` for this subscription.

        A filter value is sent only when exactly one is configured, as Keptn's HTTP connector
        does; the event is matched against the whole filter after it arrived.
        """
        params: dict[str, str] = {}
        for attribute, key in _FILTER_KEYS:
            allowed: tuple[str, ...] = getattr(self, attribute)
            if len(allowed) == 1:
                params[key] = allowed[0]
        return params

    @property
    def pollable(self) -> bool:
        """Whether the pull endpoint can serve it: a concrete ``.triggered`` type, no wildcard."""
        tokens = self.event.split(".")
        return self.event.endswith(".triggered") and "*" not in tokens and ">" not in tokens


class SubscriptionBook:
    """The integration's current subscriptions, replaced whenever the control plane sends them.

    Starts with the subscriptions the integration declared; the heartbeat replaces them with the
    control plane's (which carry ids and reflect edits made in the UI).
    """

    def __init__(self, initial: Iterable[Subscription]) -> None:
        self._current = tuple(initial)

    @property
    def current(self) -> tuple[Subscription, ...]:
        """The subscriptions in force now."""
        return self._current

    def replace(self, subscriptions: Iterable[Subscription]) -> bool:
        """Install a new list; return whether it differs from the current one."""
        new = tuple(subscriptions)
        if new == self._current:
            return False
        self._current = new
        return True

    def first_match(self, event: Mapping[str, Any]) -> Subscription | None:
        """The first current subscription the event matches, if any."""
        return next((sub for sub in self._current if sub.matches(event)), None)
