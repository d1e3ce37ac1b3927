"""Sequence executions as the context workflow reports them, and Keptn's per-context state.

The context workflow is the only writer (DESIGN invariant): through the ``record_sequence``
activity it hands over the whole current picture of an execution on every state change, and
:func:`record_execution` keeps the newest picture per execution (an older one, e.g. a retried
activity that lost a race, is ignored). In the same transaction it recomputes the Keptn context's
row of ``sequence_states`` from all of the context's executions, by the rules of Keptn's
sequence state view (behaviour spec §3.1, §3.2) implemented in :func:`summarize_context`.

The store keeps its own model of a picture, :class:`ExecutionRecord`, with the field names of the
activity's ``SequenceExecutionUpdate``: the store may import only ``keptn``, and the tests check
that the two models keep the same fields.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, field_validator

from keptn.errors import NotFoundError
from store.filters import SqlConditions

EXECUTION_STATES: tuple[str, ...] = (
    "triggered",
    "waiting",
    "started",
    "waitingForApproval",
    "paused",
    "finished",
    "aborted",
    "timedOut",
)
"""The states an execution can be in (Keptn's, plus ``waiting`` and ``aborted``)."""

RUNNING_STATES = frozenset({"triggered", "waiting", "started", "waitingForApproval", "paused"})
"""Execution states of a sequence that has not ended."""

VIEW_STATES: tuple[str, ...] = (
    "triggered",
    "started",
    "waiting",
    "paused",
    "finished",
    "aborted",
    "timedOut",
)
"""The overall states of Keptn's sequence state view."""

# Two-key advisory locks live in a key space of their own (PostgreSQL docs), apart from the
# one-key migration lock; the first key says "sequence state", the second hashes the context.
_LOCK_NAMESPACE = 0x53455153


class ExecutionRecord(BaseModel):
    """The newest picture of one sequence execution, as the context workflow reported it.

    The fields are those of ``activities.sequence_state_models.SequenceExecutionUpdate``; the
    nested task snapshots stay plain dicts because the store only reads their ids.
    """

    model_config = ConfigDict(extra="allow")

    triggered_id: str
    """Id of the ``<stage>.<sequence>.triggered`` event: the execution's key."""
    keptn_context: str
    project: str
    stage: str
    service: str
    sequence: str
    """The sequence name."""
    state: str
    """One of :data:`EXECUTION_STATES`."""
    triggered_at: datetime
    """When the sequence was triggered; a naive value is taken as UTC."""
    updated_at: datetime
    """When the picture was taken; an older picture than the stored one is ignored."""
    tasks: list[str] = Field(default_factory=list)
    """The sequence's task names, in order. Default empty."""
    current_task: dict[str, Any] | None = None
    """Keptn's ``currentTask`` (``name``, ``triggeredID``, ``events``). Default none."""
    previous_tasks: list[dict[str, Any]] = Field(default_factory=list)
    """Keptn's ``previousTasks`` (``name``, ``triggeredID``, ``result``, ``status``). Default empty."""
    result: str | None = None
    """The outcome once ended: pass, warning or fail. Default none."""
    status: str | None = None
    """The outcome once ended: succeeded, errored, aborted or unknown. Default none."""
    message: str | None = None
    """Why it ended, when worth saying. Default none."""
    input_properties: dict[str, Any] = Field(default_factory=dict)
    """``data`` of the triggering event. Default empty."""
    gitcommitid: str | None = None
    """The resource version the sequence runs with. Default none."""
    blocked_by: str | None = None
    """While ``waiting``: the Keptn context holding the queue slot, if known. Default none."""

    @field_validator("triggered_at", "updated_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    def event_ids(self) -> list[str]:
        """Ids of the sequence trigger and of every task ``.triggered`` event emitted so far."""
        tasks = [*self.previous_tasks, *([self.current_task] if self.current_task else [])]
        ids = [self.triggered_id, *(str(t.get("triggeredID") or "") for t in tasks)]
        return [i for i in dict.fromkeys(ids) if i]

    def problem_title(self) -> str | None:
        """``data.problem.problemTitle`` of the trigger (remediation sequences), if any."""
        problem = self.input_properties.get("problem")
        title = problem.get("problemTitle") if isinstance(problem, dict) else None
        return title if isinstance(title, str) and title else None


@dataclass(frozen=True)
class StageSummary:
    """One stage of a Keptn context in the state view, as far as the executions tell."""

    name: str
    state: str
    """``triggered`` while running, ``paused``, or the status of the stage's sequence ``.finished``."""
    blocked_by: str | None = None
    """Capstan extension: the Keptn context holding the queue slot while the stage waits."""


@dataclass(frozen=True)
class ContextSummary:
    """The execution-derived part of Keptn's ``SequenceState`` for one Keptn context."""

    name: str
    service: str
    time: datetime
    state: str
    problem_title: str | None
    stages: list[StageSummary]


def _ended_as(execution: ExecutionRecord) -> str:
    if execution.state == "aborted" or execution.status == "aborted":
        return "aborted"
    return "timedOut" if execution.state == "timedOut" else "finished"


def _stage_state(execution: ExecutionRecord) -> str:
    if execution.state == "paused":
        return "paused"
    if execution.state in RUNNING_STATES:
        return "triggered"
    if execution.status:
        return execution.status
    # Keptn's .finished of an aborted sequence says "aborted", of a timed-out one "errored"
    return {"aborted": "aborted", "timedOut": "errored"}.get(execution.state, "unknown")


def overall_state(executions: Sequence[ExecutionRecord]) -> str:
    """The overall state of a Keptn context in Keptn's sequence state view.

    Keptn set it from hooks, the last one winning; derived from the executions, the rules are:
    while any execution runs, ``paused`` if every running one is paused, ``started`` if one has
    started (or is waiting for approval), ``waiting`` if one is queued, otherwise ``started`` once
    anything in the context has run and ``triggered`` before. When none runs, the way the last
    one ended: ``aborted``, ``timedOut`` or ``finished`` (so ``finished`` never shows while a
    stage still runs, as in Keptn).

    Args:
        executions: every execution of the context (at least one).
    """
    running = [x for x in executions if x.state in RUNNING_STATES]
    if running:
        if all(x.state == "paused" for x in running):
            return "paused"
        if any(x.state in ("started", "waitingForApproval") for x in running):
            return "started"
        if any(x.state == "waiting" for x in running):
            return "waiting"
        progressed = any(x.state != "triggered" or x.current_task or x.previous_tasks for x in executions)
        return "started" if progressed else "triggered"
    last = max(executions, key=lambda x: (x.updated_at, x.triggered_at))
    return _ended_as(last)


def summarize_context(executions: Sequence[ExecutionRecord]) -> ContextSummary:
    """Keptn's sequence state of one context, computed from all of its executions.

    Name, service and time are those of the first sequence triggered in the context (its root);
    the stages appear in the order they were first triggered, each with the state of its newest
    execution.

    Args:
        executions: every execution of the context (at least one).

    Raises:
        ValueError: ``executions`` is empty.
    """
    if not executions:
        raise ValueError("a Keptn context without executions has no state")
    ordered = sorted(executions, key=lambda x: (x.triggered_at, x.updated_at, x.triggered_id))
    root = ordered[0]
    latest_by_stage: dict[str, ExecutionRecord] = {}
    for execution in ordered:  # insertion order = first trigger per stage; the last one wins
        latest_by_stage[execution.stage] = execution
    stages = [
        StageSummary(
            name=stage,
            state=_stage_state(latest),
            blocked_by=latest.blocked_by if latest.state == "waiting" else None,
        )
        for stage, latest in latest_by_stage.items()
    ]
    return ContextSummary(
        name=root.sequence,
        service=root.service,
        time=root.triggered_at,
        state=overall_state(executions),
        problem_title=next((t for x in ordered if (t := x.problem_title())), None),
        stages=stages,
    )


def _stages_json(stages: Sequence[StageSummary]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for stage in stages:
        entry = {"name": stage.name, "state": stage.state}
        if stage.blocked_by:
            entry["blockedBy"] = stage.blocked_by
        out.append(entry)
    return out


@asynccontextmanager
async def _connection(db: asyncpg.Pool | asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db


_UPSERT_EXECUTION = """
INSERT INTO sequence_executions (triggered_id, project, stage, service, keptn_context, sequence, state,
                                 triggered_at, updated_at, event_ids, execution)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (triggered_id) DO UPDATE SET
    project = EXCLUDED.project, stage = EXCLUDED.stage, service = EXCLUDED.service,
    keptn_context = EXCLUDED.keptn_context, sequence = EXCLUDED.sequence, state = EXCLUDED.state,
    triggered_at = EXCLUDED.triggered_at, updated_at = EXCLUDED.updated_at,
    event_ids = EXCLUDED.event_ids, execution = EXCLUDED.execution
WHERE sequence_executions.updated_at <= EXCLUDED.updated_at
RETURNING true
"""

_UPSERT_STATE = """
INSERT INTO sequence_states (project, keptn_context, name, service, time, state, problem_title, stages)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (project, keptn_context) DO UPDATE SET
    name = EXCLUDED.name, service = EXCLUDED.service, time = EXCLUDED.time, state = EXCLUDED.state,
    problem_title = EXCLUDED.problem_title, stages = EXCLUDED.stages
"""


async def record_execution(db: asyncpg.Pool | asyncpg.Connection, record: ExecutionRecord) -> bool:
    """Store the newest picture of an execution and recompute its context's state.

    Idempotent: storing the same picture again changes nothing. Concurrent calls for executions
    of the same context are serialised, so the context's state always reflects every execution.

    Args:
        db: a pool, or a connection (a transaction of its own is nested in the caller's).
        record: the picture.

    Returns:
        True if the picture was stored (it is not older than the stored one), False if a newer
        picture was stored already and this one was ignored.

    Raises:
        NotFoundError: the project does not exist (any more).
    """
    async with _connection(db) as conn, conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            _LOCK_NAMESPACE,
            f"{record.project}/{record.keptn_context}",
        )
        try:
            stored = await conn.fetchval(
                _UPSERT_EXECUTION,
                record.triggered_id,
                record.project,
                record.stage,
                record.service,
                record.keptn_context,
                record.sequence,
                record.state,
                record.triggered_at,
                record.updated_at,
                record.event_ids(),
                record.model_dump(mode="json"),
            )
        except asyncpg.ForeignKeyViolationError:
            raise NotFoundError(f"project '{record.project}' not found", field="project") from None
        if not stored:
            return False
        rows = await conn.fetch(
            "SELECT execution FROM sequence_executions WHERE keptn_context = $1 AND project = $2",
            record.keptn_context,
            record.project,
        )
        summary = summarize_context([ExecutionRecord.model_validate(row["execution"]) for row in rows])
        await conn.execute(
            _UPSERT_STATE,
            record.project,
            record.keptn_context,
            summary.name,
            summary.service,
            summary.time,
            summary.state,
            summary.problem_title,
            _stages_json(summary.stages),
        )
    return True


async def project_exists(db: asyncpg.Pool | asyncpg.Connection, project: str) -> bool:
    """Whether a project of that name exists."""
    found: bool = await db.fetchval("SELECT EXISTS (SELECT 1 FROM projects WHERE name = $1)", project)
    return found


class ExecutionQuery(BaseModel):
    """The filters of ``GET /sequence-execution``; every given filter must match."""

    model_config = ConfigDict(frozen=True)

    project: str
    """The project (required)."""
    stage: str | None = None
    """Stage. Default: any."""
    service: str | None = None
    """Service. Default: any."""
    name: str | None = None
    """Sequence name. Default: any."""
    state: str | None = None
    """Execution state (Keptn's ``status`` parameter). Default: any."""
    keptn_context: str | None = None
    """Keptn context. Default: any."""
    page_size: int = Field(default=20, ge=1)
    """Executions per page. Default 20."""
    offset: int = Field(default=0, ge=0)
    """Executions to skip (the previous page's ``nextPageKey``). Default 0."""


@dataclass(frozen=True)
class ExecutionPage:
    """A page of executions, newest trigger first."""

    executions: list[ExecutionRecord]
    next_offset: int | None
    """Offset of the next page, None on the last page."""
    total_count: int
    """How many executions match in all."""


async def query_executions(db: asyncpg.Pool | asyncpg.Connection, query: ExecutionQuery) -> ExecutionPage:
    """The executions matching a query, newest trigger first, one page at a time (two queries)."""
    sql = SqlConditions(alias="x")
    for column, value in (
        ("project", query.project),
        ("stage", query.stage),
        ("service", query.service),
        ("sequence", query.name),
        ("state", query.state),
        ("keptn_context", query.keptn_context),
    ):
        if value is not None:
            sql.column_equals(column, value)
    total: int = await db.fetchval(f"SELECT count(*) FROM sequence_executions x {sql.where()}", *sql.args)
    limit, offset = sql.param(query.page_size), sql.param(query.offset)
    rows = await db.fetch(
        f"SELECT x.execution FROM sequence_executions x {sql.where()}"
        f" ORDER BY x.triggered_at DESC, x.triggered_id DESC LIMIT {limit} OFFSET {offset}",
        *sql.args,
    )
    following = query.offset + query.page_size
    return ExecutionPage(
        executions=[ExecutionRecord.model_validate(row["execution"]) for row in rows],
        next_offset=following if following < total else None,
        total_count=total,
    )
