"""Reading Temporal workflow histories into timestamps, for the per-step breakdown of a hand-off.

All clocks compared here are wall clocks of this one machine: the benchmark's ``time.time()``,
PostgreSQL's ``now()`` and the Temporal server's event times.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from bench.stats import percentile


def event_time(event: HistoryEvent) -> float:
    """The event's server time as seconds since the epoch."""
    return event.event_time.seconds + event.event_time.nanos / 1e9


def payload_json(payloads: Any) -> Any:
    """The first payload of a ``Payloads`` message, decoded as JSON (None if there is none)."""
    if not payloads.payloads:
        return None
    return json.loads(payloads.payloads[0].data)


@dataclass
class Activity:
    """One activity of a history: its times and the workflow task that scheduled it."""

    name: str
    input: Any
    scheduled: float
    started: float | None
    completed: float | None
    wft_started: float | None
    """When the workflow task that scheduled it started."""
    wft_completed: float | None
    """When that workflow task completed (= scheduled)."""


@dataclass
class Signal:
    """One signal of a history."""

    name: str
    input: Any
    time: float


@dataclass
class History:
    """A workflow history reduced to its signals and activities."""

    signals: list[Signal]
    activities: list[Activity]
    length: int
    """Number of history events."""
    workflow_tasks: int
    """Number of completed workflow tasks."""
    started: float
    """Time of the first event (the workflow's start)."""

    def signal(self, name: str, match: Callable[[Any], bool]) -> Signal | None:
        """The first signal called ``name`` whose input matches."""
        return next((s for s in self.signals if s.name == name and match(s.input)), None)

    def activity(self, name: str, match: Callable[[Any], bool]) -> Activity | None:
        """The first activity called ``name`` whose input matches."""
        return next((a for a in self.activities if a.name == name and match(a.input)), None)


async def load_history(client: Client, workflow_id: str) -> History:
    """Fetch a workflow's whole history (all runs are one here: nothing continues-as-new)."""
    fetched = await client.get_workflow_handle(workflow_id).fetch_history()
    by_id: dict[int, HistoryEvent] = {event.event_id: event for event in fetched.events}
    signals: list[Signal] = []
    activities: dict[int, Activity] = {}
    for event in fetched.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs = event.workflow_execution_signaled_event_attributes
            signals.append(Signal(attrs.signal_name, payload_json(attrs.input), event_time(event)))
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = event.activity_task_scheduled_event_attributes
            wft = by_id.get(scheduled.workflow_task_completed_event_id)
            wft_started = None
            if wft is not None:
                started_id = wft.workflow_task_completed_event_attributes.started_event_id
                wft_started = event_time(by_id[started_id]) if started_id in by_id else None
            activities[event.event_id] = Activity(
                name=scheduled.activity_type.name,
                input=payload_json(scheduled.input),
                scheduled=event_time(event),
                started=None,
                completed=None,
                wft_started=wft_started,
                wft_completed=event_time(wft) if wft is not None else None,
            )
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            activities[event.activity_task_started_event_attributes.scheduled_event_id].started = event_time(
                event
            )
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled_id = event.activity_task_completed_event_attributes.scheduled_event_id
            activities[scheduled_id].completed = event_time(event)
    workflow_tasks = sum(
        1 for e in fetched.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    )
    started = event_time(fetched.events[0]) if fetched.events else 0.0
    return History(signals, list(activities.values()), len(fetched.events), workflow_tasks, started)


def history_counts(histories: list[History]) -> dict[str, Any]:
    """Mean history size per workflow: events, workflow tasks, signals, activities by name."""
    if not histories:
        return {}
    count = len(histories)
    by_name: dict[str, int] = {}
    for history in histories:
        for act in history.activities:
            by_name[act.name] = by_name.get(act.name, 0) + 1
    return {
        "workflows": count,
        "history_events": round(sum(h.length for h in histories) / count, 1),
        "workflow_tasks": round(sum(h.workflow_tasks for h in histories) / count, 1),
        "signals": round(sum(len(h.signals) for h in histories) / count, 1),
        "activities": round(sum(len(h.activities) for h in histories) / count, 1),
        "activities_by_name": {name: round(n / count, 1) for name, n in sorted(by_name.items())},
    }


def delta(start: float | None, end: float | None) -> float | None:
    """``end - start`` in seconds, None if either is unknown."""
    if start is None or end is None:
        return None
    return end - start


def segment_table(rows: list[dict[str, float | None]]) -> dict[str, dict[str, float | int | None]]:
    """p50/p90 (ms) and sample count of each column over the sampled rows, in column order."""
    table: dict[str, dict[str, float | int | None]] = {}
    for name in dict.fromkeys(name for row in rows for name in row):
        values = [v * 1000 for row in rows if (v := row.get(name)) is not None]
        table[name] = {
            "n": len(values),
            "p50": round(percentile(values, 50), 1) if values else None,
            "p90": round(percentile(values, 90), 1) if values else None,
        }
    return table
