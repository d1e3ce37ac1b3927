"""Keptn CloudEvent types: ``sh.keptn.event.<task>.<kind>`` and ``sh.keptn.event.<stage>.<seq>.<kind>``.

Keptn tells the two formats apart by counting dot-separated parts (go-utils ``IsTaskEventType``:
5 parts, ``IsSequenceEventType``: 6 parts), which is why no task, stage or sequence name may
contain a dot.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from keptn.errors import InvalidEventError

__all__ = [
    "ERROR_LOG_EVENT_TYPE",
    "KEPTN_EVENT_PREFIX",
    "MONITORING_CONFIGURE_EVENT_TYPE",
    "PROBLEM_EVENT_TYPE",
    "EventKind",
    "SequenceEventType",
    "TaskEventType",
    "maybe_parse_event_type",
    "parse_event_type",
    "sequence_event_type",
    "task_event_type",
]

KEPTN_EVENT_PREFIX = "sh.keptn.event."
"""Prefix of every task and sequence event type."""

MONITORING_CONFIGURE_EVENT_TYPE = "sh.keptn.event.monitoring.configure"
"""``keptn configure monitoring``: asks SLI providers to set up monitoring (data.type = provider)."""

ERROR_LOG_EVENT_TYPE = "sh.keptn.log.error"
"""An integration reports an error; stored as an integration log, never validated."""

PROBLEM_EVENT_TYPE = "sh.keptn.events.problem"
"""Legacy problem event from monitoring tools (note ``events``); never validated."""


class EventKind(StrEnum):
    """The last part(s) of an event type: what happened to the task or sequence."""

    TRIGGERED = "triggered"
    STARTED = "started"
    STATUS_CHANGED = "status.changed"
    FINISHED = "finished"
    INVALIDATED = "invalidated"


_KINDS_BY_VALUE: dict[str, EventKind] = {kind.value: kind for kind in EventKind}
_STATUS_CHANGED_SUFFIX = "." + EventKind.STATUS_CHANGED.value


@dataclass(frozen=True, slots=True)
class TaskEventType:
    """A task event type, ``sh.keptn.event.<task>.<kind>``.

    Attributes:
        task: the task name, e.g. ``deployment`` or ``get-sli``.
        kind: what happened to the task.
    """

    task: str
    kind: EventKind

    def __str__(self) -> str:
        return f"{KEPTN_EVENT_PREFIX}{self.task}.{self.kind.value}"

    def with_kind(self, kind: EventKind) -> TaskEventType:
        """Return the same task's event type of another kind (e.g. the ``.finished`` of a ``.started``).

        Args:
            kind: the new kind.

        Returns:
            A new ``TaskEventType``.
        """
        return TaskEventType(self.task, kind)


@dataclass(frozen=True, slots=True)
class SequenceEventType:
    """A sequence event type, ``sh.keptn.event.<stage>.<sequence>.<kind>``.

    Attributes:
        stage: the stage name, e.g. ``dev``.
        sequence: the sequence name, e.g. ``delivery``.
        kind: what happened to the sequence.
    """

    stage: str
    sequence: str
    kind: EventKind

    def __str__(self) -> str:
        return f"{KEPTN_EVENT_PREFIX}{self.stage}.{self.sequence}.{self.kind.value}"

    def with_kind(self, kind: EventKind) -> SequenceEventType:
        """Return the same sequence's event type of another kind.

        Args:
            kind: the new kind.

        Returns:
            A new ``SequenceEventType``.
        """
        return SequenceEventType(self.stage, self.sequence, kind)


def _invalid(event_type: str, reason: str) -> InvalidEventError:
    return InvalidEventError(f"invalid event type {event_type!r}: {reason}", field="type")


def parse_event_type(event_type: str) -> TaskEventType | SequenceEventType:
    """Split a Keptn event type into its task or stage/sequence and its kind.

    ``sh.keptn.event.<a>.<kind>`` is a task event and ``sh.keptn.event.<a>.<b>.<kind>`` a sequence
    event, with ``<kind>`` one of :class:`EventKind`. The two-part kind ``status.changed`` is
    recognised as such: ``sh.keptn.event.deployment.status.changed`` is a *task* event.

    Args:
        event_type: the CloudEvent ``type``.

    Returns:
        A :class:`TaskEventType` or a :class:`SequenceEventType`.

    Raises:
        InvalidEventError: (field ``type``) if the type lacks the ``sh.keptn.event.`` prefix, has
            an empty part, the wrong number of parts, or an unknown kind.
    """
    if not isinstance(event_type, str) or not event_type.startswith(KEPTN_EVENT_PREFIX):
        raise _invalid(str(event_type), f"must start with {KEPTN_EVENT_PREFIX!r}")
    rest = event_type[len(KEPTN_EVENT_PREFIX) :]
    # Keptn's helpers count parts and so classify "<task>.status.changed" (6 parts) as a sequence
    # type with kind "changed" - the api-service then rejects it and the controller ignores it.
    # We recognise the two-part kind first, so that it means what the spec says it means.
    if rest.endswith(_STATUS_CHANGED_SUFFIX):
        names = rest[: -len(_STATUS_CHANGED_SUFFIX)].split(".")
        kind_text = EventKind.STATUS_CHANGED.value
    else:
        *names, kind_text = rest.split(".")
    if not names:
        raise _invalid(event_type, "the task (or stage and sequence) name is missing")
    if any(part == "" for part in names) or kind_text == "":
        raise _invalid(event_type, "empty part between dots")
    kind = _KINDS_BY_VALUE.get(kind_text)
    if kind is None:
        allowed = ", ".join(k.value for k in EventKind)
        raise _invalid(event_type, f"unknown kind {kind_text!r} (expected one of: {allowed})")
    if len(names) == 1:
        return TaskEventType(names[0], kind)
    if len(names) == 2:
        return SequenceEventType(names[0], names[1], kind)
    raise _invalid(
        event_type,
        "expected sh.keptn.event.<task>.<kind> or sh.keptn.event.<stage>.<sequence>.<kind>"
        " (names must not contain dots)",
    )


def maybe_parse_event_type(event_type: str) -> TaskEventType | SequenceEventType | None:
    """Like :func:`parse_event_type`, but None for anything else (``sh.keptn.log.error``, …).

    For code that handles every accepted event, including the special types
    (``monitoring.configure``, ``sh.keptn.log.error``, ``sh.keptn.events.problem``) that are
    neither task nor sequence events.

    Args:
        event_type: the CloudEvent ``type``.

    Returns:
        The parsed type, or None.
    """
    try:
        return parse_event_type(event_type)
    except InvalidEventError:
        return None


def _check_name(what: str, name: str) -> None:
    if not name or "." in name:
        raise InvalidEventError(
            f"{what} name {name!r} cannot be used in an event type: it must be non-empty and free of dots",
            field="type",
        )


def task_event_type(task: str, kind: EventKind | str) -> str:
    """Build ``sh.keptn.event.<task>.<kind>``.

    Args:
        task: the task name (non-empty, no dots).
        kind: an :class:`EventKind` or its value.

    Returns:
        The event type string.

    Raises:
        InvalidEventError: if the task name is empty or has a dot, or the kind is unknown.
    """
    _check_name("task", task)
    return str(TaskEventType(task, _kind(kind)))


def sequence_event_type(stage: str, sequence: str, kind: EventKind | str) -> str:
    """Build ``sh.keptn.event.<stage>.<sequence>.<kind>``.

    Args:
        stage: the stage name (non-empty, no dots).
        sequence: the sequence name (non-empty, no dots).
        kind: an :class:`EventKind` or its value.

    Returns:
        The event type string.

    Raises:
        InvalidEventError: if a name is empty or has a dot, or the kind is unknown.
    """
    _check_name("stage", stage)
    _check_name("sequence", sequence)
    return str(SequenceEventType(stage, sequence, _kind(kind)))


def _kind(kind: EventKind | str) -> EventKind:
    found = _KINDS_BY_VALUE.get(str(kind))
    if found is None:
        raise InvalidEventError(f"unknown event kind {kind!r}", field="type")
    return found
