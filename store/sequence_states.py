"""Keptn's sequence state view (``GET /sequence/{project}``), read one page at a time.

A page costs at most two queries, whatever its size: one reads the page of ``sequence_states``
(kept current by :func:`store.sequences.record_execution`) with the total count, one reads, for
every stage of every context on the page, what Keptn's view took from events:

- ``image``: ``data.configurationChange.values.image`` of the newest ``deployment.triggered``;
- ``latestEvaluation``: ``result`` and ``evaluation.score`` of the newest ``evaluation.finished``
  whose source is ``lighthouse-service`` (Capstan's built-in lighthouse uses that source too);
- ``latestEvent``: the newest event of the stage's sequences;
- ``latestFailedEvent``: the newest of those with ``result`` fail or ``status`` errored.

"The stage's sequences' events" are, as in Keptn, the ones shipyard-controller handled: each
execution's trigger and ``.finished``, its tasks' ``.triggered`` events and their
``.started``/``.finished`` answers. Events of the same context that answer nothing the sequence
emitted (lighthouse's ``get-sli.*``, ``.invalidated``, ``status.changed``) are not among them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from store.filters import SqlConditions

DEPLOYMENT_TRIGGERED = "sh.keptn.event.deployment.triggered"
EVALUATION_FINISHED = "sh.keptn.event.evaluation.finished"
EVALUATION_SOURCE = "lighthouse-service"
"""The source whose evaluations the view shows (Keptn's ``SequenceEvaluationService``)."""

MAX_PAGE_SIZE = 50
"""Keptn's upper bound of ``pageSize`` for this view."""


class StateQuery(BaseModel):
    """The filters of ``GET /sequence/{project}``; every given filter must match."""

    model_config = ConfigDict(frozen=True)

    project: str
    """The project."""
    name: str | None = None
    """Sequence name of the context's root sequence. Default: any."""
    state: str | None = None
    """Overall state. Default: any."""
    from_time: datetime | None = None
    """Only contexts triggered strictly after this time. Default: no bound."""
    before_time: datetime | None = None
    """Only contexts triggered strictly before this time. Default: no bound."""
    keptn_contexts: tuple[str, ...] = ()
    """Only these Keptn contexts. Default: any."""
    page_size: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)
    """Contexts per page. Default 20."""
    offset: int = Field(default=0, ge=0)
    """Contexts to skip (the previous page's ``nextPageKey``). Default 0."""


@dataclass(frozen=True)
class StateEvent:
    """An event as the view names it (Keptn's ``SequenceStateEvent``)."""

    type: str
    id: str
    time: datetime


@dataclass(frozen=True)
class StateEvaluation:
    """An evaluation's outcome (Keptn's ``SequenceStateEvaluation``)."""

    result: str
    score: float


@dataclass(frozen=True)
class StageState:
    """One stage of a context (Keptn's ``SequenceStateStage``, plus ``blocked_by``)."""

    name: str
    state: str
    blocked_by: str | None = None
    """Capstan extension: while the stage's sequence waits, the Keptn context ahead of it."""
    image: str | None = None
    latest_evaluation: StateEvaluation | None = None
    latest_event: StateEvent | None = None
    latest_failed_event: StateEvent | None = None


@dataclass(frozen=True)
class SequenceState:
    """Keptn's ``SequenceState`` of one Keptn context."""

    keptn_context: str
    project: str
    name: str
    service: str
    time: datetime
    state: str
    problem_title: str | None
    stages: list[StageState]


@dataclass(frozen=True)
class StatePage:
    """A page of sequence states, newest first."""

    states: list[SequenceState]
    next_offset: int | None
    """Offset of the next page, None on the last page."""
    total_count: int
    """How many contexts match in all."""


_DETAILS = f"""
WITH ids AS (
    SELECT x.keptn_context, x.stage, unnest(x.event_ids) AS id
    FROM sequence_executions x
    WHERE x.project = $1 AND x.keptn_context = ANY($2::text[])
), rel AS (
    SELECT i.keptn_context, i.stage, e.id, e.type, e.source, e.time, e.seq, e.event -> 'data' AS data
    FROM ids i JOIN events e ON e.id = i.id
    WHERE e.shkeptncontext = i.keptn_context
    UNION ALL
    -- the answers: .started/.finished whose triggeredid is the trigger or a task's .triggered
    SELECT i.keptn_context, i.stage, e.id, e.type, e.source, e.time, e.seq, e.event -> 'data'
    FROM ids i JOIN events e ON e.triggeredid = i.id
    WHERE e.shkeptncontext = i.keptn_context AND (e.type LIKE '%.started' OR e.type LIKE '%.finished')
), picked AS (
    SELECT 'event' AS kind, * FROM rel
    UNION ALL
    SELECT 'failed', * FROM rel WHERE data ->> 'result' = 'fail' OR data ->> 'status' = 'errored'
    UNION ALL
    SELECT 'image', * FROM rel WHERE type = '{DEPLOYMENT_TRIGGERED}'
        AND jsonb_typeof(data #> '{{configurationChange,values,image}}') = 'string'
    UNION ALL
    SELECT 'evaluation', * FROM rel WHERE type = '{EVALUATION_FINISHED}' AND source = '{EVALUATION_SOURCE}'
)
SELECT DISTINCT ON (keptn_context, stage, kind)
    keptn_context, stage, kind, id, type, time,
    data #>> '{{configurationChange,values,image}}' AS image,
    coalesce(data ->> 'result', '') AS result,
    CASE WHEN jsonb_typeof(data #> '{{evaluation,score}}') = 'number'
         THEN (data #>> '{{evaluation,score}}')::float8 ELSE 0 END AS score
FROM picked
ORDER BY keptn_context, stage, kind, time DESC, seq DESC
"""


def _conditions(query: StateQuery) -> SqlConditions:
    sql = SqlConditions(alias="s")
    sql.column_equals("project", query.project)
    if query.name is not None:
        sql.column_equals("name", query.name)
    if query.state is not None:
        sql.column_equals("state", query.state)
    if query.keptn_contexts:
        sql.add(f"s.keptn_context = ANY({sql.param(list(query.keptn_contexts))}::text[])")
    if query.from_time is not None:
        sql.add(f"s.time > {sql.param(query.from_time)}")
    if query.before_time is not None:
        sql.add(f"s.time < {sql.param(query.before_time)}")
    return sql


async def get_sequence_states(db: asyncpg.Pool | asyncpg.Connection, query: StateQuery) -> StatePage:
    """Keptn's ``GET /sequence/{project}``: matching contexts, newest trigger first.

    Two queries per page (a third, a count, only for a page past the end).

    Args:
        db: a pool or a connection.
        query: the filters and the page.
    """
    sql = _conditions(query)
    limit, offset = sql.param(query.page_size), sql.param(query.offset)
    rows = await db.fetch(
        "SELECT s.keptn_context, s.name, s.service, s.time, s.state, s.problem_title, s.stages,"
        f" count(*) OVER () AS total FROM sequence_states s {sql.where()}"
        f" ORDER BY s.time DESC, s.keptn_context DESC LIMIT {limit} OFFSET {offset}",
        *sql.args,
    )
    if rows:
        total = int(rows[0]["total"])
    elif query.offset == 0:
        total = 0
    else:
        counted = _conditions(query)
        total = await db.fetchval(f"SELECT count(*) FROM sequence_states s {counted.where()}", *counted.args)
    details = await _details(db, query.project, [row["keptn_context"] for row in rows]) if rows else {}
    states = [
        SequenceState(
            keptn_context=row["keptn_context"],
            project=query.project,
            name=row["name"],
            service=row["service"],
            time=row["time"],
            state=row["state"],
            problem_title=row["problem_title"],
            stages=[_stage(row["keptn_context"], stage, details) for stage in row["stages"]],
        )
        for row in rows
    ]
    following = query.offset + query.page_size
    return StatePage(states=states, next_offset=following if following < total else None, total_count=total)


_Details = dict[tuple[str, str, str], asyncpg.Record]


async def _details(db: asyncpg.Pool | asyncpg.Connection, project: str, contexts: list[str]) -> _Details:
    rows = await db.fetch(_DETAILS, project, contexts)
    return {(row["keptn_context"], row["stage"], row["kind"]): row for row in rows}


def _event(row: asyncpg.Record | None) -> StateEvent | None:
    return StateEvent(type=row["type"], id=row["id"], time=row["time"]) if row is not None else None


def _stage(context: str, stage: dict[str, Any], details: _Details) -> StageState:
    name = str(stage["name"])
    image = details.get((context, name, "image"))
    evaluation = details.get((context, name, "evaluation"))
    return StageState(
        name=name,
        state=str(stage["state"]),
        blocked_by=stage.get("blockedBy"),
        image=image["image"] if image is not None else None,
        latest_evaluation=(
            StateEvaluation(result=evaluation["result"], score=float(evaluation["score"]))
            if evaluation is not None
            else None
        ),
        latest_event=_event(details.get((context, name, "event"))),
        latest_failed_event=_event(details.get((context, name, "failed"))),
    )
