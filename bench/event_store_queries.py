"""The timed queries of the event-store benchmark, the SQL they send, and its query plans.

Each Capstan operation has a baseline that sends **the same SQL** straight through asyncpg: the
statements are captured from the store function itself (a query logger on its connection), so
they cannot drift from what the store sends. The baseline connection has no json codec: it gets
``jsonb`` back as text, the least any client can do with the same rows.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from store.evaluations import EVALUATION_FINISHED, previous_evaluations
from store.events import EventQuery, EventTypeQuery, get_events, get_events_by_type
from store.filters import parse_filter

Statement = tuple[str, list[Any]]
HISTORY_RESULTS = ("pass", "warning")
"""``include_result_with_score: pass_or_warn``, the harder of the lighthouse's history queries."""


@dataclass(frozen=True)
class HistoryKey:
    """One (project, stage, service) whose evaluation history is read."""

    project: str
    stage: str
    service: str


async def capture(conn: Any, call: Callable[[Any], Awaitable[object]]) -> list[Statement]:
    """The statements on ``events`` (SQL text and arguments) ``call(conn)`` sends, in order."""
    sent: list[Statement] = []

    def logged(record: Any) -> None:
        # leaves out asyncpg's own type introspection, run once per connection and new type
        if "FROM events" in record.query:
            sent.append((record.query, list(record.args)))

    conn.add_query_logger(logged)
    try:
        await call(conn)
    finally:
        conn.remove_query_logger(logged)
    return sent


def raw_argument(value: Any) -> Any:
    # the baseline connection has asyncpg's default jsonb codec, which takes the JSON text
    if isinstance(value, list):
        return [raw_argument(v) for v in value]
    return json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else value


def rebind(statements: list[Statement], old: tuple[str, ...], new: tuple[str, ...]) -> list[Statement]:
    """The same statements for another key: every argument equal to a part of ``old`` is replaced.

    Arguments that are lists are rebound element by element, and dicts (jsonb containment
    documents) value by value.
    """
    mapping = dict(zip(old, new, strict=True))

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            return mapping.get(value, value)
        if isinstance(value, list):
            return [swap(v) for v in value]
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        return value

    return [(query, [swap(a) for a in args]) for query, args in statements]


async def run_raw(conn: asyncpg.Connection, statements: list[Statement]) -> int:
    """Send the statements on the baseline connection; the number of rows of the last one."""
    rows: list[asyncpg.Record] = []
    for query, args in statements:
        rows = await conn.fetch(query, *(raw_argument(a) for a in args))
    return len(rows)


def context_query(context: str) -> EventQuery:
    """``GET /mongodb-datastore/event?keptnContext=<context>`` as the gateway builds it."""
    return EventQuery(keptn_context=context)


def history_filter(key: HistoryKey) -> str:
    """The datastore filter Keptn's lighthouse sent for the history (pass_or_warn)."""
    return (
        f"data.project:{key.project} AND data.stage:{key.stage} AND data.service:{key.service}"
        f" AND data.result:{','.join(HISTORY_RESULTS)}"
    )


def by_type_query(key: HistoryKey, limit: int) -> EventTypeQuery:
    """``GET /mongodb-datastore/event/type/<evaluation.finished>?filter=...&excludeInvalidated=true``."""
    return EventTypeQuery(
        event_type=EVALUATION_FINISHED,
        clauses=tuple(parse_filter(history_filter(key))),
        exclude_invalidated=True,
        limit=limit,
    )


async def history(conn_or_pool: Any, key: HistoryKey, limit: int) -> list[dict[str, Any]]:
    """The lighthouse's query (``store.evaluations.previous_evaluations``), pass_or_warn."""
    return await previous_evaluations(
        conn_or_pool,
        project=key.project,
        stage=key.stage,
        service=key.service,
        results=HISTORY_RESULTS,
        limit=limit,
    )


async def context_page(conn_or_pool: Any, context: str) -> int:
    """The store's ``get_events`` for one context; how many events the page holds."""
    return len((await get_events(conn_or_pool, context_query(context))).events)


async def by_type(conn_or_pool: Any, key: HistoryKey, limit: int) -> int:
    """The store's ``get_events_by_type`` for the history filter; how many events."""
    return len(await get_events_by_type(conn_or_pool, by_type_query(key, limit)))


def _walk(plan: dict[str, Any], found: dict[str, Any]) -> None:
    node = plan.get("Node Type", "")
    found["nodes"].append(node)
    if "Index Name" in plan:
        found["indexes"].append(plan["Index Name"])
    if node == "Seq Scan":
        found["seq_scans"].append(plan.get("Relation Name"))
    for child in plan.get("Plans", []):
        _walk(child, found)


async def _literal(conn: asyncpg.Connection, value: Any) -> str:
    if isinstance(value, list):
        text: str = await conn.fetchval(
            "SELECT quote_literal($1::text[]::text)", [str(raw_argument(v)) for v in value]
        )
    else:
        text = await conn.fetchval("SELECT quote_literal($1::text)", str(raw_argument(value)))
    return text


async def explain(conn: asyncpg.Connection, statement: Statement, *, generic: bool) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of one statement, with a custom or a generic plan.

    asyncpg runs every query as a cached prepared statement, and after five executions
    PostgreSQL may switch it to a generic plan (planned without the argument values): that is
    the plan a long-running gateway or worker uses, so both are shown. The generic one goes
    through ``PREPARE``/``EXECUTE`` with ``plan_cache_mode = force_generic_plan``.
    """
    query, args = statement
    mode = "force_generic_plan" if generic else "force_custom_plan"
    literals = [await _literal(conn, a) for a in args]
    async with conn.transaction():
        await conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
        await conn.execute(f"PREPARE bench_explained AS {query}")
        try:
            call = (
                f"EXECUTE bench_explained({', '.join(literals)})" if literals else "EXECUTE bench_explained"
            )
            text = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {call}")
        finally:
            await conn.execute("DEALLOCATE bench_explained")
    top = json.loads(text)[0]
    found: dict[str, Any] = {"nodes": [], "indexes": [], "seq_scans": []}
    _walk(top["Plan"], found)
    return {
        "plan": "generic" if generic else "custom",
        "execution_ms": round(top["Execution Time"], 3),
        "planning_ms": round(top["Planning Time"], 3),
        "rows": top["Plan"].get("Actual Rows"),
        "shared_hit": top["Plan"].get("Shared Hit Blocks"),
        "shared_read": top["Plan"].get("Shared Read Blocks"),
        "indexes": sorted(set(found["indexes"])),
        "seq_scans": found["seq_scans"],
        "nodes": found["nodes"],
    }


async def plans(conn: asyncpg.Connection, statements: list[Statement]) -> list[dict[str, Any]]:
    """Custom and generic plans of each statement, with its SQL."""
    found = []
    for statement in statements:
        found.append(
            {
                "sql": " ".join(statement[0].split()),
                "custom": await explain(conn, statement, generic=False),
                "generic": await explain(conn, statement, generic=True),
            }
        )
    return found


async def plan_cache(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Which plans the baseline connection's prepared statements really used (PostgreSQL 14+)."""
    try:
        rows = await conn.fetch(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE generic_plans + custom_plans > 0 AND statement LIKE '%FROM events%'"
        )
    except asyncpg.UndefinedColumnError:  # PostgreSQL before 14 does not count them
        return []
    return [
        {
            "sql": " ".join(r["statement"].split())[:160],
            "generic": r["generic_plans"],
            "custom": r["custom_plans"],
        }
        for r in rows
    ]


def interleaved(operations: list[str], iterations: int, seed: int) -> list[tuple[int, str]]:
    """``iterations`` rounds of every operation, each round in a shuffled order, so that all of them
    share the machine's noise and none always runs right after another."""
    rng = random.Random(seed)
    order = []
    for index in range(iterations):
        names = list(operations)
        rng.shuffle(names)
        order += [(index, name) for name in names]
    return order


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    """Seconds ``call`` took."""
    began = time.perf_counter()
    await call()
    return time.perf_counter() - began
