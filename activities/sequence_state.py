"""The activity through which the context workflow records sequence state for the API's views."""

from __future__ import annotations

import asyncpg
from pydantic import BaseModel
from temporalio import activity

from activities.sequence_state_models import SequenceExecutionUpdate
from keptn.errors import NotFoundError
from store.sequences import ExecutionRecord, record_execution


class RecordSequenceResult(BaseModel):
    """Output of :meth:`SequenceStateActivities.record_sequence`."""

    stored: bool
    """True if the picture was stored; False if a newer one was stored already (this one is
    older, e.g. a retry that lost a race) or the project no longer exists."""


class SequenceStateActivities:
    """Sequence-state activities sharing the worker's connection pool.

    Args:
        pool: the worker's asyncpg pool.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="record_sequence")
    async def record_sequence(self, update: SequenceExecutionUpdate) -> RecordSequenceResult:
        """Store an execution's current picture and recompute its Keptn context's state.

        Idempotent: a retry stores the same picture again, and a picture older than the stored
        one is ignored, so retries and reordering can never roll the state back.
        """
        try:
            stored = await record_execution(self._pool, ExecutionRecord.model_validate(update.model_dump()))
        except NotFoundError:
            # A project deleted while its sequence still ran: there is no view left to update,
            # and failing would only make the workflow retry forever.
            activity.logger.warning(
                "sequence state not recorded: project %r no longer exists", update.project
            )
            return RecordSequenceResult(stored=False)
        return RecordSequenceResult(stored=stored)
