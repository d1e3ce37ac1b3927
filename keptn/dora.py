"""The four DORA metrics computed from Keptn events. Pure code: event records in, numbers out.

The definitions (also in ``docs/dora.md``), for one project, one *target* stage (normally the
shipyard's last, production) and a window ``[start, end)``:

* **Deployment**: a ``sh.keptn.event.deployment.finished`` in the target stage with result
  ``pass`` or ``warning``; several answers to one ``deployment.triggered`` (same ``triggeredid``)
  are one deployment, at the time of the first. It counts in the window if its time does.
* **Deployment frequency**: deployments in the window per day (and per week), with the count of
  each UTC day for the chart.
* **Lead time for changes** of a deployment: from the start of its delivery to the deployment.
  The start is the earliest of (a) the first sequence ``.triggered`` of the shipyard's first stage
  in the deployment's Keptn context (the ``triggeredOn`` chain), or the context's first sequence
  trigger if it never ran the first stage; and (b) the first sequence ``.triggered`` in the first
  stage of the same service asking for the same image (``configurationChange.values.image``) after
  the service's previous deployment in the target stage (the artifact promoted by a separate
  trigger). Reported as the median and the 90th percentile (nearest rank).
* **Change failure rate**: failed deployments / deployments. A deployment failed if the sequence
  it ran in (the first ``<target>.<sequence>.finished`` of its context after it) finished with
  result ``fail``, or an ``evaluation``/``test`` task of that sequence finished ``fail``, or, within
  the failure window after it and before the service's next deployment, a ``rollback`` or
  ``remediation`` sequence or ``rollback`` task was triggered for the service in the stage or a
  problem was opened for it (``sh.keptn.events.problem`` with state ``OPEN``).
* **Time to restore**: for each incident opened in the window - a Keptn context with a
  ``remediation`` sequence trigger in the stage or a problem event with state ``OPEN`` - from its
  opening to its first resolution before ``end``: the context's ``remediation`` sequence finished
  with result ``pass``/``warning`` (not aborted or errored), or a problem event with state
  ``RESOLVED``/``CLOSED`` for its service (the event Capstan ends remediation loops on). Median
  over restored incidents; the others are reported as open.
"""

from __future__ import annotations

import bisect
import functools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from keptn.event_types import EventKind, SequenceEventType, TaskEventType, maybe_parse_event_type
from keptn.sequence import PASSING_RESULTS

DEPLOYMENT_FINISHED = "sh.keptn.event.deployment.finished"
PROBLEM = "sh.keptn.events.problem"
FAILED = "fail"
FAILING_TASKS = frozenset({"evaluation", "test"})
"""Tasks whose ``fail`` inside a deployment's sequence makes it a failed change."""
ROLLBACK = "rollback"
REMEDIATION = "remediation"
PROBLEM_OPEN = "OPEN"
PROBLEM_OVER = frozenset({"RESOLVED", "CLOSED"})
UNFINISHED_STATUSES = frozenset({"aborted", "errored"})
"""A remediation sequence that ended so did not restore anything by itself."""
DEFAULT_FAILURE_WINDOW = timedelta(hours=24)
P90 = 0.9


@dataclass(frozen=True)
class DoraEvent:
    """The parts of a stored Keptn event the metrics need."""

    id: str
    type: str
    time: datetime
    keptn_context: str | None = None
    triggered_id: str | None = None
    stage: str | None = None
    service: str | None = None
    result: str | None = None
    status: str | None = None
    image: str | None = None
    """``configurationChange.values.image``: of a sequence trigger, or of the ``deployment.triggered``
    a ``deployment.finished`` answers."""
    problem_state: str | None = None
    """``data.State`` of a problem event (upper case)."""


@dataclass(frozen=True)
class DoraQuery:
    """What to measure."""

    stage: str
    """The target stage (normally the shipyard's last)."""
    first_stage: str
    """The shipyard's first stage, where deliveries start."""
    start: datetime
    end: datetime
    """The window ``[start, end)``; aware datetimes."""
    service: str | None = None
    """Only this service; None for every service of the project."""
    failure_window: timedelta = DEFAULT_FAILURE_WINDOW
    """How long after a deployment a rollback, remediation or problem still counts against it."""


@dataclass(frozen=True)
class DayCount:
    """Deployments on one UTC day."""

    day: date
    deployments: int


@dataclass(frozen=True)
class Metrics:
    """The four metrics over one window, for a project or one of its services."""

    deployments: int
    per_day: float
    per_week: float
    days: tuple[DayCount, ...]
    lead_times: int
    """Deployments whose delivery start was found (those the lead time is over)."""
    lead_time_median: timedelta | None
    lead_time_p90: timedelta | None
    failed_deployments: int
    change_failure_rate: float | None
    """None without deployments."""
    incidents: int
    restored: int
    time_to_restore_median: timedelta | None


@dataclass(frozen=True)
class DoraReport:
    """The metrics of the whole scope and of each service in it (by name)."""

    overall: Metrics
    services: dict[str, Metrics] = field(default_factory=dict)


@dataclass(frozen=True)
class _Deployment:
    event: DoraEvent
    service: str


@dataclass
class _Incident:
    opened: datetime
    service: str | None
    restored: datetime | None = None


def percentile(values: Sequence[timedelta], fraction: float) -> timedelta | None:
    """The nearest-rank percentile: the smallest value with at least ``fraction`` of all at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def median(values: Sequence[timedelta]) -> timedelta | None:
    """The median (the mean of the middle two for an even count)."""
    if not values:
        return None
    return timedelta(seconds=statistics.median(v.total_seconds() for v in values))


@functools.lru_cache(maxsize=4096)
def _parsed(event_type: str) -> TaskEventType | SequenceEventType | None:
    # a project has few event types and many events: parse each type once
    return maybe_parse_event_type(event_type)


def _sequence(event: DoraEvent) -> SequenceEventType | None:
    parsed = _parsed(event.type)
    return parsed if isinstance(parsed, SequenceEventType) else None


def _task(event: DoraEvent) -> TaskEventType | None:
    parsed = _parsed(event.type)
    return parsed if isinstance(parsed, TaskEventType) else None


def _stage(event: DoraEvent) -> str | None:
    """A sequence event's stage is in its type; a task event's in its data."""
    sequence = _sequence(event)
    return sequence.stage if sequence else event.stage


def deployments(events: Iterable[DoraEvent], stage: str) -> list[_Deployment]:
    """Successful deployments in ``stage``, oldest first, one per ``deployment.triggered``."""
    found: dict[str, _Deployment] = {}
    for event in sorted(events, key=lambda e: e.time):
        if event.type != DEPLOYMENT_FINISHED or event.stage != stage or event.result not in PASSING_RESULTS:
            continue
        key = event.triggered_id or event.id
        if key not in found and event.service:
            found[key] = _Deployment(event=event, service=event.service)
    return list(found.values())


def _in_window(moment: datetime, query: DoraQuery) -> bool:
    return query.start <= moment < query.end


class _Index:
    """The events grouped the ways the rules look them up."""

    def __init__(self, events: Sequence[DoraEvent], query: DoraQuery) -> None:
        self.query = query
        self.by_context: dict[str, list[DoraEvent]] = {}
        self.first_stage_triggers: dict[tuple[str | None, str], list[datetime]] = {}
        """Times of the first stage's sequence triggers by (service, image), oldest first."""
        self.signals: dict[str | None, list[datetime]] = {}
        """Times of the failure signals by service, oldest first."""
        for event in sorted(events, key=lambda e: e.time):
            if event.keptn_context:
                self.by_context.setdefault(event.keptn_context, []).append(event)
            sequence = _sequence(event)
            if (
                sequence
                and sequence.kind is EventKind.TRIGGERED
                and sequence.stage == query.first_stage
                and event.image
            ):
                self.first_stage_triggers.setdefault((event.service, event.image), []).append(event.time)
            if self._is_failure_signal(event):
                self.signals.setdefault(event.service, []).append(event.time)

    def _is_failure_signal(self, event: DoraEvent) -> bool:
        if event.type == PROBLEM:
            return event.problem_state == PROBLEM_OPEN and event.stage in (None, self.query.stage)
        sequence, task = _sequence(event), _task(event)
        if sequence is not None:
            return (
                sequence.kind is EventKind.TRIGGERED
                and sequence.stage == self.query.stage
                and sequence.sequence in (ROLLBACK, REMEDIATION)
            )
        return (
            task is not None
            and task.kind is EventKind.TRIGGERED
            and task.task == ROLLBACK
            and event.stage == self.query.stage
        )


def _delivery_start(deployment: _Deployment, previous: datetime | None, index: _Index) -> datetime | None:
    event = deployment.event
    starts: list[datetime] = []
    chain = [
        (e, s)
        for e in index.by_context.get(event.keptn_context or "", [])
        if (s := _sequence(e)) and s.kind is EventKind.TRIGGERED and e.time <= event.time
    ]
    in_first = [e.time for e, s in chain if s.stage == index.query.first_stage]
    if in_first or chain:
        starts.append(min(in_first or [e.time for e, _ in chain]))
    if event.image:
        # the first trigger of the image after the previous deployment, not after this one
        times = index.first_stage_triggers.get((deployment.service, event.image), [])
        position = bisect.bisect_right(times, previous) if previous is not None else 0
        if position < len(times) and times[position] <= event.time:
            starts.append(times[position])
    return min(starts) if starts else None


def _failed_in_sequence(deployment: _Deployment, index: _Index) -> bool:
    event = deployment.event
    for later in index.by_context.get(event.keptn_context or "", []):
        if later.time < event.time or _stage(later) != event.stage:
            continue
        sequence = _sequence(later)
        if sequence and sequence.kind is EventKind.FINISHED:
            return later.result == FAILED  # the end of the deployment's own sequence
        task = _task(later)
        if task and task.kind is EventKind.FINISHED and task.task in FAILING_TASKS and later.result == FAILED:
            return True
    return False


def _failed_later(deployment: _Deployment, following: datetime | None, index: _Index) -> bool:
    event = deployment.event
    until = event.time + index.query.failure_window
    times = index.signals.get(deployment.service, [])
    position = bisect.bisect_right(times, event.time)
    if position == len(times):
        return False
    signal = times[position]
    # from the service's next deployment on, a rollback or problem is that one's
    return signal <= until and (following is None or signal < following)


def _incidents(events: Sequence[DoraEvent], query: DoraQuery) -> list[_Incident]:
    by_context: dict[str, _Incident] = {}
    resolutions: list[DoraEvent] = []
    remediation_ends: dict[str, list[datetime]] = {}
    for event in sorted(events, key=lambda e: e.time):
        sequence = _sequence(event)
        key = event.keptn_context or event.id
        if event.type == PROBLEM and event.stage in (None, query.stage):
            if event.problem_state == PROBLEM_OPEN and key not in by_context:
                by_context[key] = _Incident(opened=event.time, service=event.service)
            elif event.problem_state in PROBLEM_OVER:
                resolutions.append(event)
        elif sequence and sequence.stage == query.stage and sequence.sequence == REMEDIATION:
            if sequence.kind is EventKind.TRIGGERED and key not in by_context:
                by_context[key] = _Incident(opened=event.time, service=event.service)
            elif (
                sequence.kind is EventKind.FINISHED
                and event.result in PASSING_RESULTS
                and event.status not in UNFINISHED_STATUSES
            ):
                remediation_ends.setdefault(key, []).append(event.time)
    by_service: dict[str | None, list[datetime]] = {}
    by_key: dict[str | None, list[datetime]] = {}
    for resolution in resolutions:  # oldest first
        by_service.setdefault(resolution.service, []).append(resolution.time)
        by_key.setdefault(resolution.keptn_context, []).append(resolution.time)
    for key, incident in by_context.items():
        candidates = [t for t in remediation_ends.get(key, []) if t >= incident.opened]
        for times in (by_service.get(incident.service, []), by_key.get(key, [])):
            position = bisect.bisect_left(times, incident.opened)
            candidates.extend(times[position : position + 1])
        restored = min(candidates, default=None)
        incident.restored = restored if restored is not None and restored < query.end else None
    return [i for i in by_context.values() if _in_window(i.opened, query)]


def _days(moments: Iterable[datetime], query: DoraQuery) -> tuple[DayCount, ...]:
    counts: dict[date, int] = {}
    for moment in moments:
        counts[moment.date()] = counts.get(moment.date(), 0) + 1
    first, last = query.start.date(), (query.end - timedelta(microseconds=1)).date()
    return tuple(
        DayCount(day=first + timedelta(days=n), deployments=counts.get(first + timedelta(days=n), 0))
        for n in range((last - first).days + 1)
    )


def _neighbours(every: Sequence[_Deployment]) -> dict[str, tuple[datetime | None, datetime | None]]:
    """Each deployment's (id) previous and next deployment time of the same service."""
    by_service: dict[str, list[_Deployment]] = {}
    for deployment in every:
        by_service.setdefault(deployment.service, []).append(deployment)
    found: dict[str, tuple[datetime | None, datetime | None]] = {}
    for series in by_service.values():
        times: list[datetime | None] = [None, *(d.event.time for d in series), None]
        for position, deployment in enumerate(series):
            found[deployment.event.id] = (times[position], times[position + 2])
    return found


def _metrics(events: Sequence[DoraEvent], query: DoraQuery) -> Metrics:
    index = _Index(events, query)
    every = deployments(events, query.stage)
    neighbours = _neighbours(every)
    lead_times: list[timedelta] = []
    failed = 0
    counted = [d for d in every if _in_window(d.event.time, query)]
    for deployment in counted:
        previous, following = neighbours[deployment.event.id]
        start = _delivery_start(deployment, previous, index)
        if start is not None:
            lead_times.append(deployment.event.time - start)
        if _failed_in_sequence(deployment, index) or _failed_later(deployment, following, index):
            failed += 1
    incidents = _incidents(events, query)
    restore_times = [i.restored - i.opened for i in incidents if i.restored is not None]
    days = max((query.end - query.start) / timedelta(days=1), 1e-9)
    return Metrics(
        deployments=len(counted),
        per_day=len(counted) / days,
        per_week=len(counted) / days * 7,
        days=_days((d.event.time for d in counted), query),
        lead_times=len(lead_times),
        lead_time_median=median(lead_times),
        lead_time_p90=percentile(lead_times, P90),
        failed_deployments=failed,
        change_failure_rate=failed / len(counted) if counted else None,
        incidents=len(incidents),
        restored=len(restore_times),
        time_to_restore_median=median(restore_times),
    )


def compute_dora(events: Iterable[DoraEvent], query: DoraQuery) -> DoraReport:
    """The DORA metrics of ``events`` (any order) as the module docstring defines them.

    Args:
        events: the project's events the store found for the query; events of other stages or
            services than the query's are ignored where the definitions say so.
        query: target stage, first stage, window, service and failure window.

    Returns:
        The metrics of the query's scope, and of each service that has a deployment or an
        incident in the window.
    """
    scoped = [e for e in events if query.service is None or e.service == query.service]
    overall = _metrics(scoped, query)
    by_service: dict[str, list[DoraEvent]] = {}
    for event in scoped:
        if event.service:
            by_service.setdefault(event.service, []).append(event)
    names = sorted(
        name for name, found in by_service.items() if any(_in_window(e.time, query) for e in found)
    )
    per_service: dict[str, Metrics] = {}
    for name in names:
        metrics = _metrics(by_service[name], query)
        if metrics.deployments or metrics.incidents:
            per_service[name] = metrics
    return DoraReport(overall=overall, services=per_service)
