"""What ``POST /api/v1/event`` accepts, and how an accepted event is stamped (behaviour spec §2.4).

Mirrors Keptn's api-service (``api/handlers/eventvalidation.go`` and ``event.go`` in Keptn
1.4.5), with its error messages. Where Capstan is stricter or differs, the docstrings say so.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable

from keptn.errors import InvalidEventError, InvalidNameError
from keptn.event_types import (
    ERROR_LOG_EVENT_TYPE,
    MONITORING_CONFIGURE_EVENT_TYPE,
    PROBLEM_EVENT_TYPE,
    EventKind,
    SequenceEventType,
    parse_event_type,
)
from keptn.events import DEFAULT_DATACONTENTTYPE, EventData, IncomingEvent, KeptnEvent, keptn_context_from
from keptn.names import validate_project_name, validate_service_name, validate_stage_name

__all__ = [
    "ALLOWED_SEQUENCE_KINDS",
    "ALLOWED_TASK_KINDS",
    "DEFAULT_EVENT_SOURCE",
    "DEFAULT_SHKEPTNSPECVERSION",
    "UNVALIDATED_EVENT_TYPES",
    "stamp_event",
    "validate_incoming_event",
]

DEFAULT_EVENT_SOURCE = "https://github.com/keptn/keptn/api"
"""The ``source`` the api-service gives an event that has none."""

DEFAULT_SHKEPTNSPECVERSION = "0.2.4"
"""The Keptn spec version Capstan implements, given to events that do not state one."""

UNVALIDATED_EVENT_TYPES = frozenset({ERROR_LOG_EVENT_TYPE, PROBLEM_EVENT_TYPE})
ALLOWED_SEQUENCE_KINDS = frozenset({EventKind.TRIGGERED})
ALLOWED_TASK_KINDS = frozenset({EventKind.STARTED, EventKind.FINISHED, EventKind.INVALIDATED})

_MISSING_SCOPE = "mandatory field(s) 'project', 'stage' or 'service' missing"


def _common_data(event: IncomingEvent) -> EventData:
    try:
        return EventData.from_event(event)
    except InvalidEventError as exc:
        # Keptn's wording (its Go decoder failed on the wrong JSON type), plus which field.
        raise InvalidEventError(
            f"could not parse common event data: {exc.message}", field=exc.field
        ) from None


def _require_scope(data: EventData) -> None:
    for name in ("project", "stage", "service"):
        if not getattr(data, name):
            raise InvalidEventError(f"{_MISSING_SCOPE} (data.{name} is empty)", field=f"data.{name}")


def _check_names(data: EventData) -> None:
    checks = (
        (data.project, validate_project_name, "data.project"),
        (data.stage, validate_stage_name, "data.stage"),
        (data.service, validate_service_name, "data.service"),
    )
    for value, check, field in checks:
        if value:
            try:
                check(value, field=field)
            except InvalidNameError as exc:
                raise InvalidEventError(exc.message, field=field) from None


def _validate_monitoring_configure(event: IncomingEvent) -> None:
    data = _common_data(event)
    provider = event.data.get("type")
    if provider is not None and not isinstance(provider, str):
        raise InvalidEventError(
            "could not parse common event data: data.type: must be a string", field="data.type"
        )
    # Keptn's message names 'service' although only project and type are checked.
    message = "mandatory fields(s) 'project', 'service' or 'type' missing"
    if not data.project:
        raise InvalidEventError(f"{message} (data.project is empty)", field="data.project")
    if not provider:
        raise InvalidEventError(f"{message} (data.type is empty)", field="data.type")
    _check_names(data)


def validate_incoming_event(event: IncomingEvent) -> None:
    """Check an event posted to ``/api/v1/event`` against Keptn's api-service rules.

    Keptn's rules, in Keptn's order and with Keptn's messages (each extended by the field):

    * ``sh.keptn.log.error`` and ``sh.keptn.events.problem``: not validated.
    * ``sh.keptn.event.monitoring.configure``: non-empty ``data.project`` and ``data.type``.
    * sequence types ``sh.keptn.event.<stage>.<sequence>.<kind>``: only ``triggered``
      ("unknown event type action: <kind>"); ``data.project``, ``data.stage``, ``data.service``
      non-empty; ``data.stage`` equal to the stage in the type.
    * task types ``sh.keptn.event.<task>.<kind>``: only ``started``, ``finished`` and
      ``invalidated`` (task ``.triggered`` events are the control plane's to send). ``started``
      needs project/stage/service and ``triggeredid``; ``finished`` additionally a non-empty
      ``data.result`` and ``data.status`` (any value: Keptn counts an unknown result as ``fail``).
    * anything else: "unknown event type".
    * the common data fields must have their JSON types (strings; labels a string map), else
      "could not parse common event data".

    Capstan beyond Keptn:

    * a type must start with ``sh.keptn.event.`` (Keptn only counted dots, so ``a.b.c.d.e``
      passed as a task type); ``<task>.status.changed`` is rejected as the action
      ``status.changed`` (Keptn's helpers misread it as a sequence type with action ``changed``).
    * ``data.project``, ``data.stage`` and ``data.service``, where present, must pass Keptn's
      name rules (:mod:`keptn.names`, which also excludes dots): Keptn enforced these names when
      projects, stages and services were created, so an event naming anything else could never
      be routed. Task and sequence names cannot contain dots by construction of the type.
    * ``invalidated`` events get the same type and name checks on their common data.

    Args:
        event: the partial event as read by :func:`keptn.events.parse_incoming_event`.

    Raises:
        InvalidEventError: naming the field concerned (``type``, ``triggeredid``, ``data.*``).
    """
    if event.type in UNVALIDATED_EVENT_TYPES:
        return
    if event.type == MONITORING_CONFIGURE_EVENT_TYPE:
        _validate_monitoring_configure(event)
        return
    try:
        parsed = parse_event_type(event.type)
    except InvalidEventError as exc:
        raise InvalidEventError(f"unknown event type: {exc.message}", field="type") from None

    allowed = ALLOWED_SEQUENCE_KINDS if isinstance(parsed, SequenceEventType) else ALLOWED_TASK_KINDS
    if parsed.kind not in allowed:
        raise InvalidEventError(
            f"unknown event type action: {parsed.kind.value} (type {event.type!r}; allowed: "
            + ", ".join(sorted(kind.value for kind in allowed))
            + ")",
            field="type",
        )
    data = _common_data(event)
    if isinstance(parsed, SequenceEventType):
        _require_scope(data)
        if data.stage != parsed.stage:
            raise InvalidEventError(
                "stage name in event data and in event type does not match"
                f" (data.stage {data.stage!r}, type {parsed.stage!r})",
                field="data.stage",
            )
    elif parsed.kind in (EventKind.STARTED, EventKind.FINISHED):
        _require_scope(data)
        if parsed.kind is EventKind.FINISHED:
            if not data.result:
                raise InvalidEventError("result field is not set (data.result)", field="data.result")
            if not data.status:
                raise InvalidEventError("status field is not set (data.status)", field="data.status")
        if not event.triggeredid:
            raise InvalidEventError("mandatory field 'triggeredid' missing", field="triggeredid")
    _check_names(data)


def stamp_event(event: IncomingEvent, *, now: datetime.datetime, new_id: Callable[[], str]) -> KeptnEvent:
    """Turn an accepted incoming event into the event Capstan stores, as Keptn's api-service did.

    * ``id``: the client's, if it sent a non-empty one, else ``new_id()``. Keptn always replaced
      it; Capstan keeps it so that a client retrying after a lost response does not create a
      second event (the store is idempotent on id).
    * ``time``: ``now`` (Keptn overwrote the client's time too), cut to milliseconds.
    * ``datacontenttype``: ``application/json``.
    * ``shkeptncontext``: :func:`keptn.events.keptn_context_from` of the client's value;
      ``new_id()`` also supplies a fresh context when the client sent none.
    * ``source``: the client's if non-empty, else ``https://github.com/keptn/keptn/api``
      (Keptn also re-serialised it through Go's ``url.Parse``; Capstan keeps it verbatim).
    * ``shkeptnspecversion``: the client's if non-empty, else ``0.2.4``.
    * ``triggeredid``, ``gitcommitid`` and extension attributes are carried over (empty strings
      dropped); ``data`` is deep-copied.

    Stamping does not validate: call :func:`validate_incoming_event` first.

    Args:
        event: the incoming event.
        now: the current time, time-zone-aware.
        new_id: returns a fresh UUID string (e.g. ``lambda: str(uuid.uuid4())``).

    Returns:
        The complete event.

    Raises:
        ValueError: if ``now`` is naive.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("stamp_event needs a time-zone-aware 'now'")
    return KeptnEvent(
        specversion="1.0",
        id=event.id or new_id(),
        source=event.source or DEFAULT_EVENT_SOURCE,
        type=event.type,
        time=now,
        datacontenttype=DEFAULT_DATACONTENTTYPE,
        shkeptncontext=keptn_context_from(event.shkeptncontext, new_uuid=new_id),
        triggeredid=event.triggeredid or None,
        gitcommitid=event.gitcommitid or None,
        shkeptnspecversion=event.shkeptnspecversion or DEFAULT_SHKEPTNSPECVERSION,
        data=copy.deepcopy(event.data),
        **event.extensions,
    )
