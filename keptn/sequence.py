"""Keptn's sequence rules as pure functions: task outcome, next payload, follow-up sequences.

These are the decisions shipyard-controller made between events (behaviour spec §1.2, §3.4). The
context workflow calls them; nothing here knows about Temporal, HTTP or the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from copy import deepcopy
from typing import Any, Literal, cast

from pydantic import BaseModel, Field

from keptn.merge import merge
from keptn.shipyard import Shipyard, Task

Result = Literal["pass", "warning", "fail"]
Status = Literal["succeeded", "errored", "aborted", "unknown"]

PASSING_RESULTS: frozenset[str] = frozenset({"pass", "warning"})

RESULT_RANK: dict[str, int] = {"pass": 0, "warning": 1, "fail": 2}
"""Results from best to worst."""


def worst_result(results: Iterable[str | None], *, unknown_is_fail: bool = True) -> Result | None:
    """The worst of ``results`` (fail > warning > pass); None when there is none to rank.

    Args:
        results: results of tasks, stages or sequences; None entries (not finished yet) are skipped.
        unknown_is_fail: count any other value (empty, garbage) as ``fail``, as :func:`aggregate_task`
            does for an executor's answer; False ignores such values (a view of what has arrived).
    """
    worst: Result | None = None
    for result in results:
        if result is None:
            continue
        if result not in RESULT_RANK:
            if not unknown_is_fail:
                continue
            result = "fail"
        if worst is None or RESULT_RANK[result] > RESULT_RANK[worst]:
            worst = cast(Result, result)
    return worst


class Scope(BaseModel):
    """Where a sequence runs."""

    project: str
    stage: str
    service: str


class TaskOutcome(BaseModel):
    """The aggregated outcome of one task (Keptn's ``TaskExecutionResult``)."""

    name: str
    triggered_id: str
    result: Result
    status: Status
    properties: dict[str, Any] = Field(default_factory=dict)
    """The merged ``data`` of all the task's ``.finished`` events, in arrival order."""


def aggregate_task(name: str, triggered_id: str, finished_data: list[dict[str, Any]]) -> TaskOutcome:
    """Aggregate the ``.finished`` events of a task exactly as Keptn did (§3.4).

    - ``result`` is ``fail`` if any ``.finished`` has a result other than pass/warning (empty or
      garbage included), else ``warning`` if any is warning, else ``pass``;
    - ``status`` is ``errored`` if any is errored, else ``aborted`` if any is aborted, else
      ``succeeded`` if all succeeded, else ``unknown`` — and then the result is forced to ``fail``
      (keptn#7367: an executor that reports nonsense must not let a sequence pass).

    Args:
        name: the task name.
        triggered_id: id of the task's ``.triggered`` event.
        finished_data: the ``data`` of every ``.finished`` event of the task, in arrival order.
    """
    results = [str(data.get("result") or "") for data in finished_data]
    statuses = [str(data.get("status") or "") for data in finished_data]
    result: Result
    if any(r not in PASSING_RESULTS for r in results) or not results:
        result = "fail"
    elif "warning" in results:
        result = "warning"
    else:
        result = "pass"
    status: Status
    if "errored" in statuses:
        status = "errored"
    elif "aborted" in statuses:
        status = "aborted"
    elif statuses and all(s == "succeeded" for s in statuses):
        status = "succeeded"
    else:
        status, result = "unknown", "fail"
    properties: Any = None
    for data in finished_data:
        properties = merge(properties, data)
    return TaskOutcome(
        name=name,
        triggered_id=triggered_id,
        result=result,
        status=status,
        properties=properties if isinstance(properties, dict) else {},
    )


def sequence_continues(outcome: TaskOutcome) -> bool:
    """Whether the sequence goes on after this task: not after ``fail`` or ``errored``.

    A ``warning`` continues; so does ``status: aborted`` with a passing result (as in Keptn).
    """
    return outcome.result != "fail" and outcome.status != "errored"


def next_task_payload(
    input_properties: dict[str, Any],
    scope: Scope,
    previous: list[TaskOutcome],
    next_task: Task | None,
) -> dict[str, Any]:
    """The ``data`` of the next ``<task>.triggered`` event (Keptn's ``GetNextTriggeredEventData``).

    The sequence input, then the scope, then every earlier task's merged ``.finished`` data in
    order, then the last task's result and status, then the shipyard's properties of the next task
    under ``data.<task>``; a ``message`` left by an earlier executor is blanked.

    Args:
        input_properties: ``data`` of the ``<stage>.<sequence>.triggered`` event.
        scope: project, stage and service of the sequence.
        previous: outcomes of the tasks done so far, in order.
        next_task: the task about to be triggered, or None when building a follow-up payload.
    """
    payload: dict[str, Any] = merge({}, deepcopy(input_properties))
    payload.update(project=scope.project, stage=scope.stage, service=scope.service)
    for outcome in previous:
        payload = merge(payload, outcome.properties)
    if previous:
        payload["result"] = previous[-1].result
        payload["status"] = previous[-1].status
    if next_task is not None and next_task.properties:
        payload[next_task.name] = merge(payload.get(next_task.name), next_task.properties)
    if payload.get("message") is not None:
        payload["message"] = ""
    return payload


def sequence_finished_data(
    scope: Scope,
    labels: dict[str, str] | None,
    last_finished: dict[str, Any] | None,
    last: TaskOutcome | None,
) -> dict[str, Any]:
    """The ``data`` of ``<stage>.<sequence>.finished`` after the sequence's last task.

    Keptn takes project, stage, service, labels and message of the last task's last ``.finished``
    event and replaces result and status by the task's aggregated values.
    """
    source = last_finished or {}
    data: dict[str, Any] = {
        "project": source.get("project", scope.project),
        "stage": source.get("stage", scope.stage),
        "service": source.get("service", scope.service),
    }
    if source.get("labels") is not None or labels:
        data["labels"] = source.get("labels") or labels
    if last is not None:
        data["result"] = last.result
        data["status"] = last.status
    data["message"] = source.get("message", "")
    return data


def matches_trigger(match: dict[str, str] | None, result: str, last_task: str | None) -> bool:
    """Whether a ``triggeredOn`` selector accepts a finished sequence (§1.2).

    No selector (or an empty ``match``): the result must be pass or warning. Otherwise the result
    must equal ``match["result"]`` or ``match["<last task>.result"]``; other keys are ignored.
    """
    if not match:
        return result in PASSING_RESULTS
    if match.get("result") == result:
        return True
    return last_task is not None and match.get(f"{last_task}.result") == result


def follow_up_sequences(
    shipyard: Shipyard, stage: str, sequence: str, result: str, last_task: str | None
) -> list[tuple[str, str]]:
    """Every ``(stage, sequence)`` whose ``triggeredOn`` fires on ``<stage>.<sequence>.finished``.

    Scans all stages and sequences in shipyard order, as Keptn's ``GetTaskSequencesByTrigger``
    did; a sequence may trigger itself (remediation loops). Call it only for sequences that
    finished normally or failed, never after an abort or a timeout.
    """
    finished_event = f"{stage}.{sequence}.finished"
    matches: list[tuple[str, str]] = []
    for candidate_stage in shipyard.spec.stages:
        for candidate in candidate_stage.sequences:
            for trigger in candidate.triggeredOn or []:
                if trigger.event != finished_event:
                    continue
                match = trigger.selector.match if trigger.selector else None
                if matches_trigger(match, result, last_task):
                    matches.append((candidate_stage.name, candidate.name))
                    break
    return matches


def unknown_sequence_message(shipyard: Shipyard, stage: str, sequence: str) -> str | None:
    """Keptn's message when a trigger names a stage or sequence the shipyard lacks, else None."""
    found = shipyard.stage(stage)
    if found is None:
        return f"Unable to start sequence {sequence}: no stage with name {stage}"
    if found.sequence(sequence) is None:
        return (
            f"Unable to start sequence {sequence}: no task sequence with name {sequence} "
            f"found in stage {stage}"
        )
    return None
