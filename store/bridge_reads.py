"""What the Bridge's pages read: a context's events, state and open approvals, cheap fingerprints.

Everything goes through the ``store`` functions the API uses; the few queries here are the ones the
API has no route for: the fingerprint the live pages poll, and the filters by service and stage of
the sequence list (Keptn's Bridge filtered those in the browser).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from keptn.event_types import EventKind, SequenceEventType, maybe_parse_event_type
from store import sequence_states
from store.events import EventQuery, get_events
from store.open_events import OpenTriggeredQuery, list_open_triggered

APPROVAL_TRIGGERED = "sh.keptn.event.approval.triggered"
MAX_TIMELINE_EVENTS = 2000
"""A context with more events shows its first ones (no real sequence comes near)."""
MAX_FILTERED_CONTEXTS = 500
"""The sequence list filtered by service or stage looks at this many newest contexts."""
_PAGE = 100


async def context_events(pool: asyncpg.Pool, project: str, keptn_context: str) -> list[dict[str, Any]]:
    """The stored events of a context, oldest first."""
    newest_first: list[dict[str, Any]] = []
    offset = 0
    while offset < MAX_TIMELINE_EVENTS:
        page = await get_events(
            pool, EventQuery(keptn_context=keptn_context, project=project, page_size=_PAGE, offset=offset)
        )
        newest_first.extend(page.events)
        if page.next_page_key is None:
            break
        offset += _PAGE
    return list(reversed(newest_first))


async def context_state(
    pool: asyncpg.Pool, project: str, keptn_context: str
) -> sequence_states.SequenceState | None:
    """The sequence state view's entry of a context (None before the workflow recorded one)."""
    page = await sequence_states.get_sequence_states(
        pool, sequence_states.StateQuery(project=project, keptn_contexts=(keptn_context,), page_size=1)
    )
    return page.states[0] if page.states else None


async def open_approvals(pool: asyncpg.Pool, project: str, keptn_context: str) -> list[dict[str, Any]]:
    """The context's open ``approval.triggered`` events, oldest first (as pull clients see them)."""
    page = await list_open_triggered(
        pool, OpenTriggeredQuery(event_type=APPROVAL_TRIGGERED, project=project, page_size=1000)
    )
    return [e for e in reversed(page.events) if e.get("shkeptncontext") == keptn_context]


_FINGERPRINT = """
SELECT (SELECT count(*) FROM events WHERE shkeptncontext = $2) AS events,
       (SELECT max(seq) FROM events WHERE shkeptncontext = $2) AS last_seq,
       (SELECT state || coalesce(stages::text, '') FROM sequence_states
         WHERE project = $1 AND keptn_context = $2) AS state,
       (SELECT coalesce(string_agg(event_id, ',' ORDER BY event_id), '') FROM open_triggered_events
         WHERE shkeptncontext = $2 AND type = $3) AS approvals
"""


async def context_fingerprint(pool: asyncpg.Pool, project: str, keptn_context: str) -> str:
    """Changes whenever the context's timeline would look different: events, state, open approvals.

    One indexed query, cheap enough to poll twice a second per open page.
    """
    row = await pool.fetchrow(_FINGERPRINT, project, keptn_context, APPROVAL_TRIGGERED)
    return _digest(row["events"], row["last_seq"], row["state"], row["approvals"])


async def project_fingerprint(pool: asyncpg.Pool, project: str) -> str:
    """Changes whenever the project's sequence list would look different."""
    row = await pool.fetchrow(
        "SELECT count(*) AS n, coalesce(string_agg(md5(keptn_context || state || stages::text), ''"
        " ORDER BY keptn_context), '') AS h FROM sequence_states WHERE project = $1",
        project,
    )
    return _digest(row["n"], row["h"])


def _digest(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


async def filtered_contexts(
    pool: asyncpg.Pool, project: str, *, service: str | None, stage: str | None
) -> tuple[str, ...]:
    """Newest contexts of a project whose root service is ``service`` and that reached ``stage``."""
    conditions: list[str] = ["project = $1"]
    args: list[Any] = [project]
    if service:
        args.append(service)
        conditions.append(f"service = ${len(args)}")
    if stage:
        args.append([{"name": stage}])  # the pool's jsonb codec encodes it
        conditions.append(f"stages @> ${len(args)}::jsonb")
    rows = await pool.fetch(
        f"SELECT keptn_context FROM sequence_states WHERE {' AND '.join(conditions)}"
        f" ORDER BY time DESC LIMIT {MAX_FILTERED_CONTEXTS}",
        *args,
    )
    return tuple(row["keptn_context"] for row in rows)


async def sequence_results(pool: asyncpg.Pool, project: str, contexts: Sequence[str]) -> dict[str, list[str]]:
    """The results of each context's finished sequences so far (``.finished`` of ``<stage>.<seq>``)."""
    if not contexts:
        return {}
    rows = await pool.fetch(
        "SELECT shkeptncontext, type, event #>> '{data,result}' AS result FROM events"
        " WHERE shkeptncontext = ANY($1::text[]) AND project = $2 AND type LIKE '%.finished'",
        list(contexts),
        project,
    )
    found: dict[str, list[str]] = {}
    for row in rows:
        parsed = maybe_parse_event_type(row["type"])
        if isinstance(parsed, SequenceEventType) and parsed.kind is EventKind.FINISHED:
            found.setdefault(row["shkeptncontext"], []).append(row["result"] or "")
    return found


@dataclass(frozen=True)
class LatestSequence:
    """The newest context of a project in the sequence state view."""

    keptn_context: str
    name: str
    service: str
    state: str
    time: datetime


async def latest_sequences(pool: asyncpg.Pool, projects: Sequence[str]) -> dict[str, LatestSequence]:
    """The newest sequence state of each of these projects (one query for the whole overview)."""
    rows = await pool.fetch(
        "SELECT DISTINCT ON (project) project, keptn_context, name, service, state, time"
        " FROM sequence_states WHERE project = ANY($1::text[])"
        " ORDER BY project, time DESC, keptn_context DESC",
        list(projects),
    )
    return {
        row["project"]: LatestSequence(
            keptn_context=row["keptn_context"],
            name=row["name"],
            service=row["service"],
            state=row["state"],
            time=row["time"],
        )
        for row in rows
    }
