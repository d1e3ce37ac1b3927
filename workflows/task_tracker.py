"""Bookkeeping of one task's answers (deterministic; used inside the context workflow)."""

from __future__ import annotations

from typing import Any

from keptn.event_types import EventKind, TaskEventType, maybe_parse_event_type
from workflows.context_models import TaskCompletion

STARTED = "started"
FINISHED = "finished"


def answer_kind(event_type: str) -> str | None:
    """``started`` or ``finished`` for a task answer's type, None for anything else."""
    parsed = maybe_parse_event_type(event_type)
    if not isinstance(parsed, TaskEventType):
        return None
    if parsed.kind is EventKind.STARTED:
        return STARTED
    if parsed.kind is EventKind.FINISHED:
        return FINISHED
    return None


class TaskTracker:
    """The answers one task ``.triggered`` event received.

    Args:
        name: the task name.
        triggered_id: the id of the task's ``.triggered`` event.
        completion: how answers are counted (see ``TaskCompletion``).
    """

    def __init__(self, name: str, triggered_id: str, completion: TaskCompletion) -> None:
        self.name = name
        self.triggered_id = triggered_id
        self.completion = completion
        self.started_sources: list[str] = []
        self.finished_sources: list[str] = []
        self.finished_data: list[dict[str, Any]] = []
        """``data`` of every ``.finished``, in arrival order."""
        self.events: list[dict[str, Any]] = []
        """Every answer (wire events) in arrival order, for the state view."""

    def record(self, event: dict[str, Any]) -> bool:
        """Record an answer; return False if it is not a started/finished answer."""
        kind = answer_kind(str(event.get("type", "")))
        if kind is None:
            return False
        source = str(event.get("source", ""))
        self.events.append(event)
        if kind == STARTED:
            self.started_sources.append(source)
        else:
            self.finished_sources.append(source)
            data = event.get("data")
            self.finished_data.append(data if isinstance(data, dict) else {})
        return True

    @property
    def answered(self) -> bool:
        """Whether any answer arrived (what Keptn's started-timeout waits for)."""
        return bool(self.started_sources or self.finished_sources)

    @property
    def complete(self) -> bool:
        """Whether the task is finished, by the configured counting rule."""
        if not self.finished_sources:
            return False
        if self.completion == "keptn":
            # Keptn: #finished == #started (> 0). A .finished without .started never completes.
            return len(self.finished_sources) == len(self.started_sources)
        pending = list(self.started_sources)
        for source in self.finished_sources:
            if source in pending:
                pending.remove(source)
        return not pending

    @property
    def last_finished_data(self) -> dict[str, Any] | None:
        """``data`` of the last ``.finished`` answer."""
        return self.finished_data[-1] if self.finished_data else None
