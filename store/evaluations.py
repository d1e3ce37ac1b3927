"""The previous evaluations an evaluation compares with (Keptn's lighthouse datastore query, §4.5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

EVALUATION_FINISHED = "sh.keptn.event.evaluation.finished"
EVALUATION_INVALIDATED = "sh.keptn.event.evaluation.invalidated"


async def previous_evaluations(
    pool: asyncpg.Pool | asyncpg.Connection,
    *,
    project: str,
    stage: str,
    service: str,
    results: Sequence[str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The newest ``evaluation.finished`` events of a project/stage/service, newest first.

    Keptn's query: any source and any Keptn context, optionally only those whose overall
    ``data.result`` is one of ``results``, leaving out evaluations whose ``triggeredid`` was
    invalidated by an ``evaluation.invalidated`` event.

    Args:
        pool: the store.
        project: ``data.project``.
        stage: ``data.stage``.
        service: ``data.service``.
        results: allowed ``data.result`` values; None for any.
        limit: at most this many events.

    Returns:
        The wire events.
    """
    if limit <= 0:
        return []
    rows = await pool.fetch(
        "SELECT e.event FROM events e"
        " WHERE e.type = $1 AND e.project = $2 AND e.stage = $3 AND e.service = $4"
        # Containment, not `->> 'result' = ANY(...)`: PostgreSQL estimates containment from the
        # statistics of the events_data index expression. For the text comparison it guessed that
        # almost no row passes, and so sorted every evaluation of the service instead of reading
        # the newest few in index order: slower the longer the history (bench/README.md).
        " AND ($5::jsonb[] IS NULL OR (e.event -> 'data') @> ANY($5::jsonb[]))"
        " AND NOT EXISTS (SELECT 1 FROM events i"
        "   WHERE i.triggeredid = e.triggeredid AND i.type = $6)"
        " ORDER BY e.time DESC, e.seq DESC LIMIT $7",
        EVALUATION_FINISHED,
        project,
        stage,
        service,
        [{"result": result} for result in results] if results is not None else None,
        EVALUATION_INVALIDATED,
        limit,
    )
    return [row["event"] for row in rows]
