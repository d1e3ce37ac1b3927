"""Activities of the context workflow: configuration reads and emitted events.

Every event the workflow emits goes through :meth:`SequenceActivities.emit_event`, which stores it
(idempotent on its id, which the workflow chose deterministically) and, for a task ``.triggered``,
lists it as open so pull-mode integrations can fetch it; asked to, it also returns the push
targets of the event. Push delivery itself is separate (``activities/delivery.py``) so that a
slow integration never delays the sequence.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.delivery import PushTarget, find_push_targets
from capstan.metrics import EVENTS_EMITTED, event_kind, observe_task_finished
from capstan.telemetry import inject_traceparent
from keptn.errors import InvalidInputError
from keptn.shipyard import Shipyard, parse_shipyard
from store import events as event_store
from store import open_events
from store import projects as project_store
from store.resources import latest_commit

LOAD_SHIPYARD_ACTIVITY = "load_shipyard"
EMIT_EVENT_ACTIVITY = "emit_event"
CLOSE_TASKS_ACTIVITY = "close_tasks"


class LoadShipyardInput(BaseModel):
    """Input of ``load_shipyard``."""

    project: str
    stage: str
    """The stage whose latest resource version the sequence will run with."""


class ShipyardSnapshot(BaseModel):
    """A project's shipyard and the resource version a stage's sequence runs with.

    The shipyard arrives parsed, so that the workflow never parses YAML.
    """

    shipyard: Shipyard
    commit_id: str | None = None
    """The newest resource version touching the project or the stage (Keptn: the stage's latest
    git commit); events of the sequence carry it as ``gitcommitid``."""


class EmitEventInput(BaseModel):
    """Input of ``emit_event``."""

    event: dict[str, Any]
    """The wire event; its id is deterministic, so a retried activity stores it once."""
    open_task: bool = False
    """True for a task ``.triggered`` event that integrations may pull until it is answered."""
    with_targets: bool = False
    """Also look up who the event is pushed to (:attr:`EmitResult.targets`), sparing the workflow
    a ``push_targets`` activity, and a workflow task, between storing a task and pushing it."""


class EmitResult(BaseModel):
    """Output of ``emit_event``."""

    stored: bool
    """False when a previous attempt had already stored it."""
    targets: list[PushTarget] | None = None
    """With ``with_targets``: the subscriptions to deliver the event to (as ``push_targets``)."""


class CloseTasksInput(BaseModel):
    """Input of ``close_tasks``: task ``.triggered`` events that are no longer open."""

    triggered_ids: list[str] = Field(default_factory=list)


class CloseTasksResult(BaseModel):
    """Output of ``close_tasks``."""

    closed: int


class SequenceActivities:
    """The context workflow's store activities, sharing the worker's pool.

    Args:
        pool: the worker's asyncpg pool.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name=LOAD_SHIPYARD_ACTIVITY)
    async def load_shipyard(self, input: LoadShipyardInput) -> ShipyardSnapshot:
        """Read a project's shipyard and a stage's latest resource version.

        Raises:
            ApplicationError: the project does not exist or its shipyard is unusable
                (non-retryable; the sequence ends errored).
        """
        project = await project_store.get_project(self._pool, input.project)
        if project is None:
            raise ApplicationError(
                f"project {input.project} not found", type="ProjectNotFound", non_retryable=True
            )
        commit = await latest_commit(self._pool, input.project, input.stage)
        try:
            shipyard = parse_shipyard(project.shipyard)
        except InvalidInputError as exc:
            # Stored shipyards were validated on write; this only fires if the rules tightened.
            raise ApplicationError(str(exc), type="InvalidShipyard", non_retryable=True) from exc
        return ShipyardSnapshot(shipyard=shipyard, commit_id=commit)

    @activity.defn(name=EMIT_EVENT_ACTIVITY)
    async def emit_event(self, input: EmitEventInput) -> EmitResult:
        """Store an event the workflow emits; a task ``.triggered`` is also listed as open.

        Raises:
            ApplicationError: the event cannot be stored as it is (non-retryable).
        """
        # traceparent: this activity's span, in the Keptn context's trace (when tracing is on);
        # a retry's differs, but the first stored copy is the one everybody reads
        inject_traceparent(input.event)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                stored = await event_store.insert_event(conn, input.event)
                if input.open_task and stored:
                    await open_events.open_triggered(conn, input.event)
        except InvalidInputError as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from exc
        if stored:
            EVENTS_EMITTED.labels(event_kind(str(input.event.get("type")))).inc()
            await observe_task_finished(self._pool, input.event)
        if not input.with_targets:
            return EmitResult(stored=stored)
        # After the commit, as push_targets would run: the event is stored before anyone gets it.
        try:
            targets = await find_push_targets(self._pool, input.event)
        except Exception as exc:
            # Any failure: the event is stored, and a retry must not hinge on the lookup. Without
            # targets the workflow asks push_targets instead, with that activity's retries, as before.
            activity.logger.warning("push targets of %s not found here: %r", input.event.get("id"), exc)
            return EmitResult(stored=stored)
        return EmitResult(stored=stored, targets=targets)

    @activity.defn(name=CLOSE_TASKS_ACTIVITY)
    async def close_tasks(self, input: CloseTasksInput) -> CloseTasksResult:
        """Stop listing task ``.triggered`` events as open (answered, aborted or timed out)."""
        await open_events.close_triggered(self._pool, input.triggered_ids)
        return CloseTasksResult(closed=len(input.triggered_ids))
