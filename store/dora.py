"""The events the DORA metrics are computed from (``keptn.dora``), read in four bounded index scans.

1. the target stage's ``deployment.finished`` events of the window, and of :data:`LOOKBACK` before
   it (each deployment's predecessor bounds its lead time), with the image of the
   ``deployment.triggered`` they answer (a primary-key lookup each);
2. the sequence and ``evaluation``/``test`` events of those deployments' Keptn contexts;
3. the first stage's sequence triggers asking for an image, over the same span;
4. rollback and remediation sequences, ``rollback`` tasks and problem events of the target stage,
   from the window's start to its end plus the failure window.

Scans 1, 3 and 4 name exact event types, so they read ``events_project_type_time`` (project, type,
time); scan 2 reads ``events_context_time``. No index of their own is needed (``docs/dora.md``
shows the plans). Each scan stops at :data:`MAX_ROWS`; the report then says it is truncated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from keptn.dora import (
    DEFAULT_FAILURE_WINDOW,
    DEPLOYMENT_FINISHED,
    PROBLEM,
    DoraEvent,
    DoraQuery,
    DoraReport,
    compute_dora,
)
from keptn.durations import format_duration, parse_duration
from keptn.errors import InvalidInputError, InvalidShipyardError, NotFoundError
from keptn.event_types import EventKind, sequence_event_type, task_event_type
from keptn.shipyard import parse_shipyard
from store.events import parse_event_time
from store.projects import ProjectInfo

LOOKBACK = timedelta(days=90)
"""How far before the window a delivery's start is looked for by image (contexts have no limit)."""
MAX_ROWS = 50_000
"""At most this many events per scan."""
DEFAULT_WINDOW = timedelta(days=30)
MAX_WINDOW = timedelta(days=366)
MAX_FAILURE_WINDOW = timedelta(days=30)

_COLUMNS = """
SELECT e.id, e.type, e.time, e.shkeptncontext, e.triggeredid, e.stage, e.service,
       e.event #>> '{data,result}' AS result,
       e.event #>> '{data,status}' AS status,
       upper(coalesce(e.event #>> '{data,State}', e.event #>> '{data,state}')) AS problem_state,
"""
_IMAGE = "'{data,configurationChange,values,image}'"

_DEPLOYMENTS = (
    _COLUMNS
    + f"coalesce(t.event #>> {_IMAGE}, e.event #>> {_IMAGE}) AS image"
    + " FROM events e LEFT JOIN events t ON t.id = e.triggeredid"
    " WHERE e.project = $1 AND e.type = $2 AND e.stage = $3 AND ($4::text IS NULL OR e.service = $4)"
    " AND e.time >= $5 AND e.time < $6 ORDER BY e.time, e.seq LIMIT $7"
)
# A sequence event is sh.keptn.event.<stage>.<sequence>.<kind>: five dots (names have none).
_CONTEXTS = (
    _COLUMNS + f"e.event #>> {_IMAGE} AS image FROM events e"
    " WHERE e.shkeptncontext = ANY($1::text[]) AND e.project = $2"
    " AND ((e.type ~ '^sh\\.keptn\\.event\\.[^.]+\\.[^.]+\\.(triggered|finished)$')"
    "      OR e.type = ANY($3::text[]))"
    " ORDER BY e.time, e.seq LIMIT $4"
)
_BY_TYPES = (
    _COLUMNS + f"e.event #>> {_IMAGE} AS image FROM events e"
    " WHERE e.project = $1 AND e.type = ANY($2::text[]) AND ($3::text IS NULL OR e.service = $3)"
    " AND (e.stage = $4 OR $4::text IS NULL OR (e.type = $5 AND e.stage IS NULL))"
    f" AND e.time >= $6 AND e.time < $7 AND (NOT $8 OR e.event #>> {_IMAGE} IS NOT NULL)"
    " ORDER BY e.time, e.seq LIMIT $9"
)


@dataclass(frozen=True)
class DoraScope:
    """The stages a project's metrics are about."""

    stage: str
    """The target stage: the one asked for, else the shipyard's last."""
    first_stage: str
    first_stage_sequences: tuple[str, ...]
    stages: tuple[str, ...]
    """Every stage, in shipyard order."""


@dataclass(frozen=True)
class DoraResult:
    """The metrics and whether a scan hit :data:`MAX_ROWS` (then they are of the first events only)."""

    report: DoraReport
    truncated: bool


def dora_scope(project: ProjectInfo, stage: str | None) -> DoraScope:
    """The target and first stage of a project, and the first stage's sequence names.

    Raises:
        NotFoundError: ``stage`` is not one of the project's, or the project has no stages.
    """
    stages = tuple(s.name for s in project.stages)
    if not stages:
        raise NotFoundError(f"project '{project.name}' has no stages", field="project")
    if stage and stage not in stages:
        raise NotFoundError(f"stage '{stage}' not found in project '{project.name}'", field="stage")
    try:
        shipyard = parse_shipyard(project.shipyard)
        first = next((s for s in shipyard.spec.stages if s.name == stages[0]), None)
        sequences = tuple(q.name for q in first.sequences) if first else ()
    except InvalidShipyardError:
        sequences = ()  # stored shipyards were valid when written; an old one may not parse now
    return DoraScope(
        stage=stage or stages[-1], first_stage=stages[0], first_stage_sequences=sequences, stages=stages
    )


def _shifted(moment: datetime, by: timedelta, field: str) -> datetime:
    try:
        return moment + by
    except OverflowError:
        raise InvalidInputError(f"{field} is too close to the year 1 or 9999", field=field) from None


def dora_window(start: str | None, end: str | None, *, now: datetime) -> tuple[datetime, datetime]:
    """The window ``[from, to)`` of a request: ``to`` defaults to now, ``from`` to 30 days before ``to``.

    Raises:
        InvalidInputError: a time is unreadable (naming ``from`` or ``to``), ``from`` is not before
            ``to``, or the window is longer than 366 days.
    """
    until = parse_event_time(end, field="to") if end else now
    since = parse_event_time(start, field="from") if start else _shifted(until, -DEFAULT_WINDOW, "to")
    # the reads reach LOOKBACK before the window and the failure window after it
    _shifted(since, -LOOKBACK, "from" if start else "to")
    _shifted(until, MAX_FAILURE_WINDOW, "to")
    if since >= until:
        raise InvalidInputError("from must be before to", field="from")
    if until - since > MAX_WINDOW:
        raise InvalidInputError(
            f"the window from 'from' to 'to' may span at most {MAX_WINDOW.days} days", field="from"
        )
    return since, until


def failure_window(text: str | None) -> timedelta:
    """The failure window of a request (a Go duration such as ``24h``; default 24h).

    Raises:
        InvalidInputError: (field ``failureWindow``) not a duration, not positive, or over 30 days.
    """
    if not text:
        return DEFAULT_FAILURE_WINDOW
    window = parse_duration(text, field="failureWindow")
    if window <= timedelta(0) or window > MAX_FAILURE_WINDOW:
        raise InvalidInputError(
            f"failureWindow must be a duration above 0 and at most {format_duration(MAX_FAILURE_WINDOW)},"
            f" got {text!r}",
            field="failureWindow",
        )
    return window


def _event(row: asyncpg.Record) -> DoraEvent:
    return DoraEvent(
        id=row["id"],
        type=row["type"],
        time=row["time"],
        keptn_context=row["shkeptncontext"],
        triggered_id=row["triggeredid"],
        stage=row["stage"],
        service=row["service"],
        result=row["result"],
        status=row["status"],
        image=row["image"],
        problem_state=row["problem_state"],
    )


async def dora_events(
    pool: asyncpg.Pool, project: str, scope: DoraScope, query: DoraQuery
) -> tuple[list[DoraEvent], bool]:
    """The events :func:`keptn.dora.compute_dora` needs for ``query``, oldest first, and whether truncated."""
    since = query.start - LOOKBACK
    scans: list[list[asyncpg.Record]] = []
    deployments = await pool.fetch(
        _DEPLOYMENTS, project, DEPLOYMENT_FINISHED, scope.stage, query.service, since, query.end, MAX_ROWS
    )
    scans.append(deployments)
    contexts = sorted(
        {r["shkeptncontext"] for r in deployments if r["shkeptncontext"] and r["time"] >= query.start}
    )
    if contexts:
        tasks = [task_event_type(t, EventKind.FINISHED) for t in ("evaluation", "test")]
        scans.append(await pool.fetch(_CONTEXTS, contexts, project, tasks, MAX_ROWS))
    triggers = [
        sequence_event_type(scope.first_stage, s, EventKind.TRIGGERED) for s in scope.first_stage_sequences
    ]
    if triggers:
        scans.append(
            await pool.fetch(
                _BY_TYPES, project, triggers, query.service, None, PROBLEM, since, query.end, True, MAX_ROWS
            )
        )
    signals = [
        sequence_event_type(scope.stage, "rollback", EventKind.TRIGGERED),
        sequence_event_type(scope.stage, "remediation", EventKind.TRIGGERED),
        sequence_event_type(scope.stage, "remediation", EventKind.FINISHED),
        task_event_type("rollback", EventKind.TRIGGERED),
        PROBLEM,
    ]
    until = query.end + query.failure_window
    scans.append(
        await pool.fetch(
            _BY_TYPES,
            project,
            signals,
            query.service,
            scope.stage,
            PROBLEM,
            query.start,
            until,
            False,
            MAX_ROWS,
        )
    )
    found: dict[str, DoraEvent] = {}
    for rows in scans:
        for row in rows:
            found.setdefault(row["id"], _event(row))
    truncated = any(len(rows) >= MAX_ROWS for rows in scans)
    return sorted(found.values(), key=lambda e: e.time), truncated


async def dora_metrics(
    pool: asyncpg.Pool, project: ProjectInfo, scope: DoraScope, query: DoraQuery
) -> DoraResult:
    """Read the events and compute the metrics of ``query`` for ``project``."""
    events, truncated = await dora_events(pool, project.name, scope, query)
    return DoraResult(report=compute_dora(events, query), truncated=truncated)
