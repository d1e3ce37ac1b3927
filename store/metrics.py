"""The store reads behind Capstan's Prometheus metrics: small, indexed or aggregate queries."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from store.sequences import EXECUTION_STATES


async def count_executions_by_state(pool: asyncpg.Pool) -> dict[str, int]:
    """How many sequence executions are in each state (every state listed, 0 when none).

    One aggregate over ``sequence_executions`` (one row per execution); it is run on each scrape.
    """
    rows = await pool.fetch("SELECT state, count(*) AS n FROM sequence_executions GROUP BY state")
    counts = dict.fromkeys(EXECUTION_STATES, 0)
    counts.update({row["state"]: row["n"] for row in rows})
    return counts


async def event_time(pool: asyncpg.Pool | asyncpg.Connection, event_id: str) -> datetime | None:
    """The ``time`` of a stored event (one primary-key lookup), or None if it is not stored."""
    found: datetime | None = await pool.fetchval("SELECT time FROM events WHERE id = $1", event_id)
    return found
