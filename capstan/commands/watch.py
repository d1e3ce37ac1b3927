"""The model behind ``capstan trigger ... --watch``: a Keptn context's events as a tree.

:func:`build_model` is pure: it turns the context's stored events (``GET
/mongodb-datastore/event``), the sequence state view's entry (``GET /controlPlane/v1/sequence``)
and the project's shipyard into a :class:`WatchModel` — stage sequences, their tasks with state,
result and duration, the evaluations with their failing SLIs — and says whether the watch is
over. Drawing it (a rich tree, or one log line per change) is in :mod:`capstan.commands.watch_view`.

The overall state of the view alone does not end a watch: between ``dev.delivery.finished`` and
the follow-up ``staging.delivery.triggered`` the view briefly reads ``finished``. So a watch also
waits until every stage sequence triggered has its ``.finished`` and every follow-up the
shipyard's ``triggeredOn`` asks for has been triggered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keptn.event_types import EventKind, SequenceEventType, TaskEventType, maybe_parse_event_type
from keptn.sequence import PASSING_RESULTS, follow_up_sequences, worst_result
from keptn.shipyard import Shipyard

CONTROLLER_SOURCE = "shipyard-controller"
"""Source of the task triggers a sequence sends (others, e.g. lighthouse's get-sli, are nested work)."""

FINAL_STATES = frozenset({"finished", "aborted", "timedOut"})
"""Overall states of the sequence state view after which nothing runs any more."""


def parse_time(value: Any) -> datetime | None:
    """A Keptn event time (``2024-01-02T03:04:05.000Z``, up to nanoseconds) as aware UTC, or None."""
    if not isinstance(value, str) or not value:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())  # datetime keeps microseconds only
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def worse(first: str | None, second: str | None) -> str | None:
    """The worse of two results (fail > warning > pass; an unknown result counts as fail)."""
    if first is None or second is None:
        return first or second
    return worst_result((first, second))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass
class TaskNode:
    """One task of a stage sequence: its ``.triggered`` and the answers to it."""

    name: str
    triggered_id: str
    source: str
    triggered_at: datetime | None
    started: int = 0
    finished: int = 0
    result: str | None = None
    status: str | None = None
    ended_at: datetime | None = None

    @property
    def state(self) -> str:
        """triggered, started or finished (Keptn's counting: as many .finished as .started)."""
        if self.finished and self.finished >= self.started:
            return "finished"
        return "started" if self.started else "triggered"

    @property
    def end(self) -> datetime | None:
        """When it finished; None while an integration still works on it."""
        return self.ended_at if self.state == "finished" else None

    @property
    def nested(self) -> bool:
        """Work an integration asked for (e.g. ``get-sli``), not a task of the shipyard."""
        return self.source != CONTROLLER_SOURCE


@dataclass
class StageNode:
    """One sequence run in one stage (``<stage>.<sequence>.triggered`` up to its ``.finished``)."""

    stage: str
    sequence: str
    triggered_id: str
    triggered_at: datetime | None
    tasks: list[TaskNode] = field(default_factory=list)
    finished: bool = False
    result: str | None = None
    status: str | None = None
    message: str | None = None
    ended_at: datetime | None = None
    hint: str | None = None
    """What the sequence state view adds while it runs: ``paused`` or ``waiting for <context>``."""

    @property
    def state(self) -> str:
        """triggered, started, finished, or the view's hint (paused, waiting ...)."""
        if self.finished:
            return "finished"
        if self.hint:
            return self.hint
        return "started" if self.tasks else "triggered"

    @property
    def end(self) -> datetime | None:
        """When it finished; None while it runs."""
        return self.ended_at if self.finished else None

    def last_task(self) -> str | None:
        """The last finished shipyard task (what ``triggeredOn`` selectors ``<task>.result`` read)."""
        done = [t for t in self.tasks if not t.nested and t.state == "finished"]
        return done[-1].name if done else None


@dataclass
class SLI:
    """An indicator that did not pass, with the targets it violated."""

    name: str
    value: float | None
    status: str
    violated: list[str]


@dataclass
class EvaluationNode:
    """One ``evaluation.finished`` of the context."""

    stage: str
    source: str
    result: str | None
    score: float | None
    message: str | None
    slis: list[SLI]
    """Indicators with status fail or warning."""


@dataclass
class WatchModel:
    """What a watch shows of one Keptn context."""

    keptn_context: str
    project: str
    service: str | None
    name: str | None
    state: str
    stages: list[StageNode]
    evaluations: list[EvaluationNode]
    pending: list[str]
    """Follow-up sequences (``stage.sequence``) the shipyard asks for that have not started yet."""

    @property
    def result(self) -> str | None:
        """The worst result of the finished stage sequences; None before any finished."""
        result: str | None = None
        for stage in self.stages:
            if stage.finished:
                result = worse(result, stage.result or "fail")
        return result

    @property
    def ended(self) -> bool:
        """The view's state is final, every stage sequence finished, no follow-up is pending."""
        return (
            self.state in FINAL_STATES
            and bool(self.stages)
            and all(s.finished for s in self.stages)
            and not self.pending
        )

    @property
    def succeeded(self) -> bool:
        """Whether the context ended normally with result pass or warning (exit code 0)."""
        return (
            self.state == "finished"
            and self.result in PASSING_RESULTS
            and not any(s.status == "errored" for s in self.stages)
        )

    def to_json(self, now: datetime) -> dict[str, Any]:
        """The final ``--output json`` document."""
        return {
            "keptnContext": self.keptn_context,
            "project": self.project,
            "service": self.service,
            "sequence": self.name,
            "state": self.state,
            "result": self.result,
            "stages": [
                {
                    "stage": s.stage,
                    "sequence": s.sequence,
                    "state": s.state,
                    "result": s.result,
                    "status": s.status,
                    "message": s.message,
                    "durationSeconds": duration(s.triggered_at, s.end, now),
                    "tasks": [
                        {
                            "name": t.name,
                            "state": t.state,
                            "result": t.result,
                            "status": t.status,
                            "source": t.source,
                            "durationSeconds": duration(t.triggered_at, t.end, now),
                        }
                        for t in s.tasks
                    ],
                }
                for s in self.stages
            ],
            "evaluations": [
                {
                    "stage": e.stage,
                    "source": e.source,
                    "result": e.result,
                    "score": e.score,
                    "failingSLIs": [
                        {"name": i.name, "value": i.value, "status": i.status, "violatedTargets": i.violated}
                        for i in e.slis
                    ],
                }
                for e in self.evaluations
            ],
        }


def duration(start: datetime | None, end: datetime | None, now: datetime) -> float | None:
    """Seconds from start to end (to ``now`` while running), never negative; None without a start."""
    if start is None:
        return None
    return round(max(0.0, ((end or now) - start).total_seconds()), 3)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def failing_slis(evaluation: dict[str, Any]) -> list[SLI]:
    """The indicators of an evaluation with status fail or warning, and their violated targets."""
    found = []
    for entry in evaluation.get("indicatorResults") or []:
        entry = _dict(entry)
        status = str(entry.get("status", ""))
        if status not in ("fail", "warning"):
            continue
        value = _dict(entry.get("value"))
        targets = [*(entry.get("passTargets") or []), *(entry.get("warningTargets") or [])]
        violated = [
            str(target.get("criteria"))
            for target in map(_dict, targets)
            if target.get("violated") and target.get("criteria") is not None
        ]
        name = _text(value.get("metric")) or _text(entry.get("displayName")) or "?"
        found.append(SLI(name, _number(value.get("value")), status, list(dict.fromkeys(violated))))
    return found


def _stage_for(stages: list[StageNode], stage: str) -> StageNode | None:
    matching = [s for s in stages if s.stage == stage]
    return matching[-1] if matching else None


def _answer(task: TaskNode, kind: EventKind, data: dict[str, Any], at: datetime | None) -> None:
    if kind is EventKind.STARTED:
        task.started += 1
    elif kind is EventKind.FINISHED:
        task.finished += 1
        task.result = worse(task.result, _text(data.get("result")))
        if task.status != "errored":
            task.status = _text(data.get("status")) or task.status
        task.ended_at = at or task.ended_at


def build_model(
    keptn_context: str,
    project: str,
    events: list[dict[str, Any]],
    view: dict[str, Any] | None,
    shipyard: Shipyard | None,
) -> WatchModel:
    """The watch model of a context.

    Args:
        keptn_context: the Keptn context.
        project: its project.
        events: the context's events, oldest first.
        view: the context's entry of the sequence state view, None before it has one.
        shipyard: the project's shipyard (for follow-ups), None to expect none.
    """
    stages: list[StageNode] = []
    sequences: dict[str, StageNode] = {}
    tasks: dict[str, TaskNode] = {}
    evaluations: list[EvaluationNode] = []
    service: str | None = None
    for event in events:
        parsed = maybe_parse_event_type(str(event.get("type", "")))
        data = _dict(event.get("data"))
        service = service or _text(data.get("service"))
        event_id, at = str(event.get("id", "")), parse_time(event.get("time"))
        answers = str(event.get("triggeredid") or "")
        if isinstance(parsed, SequenceEventType):
            if parsed.kind is EventKind.TRIGGERED:
                node = StageNode(parsed.stage, parsed.sequence, event_id, at)
                stages.append(node)
                sequences[event_id] = node
            elif parsed.kind is EventKind.FINISHED:
                finished = sequences.get(answers) or _stage_for(stages, parsed.stage)
                if finished is not None:
                    finished.finished, finished.ended_at = True, at
                    finished.result, finished.status = _text(data.get("result")), _text(data.get("status"))
                    finished.message = _text(data.get("message"))
        elif isinstance(parsed, TaskEventType):
            if parsed.kind is EventKind.TRIGGERED:
                owner = _stage_for(stages, str(data.get("stage", "")))
                task = TaskNode(parsed.task, event_id, str(event.get("source", "")), at)
                tasks[event_id] = task
                if owner is not None:
                    owner.tasks.append(task)
            elif answers in tasks:
                _answer(tasks[answers], parsed.kind, data, at)
            if parsed.task == "evaluation" and parsed.kind is EventKind.FINISHED:
                evaluation = _dict(data.get("evaluation"))
                evaluations.append(
                    EvaluationNode(
                        stage=str(data.get("stage", "")),
                        source=str(event.get("source", "")),
                        result=_text(data.get("result")) or _text(evaluation.get("result")),
                        score=_number(evaluation.get("score")),
                        message=_text(data.get("message")),
                        slis=failing_slis(evaluation),
                    )
                )
    view = view or {}
    _apply_view_hints(stages, view)
    state = _text(view.get("state")) or ("started" if stages else "triggered")
    return WatchModel(
        keptn_context=keptn_context,
        project=project,
        service=service or _text(view.get("service")),
        name=_text(view.get("name")) or (stages[0].sequence if stages else None),
        state=state,
        stages=stages,
        evaluations=evaluations,
        pending=[] if state in ("aborted", "timedOut") else pending_follow_ups(stages, shipyard),
    )


def _apply_view_hints(stages: list[StageNode], view: dict[str, Any]) -> None:
    """Mark running stage sequences the view reports as paused or queued behind another context."""
    for entry in map(_dict, view.get("stages") or []):
        node = _stage_for(stages, str(entry.get("name", "")))
        if node is None or node.finished:
            continue
        if entry.get("blockedBy"):
            node.hint = f"waiting for {entry['blockedBy']}"
        elif entry.get("state") == "paused":
            node.hint = "paused"


def pending_follow_ups(stages: list[StageNode], shipyard: Shipyard | None) -> list[str]:
    """``stage.sequence`` of every follow-up the shipyard asks for that was not triggered yet."""
    if shipyard is None:
        return []
    pending = []
    for index, node in enumerate(stages):
        if not node.finished or node.status == "aborted":
            continue
        wanted = follow_up_sequences(
            shipyard, node.stage, node.sequence, node.result or "fail", node.last_task()
        )
        later = {(s.stage, s.sequence) for s in stages[index + 1 :]}
        pending += [f"{stage}.{sequence}" for stage, sequence in wanted if (stage, sequence) not in later]
    return pending
