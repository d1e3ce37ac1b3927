"""The sequence timeline: a Keptn context's stored events as stages → tasks → events. Pure code.

Keptn's Bridge drew the same picture from the same events: each stage opens with its sequence's
``<stage>.<sequence>.triggered`` and closes with its ``.finished``; in between, each task is one
``<task>.triggered`` the control plane emitted, answered by ``.started``/``.finished`` events whose
``triggeredid`` is that event's id. Tasks appear in the order they were triggered; answers whose
``.triggered`` is not among the events (or events of no known kind) are listed with the stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from api.bridge.templating import parse_time
from keptn.event_types import EventKind, SequenceEventType, TaskEventType, maybe_parse_event_type
from keptn.sequence import worst_result

_LATE = datetime.max.replace(tzinfo=UTC)
"""Sorts events without a time last."""


@dataclass(frozen=True)
class TimelineEvent:
    """One stored event as the timeline lists it."""

    id: str
    type: str
    source: str
    time: datetime | None
    result: str
    status: str


@dataclass
class Task:
    """One task of a stage: its ``.triggered`` and the answers to it."""

    name: str
    triggered_id: str
    triggered_at: datetime | None
    events: list[TimelineEvent] = field(default_factory=list)

    @property
    def state(self) -> str:
        """``finished`` after a ``.finished`` answer, ``started`` after a ``.started``, else ``triggered``."""
        kinds = {event.type.rsplit(".", 1)[-1] for event in self.events}
        if "finished" in kinds:
            return "finished"
        return "started" if "started" in kinds else "triggered"

    @property
    def result(self) -> str:
        """The worst ``result`` of its ``.finished`` events; empty while none arrived."""
        return worst(e.result for e in self.events if e.type.endswith(".finished"))

    @property
    def ended_at(self) -> datetime | None:
        """Time of the last ``.finished`` answer, None while it runs."""
        times = [e.time for e in self.events if e.type.endswith(".finished") and e.time]
        return max(times) if times else None

    @property
    def duration(self) -> float | None:
        """Seconds from the trigger to the last ``.finished``; None while it runs."""
        if self.triggered_at is None or self.ended_at is None:
            return None
        return max(0.0, (self.ended_at - self.triggered_at).total_seconds())


@dataclass
class Stage:
    """One stage of the context: its sequence's own events and its tasks."""

    name: str
    sequence: str = ""
    sequence_events: list[TimelineEvent] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    other_events: list[TimelineEvent] = field(default_factory=list)
    """Events of the stage that answer no task listed here (or are of no known kind)."""

    @property
    def started_at(self) -> datetime | None:
        """When the stage's sequence was triggered (else its first task)."""
        times = [e.time for e in self.sequence_events if e.type.endswith(".triggered") and e.time]
        times = times or [t.triggered_at for t in self.tasks if t.triggered_at]
        return min(times) if times else None

    @property
    def finished(self) -> TimelineEvent | None:
        """The stage's last sequence ``.finished`` event, None while it runs."""
        done = [e for e in self.sequence_events if e.type.endswith(".finished")]
        return done[-1] if done else None

    @property
    def result(self) -> str:
        """The result of its sequence's ``.finished`` (empty while it runs)."""
        return self.finished.result if self.finished else ""

    @property
    def state(self) -> str:
        """``finished`` once its sequence finished, else ``running``."""
        return "finished" if self.finished else "running"

    @property
    def duration(self) -> float | None:
        """Seconds from the stage's start to its sequence's ``.finished``; None while it runs."""
        end = self.finished.time if self.finished else None
        if self.started_at is None or end is None:
            return None
        return max(0.0, (end - self.started_at).total_seconds())


@dataclass
class Timeline:
    """Every stage of a Keptn context in the order they started."""

    keptn_context: str
    stages: list[Stage]

    @property
    def result(self) -> str:
        """The worst result of the stages that finished; empty while none has."""
        return worst(stage.result for stage in self.stages)

    def task(self, triggered_id: str) -> Task | None:
        """The task whose ``.triggered`` has this id, or None."""
        return next((t for s in self.stages for t in s.tasks if t.triggered_id == triggered_id), None)


def worst(results: Iterable[str]) -> str:
    """The worst of ``pass``/``warning``/``fail`` among ``results`` (others ignored); empty if none."""
    return worst_result(results, unknown_is_fail=False) or ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _event(wire: dict[str, Any]) -> TimelineEvent:
    data = wire.get("data")
    data = data if isinstance(data, dict) else {}
    return TimelineEvent(
        id=_text(wire.get("id")),
        type=_text(wire.get("type")),
        source=_text(wire.get("source")),
        time=parse_time(wire.get("time")),
        result=_text(data.get("result")),
        status=_text(data.get("status")),
    )


def _stage_name(wire: dict[str, Any]) -> str:
    data = wire.get("data")
    return _text(data.get("stage")) if isinstance(data, dict) else ""


def build_timeline(keptn_context: str, events: Sequence[dict[str, Any]]) -> Timeline:
    """Group a context's stored wire events into stages, tasks and events.

    Args:
        keptn_context: the context the events belong to.
        events: its events in any order (they are ordered by time here; equal times keep the
            given order, so pass them oldest first when times can tie).
    """
    ordered = sorted(events, key=lambda e: parse_time(e.get("time")) or _LATE)
    stages: dict[str, Stage] = {}
    tasks: dict[str, tuple[Stage, Task]] = {}

    def stage_of(name: str) -> Stage:
        if name not in stages:
            stages[name] = Stage(name=name)
        return stages[name]

    pending: list[dict[str, Any]] = []
    for wire in ordered:
        parsed = maybe_parse_event_type(_text(wire.get("type")))
        event = _event(wire)
        if isinstance(parsed, SequenceEventType):
            stage = stage_of(_stage_name(wire) or parsed.stage)
            stage.sequence = stage.sequence or parsed.sequence
            stage.sequence_events.append(event)
        elif isinstance(parsed, TaskEventType) and parsed.kind is EventKind.TRIGGERED:
            stage = stage_of(_stage_name(wire))
            task = Task(name=parsed.task, triggered_id=event.id, triggered_at=event.time, events=[event])
            stage.tasks.append(task)
            tasks[event.id] = (stage, task)
        else:
            pending.append(wire)
    # Answers second: an answer stored with an earlier time than its trigger still finds it.
    for wire in pending:
        event = _event(wire)
        owner = tasks.get(_text(wire.get("triggeredid")))
        if owner is not None:
            owner[1].events.append(event)
        else:
            stage_of(_stage_name(wire)).other_events.append(event)
    for stage in stages.values():
        stage.tasks.sort(key=lambda t: t.triggered_at or _LATE)
        for task in stage.tasks:
            task.events.sort(key=lambda e: e.time or _LATE)
    ordered_stages = sorted(stages.values(), key=lambda s: s.started_at or _LATE)
    return Timeline(keptn_context=keptn_context, stages=ordered_stages)
