"""Finding the remediation loops a resolved problem ends."""

from __future__ import annotations

import asyncpg

from store.sequences import RUNNING_STATES

REMEDIATION_SEQUENCE = "remediation"


async def open_remediations(
    pool: asyncpg.Pool | asyncpg.Connection, *, project: str, service: str, stage: str | None = None
) -> list[str]:
    """Keptn contexts with a ``remediation`` sequence of this service that has not ended, oldest first.

    Args:
        pool: the store.
        project: the problem's project.
        service: the problem's service.
        stage: only this stage; None for every stage.
    """
    rows = await pool.fetch(
        "SELECT keptn_context, min(triggered_at) AS first FROM sequence_executions"
        " WHERE project = $1 AND service = $2 AND sequence = $3 AND state = ANY($4::text[])"
        " AND ($5::text IS NULL OR stage = $5)"
        " GROUP BY keptn_context ORDER BY first",
        project,
        service,
        REMEDIATION_SEQUENCE,
        sorted(RUNNING_STATES),
        stage,
    )
    return [row["keptn_context"] for row in rows]
