"""A fresh, migrated database for the event-store benchmark, loaded in bulk with generated events.

:func:`bench_database` creates ``capstan_bench_<random>`` on a PostgreSQL server (the one given, or
an embedded one in a temp dir) and drops it afterwards. :func:`bulk_load` writes events with
``COPY`` into ``events`` and then builds the two read models ``store.events.insert_event``
maintains (``context_roots``, ``service_last_events``) with one SQL statement each: the same rows
``insert_event`` would have written one event at a time, which :func:`verify_bulk_matches_insert`
checks on a sample before every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.event_store_data import EventFactory, Scope

# the store's own row derivation and JSON encoding, so that the bulk rows cannot drift from
# insert_event's (verify_bulk_matches_insert checks the rest)
from store.db import _dumps, create_pool, migrate
from store.events import _row, insert_event

log = logging.getLogger("bench.event_store")

COLUMNS = (
    "id",
    "type",
    "source",
    "time",
    "shkeptncontext",
    "triggeredid",
    "project",
    "stage",
    "service",
    "event",
)
BATCH = 20_000

# insert_event keeps, per (project, context), the oldest event; on equal times the one stored
# first (its update needs a strictly older time). seq is the storing order.
CONTEXT_ROOTS_SQL = """
INSERT INTO context_roots (project, shkeptncontext, event_id, time, seq)
SELECT DISTINCT ON (project, shkeptncontext) project, shkeptncontext, id, time, seq
FROM events WHERE project IS NOT NULL AND shkeptncontext IS NOT NULL
ORDER BY project, shkeptncontext, time, seq
"""
# ... and per (project, stage, service, type) of a task event (sh.keptn.event.<task>.<kind>),
# the newest by (time, seq).
SERVICE_LAST_EVENTS_SQL = """
INSERT INTO service_last_events (project, stage, service, type, event_id, shkeptncontext, time, seq)
SELECT DISTINCT ON (project, stage, service, type)
    project, stage, service, type, id, shkeptncontext, time, seq
FROM events
WHERE project IS NOT NULL AND stage IS NOT NULL AND service IS NOT NULL
  AND type LIKE 'sh.keptn.event.%' AND cardinality(string_to_array(type, '.')) = 5
ORDER BY project, stage, service, type, time DESC, seq DESC
"""
# insert_event also sets services.deployed_image on a deployment.finished; the benchmark creates no
# services rows, so that update has nothing to match in either path.


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@contextlib.contextmanager
def postgres_server(url: str | None) -> Iterator[str]:
    """The server URL given, or an embedded PostgreSQL in a temp dir, stopped and removed on exit."""
    if url:
        yield url
        return
    from store.embedded import EmbeddedPostgres

    data_dir = Path(tempfile.mkdtemp(prefix="capstan-bench-pg-"))
    data_dir.chmod(0o755)  # as root, PostgreSQL runs as another user, who must enter the dir
    server = EmbeddedPostgres(data_dir)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.asynccontextmanager
async def bench_database(server_url: str) -> AsyncIterator[str]:
    """Create and migrate ``capstan_bench_<random>`` on the server; drop it on exit."""
    name = f"capstan_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_with_database(server_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _with_database(server_url, name)
    try:
        pool = await create_pool(url, min_size=1, max_size=2)
        try:
            await migrate(pool)
        finally:
            await pool.close()
        yield url
    finally:
        admin = await asyncpg.connect(_with_database(server_url, "postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def records(events: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The ``events`` rows of wire events, derived as ``insert_event`` derives them."""
    found = []
    for event in events:
        row = _row(event)
        found.append(
            (row.id, row.type, row.source, row.time, row.shkeptncontext, row.triggeredid,
             row.project, row.stage, row.service, _dumps(event))
        )  # fmt: skip
    return found


async def build_read_models(conn: asyncpg.Connection) -> None:
    """Fill ``context_roots`` and ``service_last_events`` from ``events`` (empty before)."""
    await conn.execute(CONTEXT_ROOTS_SQL)
    await conn.execute(SERVICE_LAST_EVENTS_SQL)


@dataclass
class LoadResult:
    """How long the load took, step by step."""

    events: int
    copy_s: float
    read_models_s: float
    vacuum_analyze_s: float
    total_s: float
    table_mb: float
    indexes_mb: float

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "events": self.events,
            "copy_s": round(self.copy_s, 1),
            "read_models_s": round(self.read_models_s, 1),
            "vacuum_analyze_s": round(self.vacuum_analyze_s, 1),
            "total_s": round(self.total_s, 1),
            "events_per_s": round(self.events / self.total_s) if self.total_s else None,
            "table_mb": self.table_mb,
            "indexes_mb": self.indexes_mb,
        }


async def bulk_load(url: str, factory: EventFactory, count: int) -> LoadResult:
    """COPY ``count`` events from ``factory`` into the (empty) store, build the read models, VACUUM ANALYZE.

    The next batch is generated in a thread while the previous one is being copied.
    """
    began = time.perf_counter()
    contexts = factory.contexts(count)

    def next_batch() -> list[tuple[Any, ...]]:
        batch: list[dict[str, Any]] = []
        for context in contexts:
            batch += context
            if len(batch) >= BATCH:
                break
        return records(batch)

    conn = await asyncpg.connect(url)
    try:
        pending = asyncio.create_task(asyncio.to_thread(next_batch))
        while batch := await pending:
            pending = asyncio.create_task(asyncio.to_thread(next_batch))
            await conn.copy_records_to_table("events", records=batch, columns=COLUMNS)
            if factory.generated.events % 100_000 < BATCH:
                log.info("loaded %d events (%.0f s)", factory.generated.events, time.perf_counter() - began)
        copied = time.perf_counter()
        await build_read_models(conn)
        modelled = time.perf_counter()
        # a store that has been running has been vacuumed and analysed by autovacuum
        await conn.execute("VACUUM ANALYZE")
        vacuumed = time.perf_counter()
        table = await conn.fetchval("SELECT pg_table_size('events')")
        indexes = await conn.fetchval("SELECT pg_indexes_size('events')")
    finally:
        await conn.close()
    return LoadResult(
        events=factory.generated.events,
        copy_s=copied - began,
        read_models_s=modelled - copied,
        vacuum_analyze_s=vacuumed - modelled,
        total_s=vacuumed - began,
        table_mb=round(table / 2**20, 1),
        indexes_mb=round(indexes / 2**20, 1),
    )


async def _snapshot(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "events": [
            tuple(r) for r in await conn.fetch(f"SELECT seq, {', '.join(COLUMNS)} FROM events ORDER BY seq")
        ],
        "context_roots": [tuple(r) for r in await conn.fetch("SELECT * FROM context_roots ORDER BY 1, 2")],
        "service_last_events": [
            tuple(r) for r in await conn.fetch("SELECT * FROM service_last_events ORDER BY 1, 2, 3, 4")
        ],
    }


async def _empty(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE events, context_roots, service_last_events RESTART IDENTITY")


async def verify_bulk_matches_insert(url: str, scope: Scope, events: int, seed: int) -> dict[str, Any]:
    """Store a sample with ``insert_event``, then the same sample in bulk; compare every row.

    Leaves the store empty. The rows compared: ``events`` (all columns but ``received_at``, which
    is the storing time), ``context_roots`` and ``service_last_events``.

    Raises:
        AssertionError: the two paths stored different rows.
    """
    sample = [event for context in EventFactory(scope, seed).contexts(events) for event in context]
    pool = await create_pool(url, min_size=1, max_size=1)  # the gateway's and worker's codecs
    conn = await asyncpg.connect(url)  # bulk_load's plain connection
    try:
        await _empty(conn)
        async with pool.acquire() as stored:
            for event in sample:
                await insert_event(stored, event)
        one_by_one = await _snapshot(conn)
        await _empty(conn)
        await conn.copy_records_to_table("events", records=records(sample), columns=COLUMNS)
        await build_read_models(conn)
        in_bulk = await _snapshot(conn)
        await _empty(conn)
    finally:
        await conn.close()
        await pool.close()
    for table, rows in one_by_one.items():
        if rows != in_bulk[table]:
            differing = next(
                ((a, b) for a, b in zip(rows, in_bulk[table], strict=False) if a != b),
                (len(rows), len(in_bulk[table])),
            )
            raise AssertionError(f"bulk load differs from insert_event in {table}: {differing}")
    return {name: len(rows) for name, rows in one_by_one.items()} | {"matches_insert_event": True}
