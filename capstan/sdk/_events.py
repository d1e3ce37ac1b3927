"""The events an integration sends back: ``.started``, ``.status.changed`` and ``.finished``.

Mirrors go-utils ``pkg/sdk`` (``createStartedEvent``, ``createFinishedEvent``,
``createFinishedEventWithError``): an answer carries ``triggeredid`` = the ``.triggered`` event's
id, the same ``shkeptncontext`` and ``gitcommitid``, ``source`` = the integration's name, and the
scope (``project``, ``stage``, ``service``, ``labels``) of the ``.triggered`` event's data. A
``.finished`` without ``status``/``result`` gets ``succeeded``/``pass``.

Every answer's ``id`` and ``time`` are chosen once, when it is built, so that resending it after
a lost response is idempotent (the gateway keeps the client's id and stores an id once). The id
of a ``.started`` is derived from the source and the ``.triggered`` id (:func:`started_id`), so a
``.started`` built again for the same task (its event released and taken again after the control
plane was unreachable) is stored once too: Keptn ends a task when it has as many ``.finished`` as
``.started`` events, and a second ``.started`` would hold it open. Other answers get a uuid4.
"""

from __future__ import annotations

import copy
import datetime
import json
import uuid
from collections.abc import Mapping
from typing import Any

from keptn.event_types import EventKind, TaskEventType, maybe_parse_event_type
from keptn.events import format_keptn_time

__all__ = [
    "SPEC_VERSION",
    "InvalidTriggeredEvent",
    "answer_event",
    "finished_data",
    "parse_triggered",
    "started_id",
    "scope_data",
]

SPEC_VERSION = "0.2.4"
"""The Keptn spec version answers declare (go-utils' ``shkeptnspecversion``)."""

_SCOPE_KEYS = ("project", "stage", "service", "labels")


class InvalidTriggeredEvent(ValueError):
    """A received event cannot be answered (no id, not a task ``.triggered``, no scope)."""


def parse_triggered(event: Mapping[str, Any]) -> TaskEventType:
    """Check that an event is a task ``.triggered`` event an integration can answer.

    Args:
        event: the event as a JSON object.

    Returns:
        Its parsed type.

    Raises:
        InvalidTriggeredEvent: naming what is missing.
    """
    for attribute in ("id", "type", "shkeptncontext"):
        value = event.get(attribute)
        if not isinstance(value, str) or not value:
            raise InvalidTriggeredEvent(f"event attribute '{attribute}' must be a non-empty string")
    parsed = maybe_parse_event_type(event["type"])
    if not isinstance(parsed, TaskEventType) or parsed.kind is not EventKind.TRIGGERED:
        raise InvalidTriggeredEvent(f"'{event['type']}' is not a task .triggered event")
    data = event.get("data")
    if not isinstance(data, Mapping):
        raise InvalidTriggeredEvent("event attribute 'data' must be an object")
    for key in ("project", "stage", "service"):
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise InvalidTriggeredEvent(f"data.{key} must be a non-empty string")
    return parsed


def scope_data(triggered: Mapping[str, Any]) -> dict[str, Any]:
    """Return the ``.triggered`` event's ``project``, ``stage``, ``service`` and ``labels``.

    Args:
        triggered: the ``.triggered`` event as a JSON object.

    Returns:
        A new dict with those keys that are present (labels deep-copied).
    """
    data = triggered.get("data")
    data = data if isinstance(data, Mapping) else {}
    return {key: copy.deepcopy(data[key]) for key in _SCOPE_KEYS if data.get(key) is not None}


def finished_data(
    triggered: Mapping[str, Any],
    extra: Mapping[str, Any] | None,
    *,
    result: str | None = None,
    status: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """Build a ``.finished`` event's data: scope, then ``extra``, then result/status/message.

    ``result``/``status``/``message`` given here win over the same keys in ``extra``; a result or
    status that is still empty becomes ``pass``/``succeeded``.

    Args:
        triggered: the ``.triggered`` event answered.
        extra: task-specific data, e.g. ``{"deployment": {...}}``.
        result: ``pass``, ``warning`` or ``fail``.
        status: ``succeeded``, ``errored`` or ``unknown``.
        message: free text.

    Returns:
        The data, checked to be JSON-serialisable.

    Raises:
        TypeError: if ``extra`` is not a mapping or the data cannot be serialised as JSON.
    """
    if extra is not None and not isinstance(extra, Mapping):
        raise TypeError(f"task data must be a dict (or None), not {type(extra).__name__}")
    data = scope_data(triggered)
    data.update(extra or {})
    for key, value in (("result", result), ("status", status), ("message", message)):
        if value is not None:
            data[key] = value
    if not data.get("status"):
        data["status"] = "succeeded"
    if not data.get("result"):
        data["result"] = "pass"
    _check_json(data)
    return data


def _check_json(data: Mapping[str, Any]) -> None:
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"task data is not JSON-serialisable: {exc}") from None


_STARTED_IDS = uuid.UUID("5d1e0b7c-3f0c-4a55-9a8e-2b6f4c1d9e21")
"""Namespace of :func:`started_id`'s uuid5s."""


def started_id(source: str, triggered_id: str) -> str:
    """The id of the ``.started`` that ``source`` sends for the ``.triggered`` event ``triggered_id``."""
    return str(uuid.uuid5(_STARTED_IDS, f"{source}\n{triggered_id}"))


def answer_event(
    triggered: Mapping[str, Any],
    kind: EventKind,
    *,
    source: str,
    data: Mapping[str, Any],
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Build an answer to a task ``.triggered`` event, with its id and the current time.

    Args:
        triggered: the ``.triggered`` event (checked by :func:`parse_triggered`).
        kind: ``STARTED``, ``STATUS_CHANGED`` or ``FINISHED``.
        source: the integration's name.
        data: the answer's data (see :func:`scope_data`, :func:`finished_data`).
        now: the event time; the current time when omitted.

    Returns:
        The event as a JSON object, ready for ``POST /api/v1/event``.
    """
    parsed = parse_triggered(triggered)
    _check_json(data)
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": started_id(source, triggered["id"]) if kind is EventKind.STARTED else str(uuid.uuid4()),
        "source": source,
        "type": str(parsed.with_kind(kind)),
        "time": format_keptn_time(now or datetime.datetime.now(datetime.UTC)),
        "datacontenttype": "application/json",
        "shkeptncontext": triggered["shkeptncontext"],
        "triggeredid": triggered["id"],
        "shkeptnspecversion": SPEC_VERSION,
        "data": copy.deepcopy(dict(data)),
    }
    git_commit = triggered.get("gitcommitid")
    if isinstance(git_commit, str) and git_commit:
        event["gitcommitid"] = git_commit
    # the distributed-tracing extension: the answer joins the trace of the task it answers
    for attribute in ("traceparent", "tracestate"):
        value = triggered.get(attribute)
        if isinstance(value, str) and value:
            event[attribute] = value
    return event
