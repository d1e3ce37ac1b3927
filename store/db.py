"""The connection pool and the schema migrations; the gateway and the worker call exactly these.

Migrations are the files ``store/migrations/NNNN_name.sql``, applied in name order, each in its
own transaction, and recorded in ``schema_migrations``. Several processes may start at once (the
gateway and a few workers): a PostgreSQL advisory lock makes them apply the pending files one
process at a time, so each file runs exactly once.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import asyncpg

MIGRATIONS_PACKAGE = "store"
MIGRATIONS_DIR = "migrations"

SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}
"""Session settings of every pooled connection.

asyncpg runs each query as a cached prepared statement, and after five runs PostgreSQL may switch
it to a generic plan, made without the argument values. For the datastore's ``data.*`` filters
that plan is a trap: it guesses that any jsonb containment matches 1 % of the rows, so
``data.result:pass`` (most evaluations) went through the GIN index, 160-430 ms per call at a
million events where the plan made for the values takes under 1 ms (``bench/event_store.py``,
bench/README.md). Planning each call costs a fraction of a millisecond.
"""

_MIGRATION_LOCK_KEY = 0x43617073_74616E  # "Capstan", any constant shared by every process


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Python dicts and lists in and out of json/jsonb columns, instead of asyncpg's raw strings.
    for type_name in ("jsonb", "json"):
        await conn.set_type_codec(
            type_name, encoder=_dumps, decoder=json.loads, schema="pg_catalog", format="text"
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Return a released connection to the pool as it is (asyncpg has already rolled back).

    asyncpg's default reset sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` on every release: one more round trip per ``pool.acquire()``, awaited before the
    caller goes on; a sixth of the worker's socket writes in py-spy (bench/README.md,
    "Profiles"). None of it applies here: no pooled connection LISTENs, SETs a session variable
    or keeps a WITH HOLD cursor, and the one session advisory lock (:func:`migrate`) is released
    in a ``finally``. An open transaction is still rolled back by asyncpg before this is called.
    """


def _dumps(value: Any) -> str:
    # Compact and without ASCII escaping, so the stored text is what the client sent.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """Open a connection pool whose connections encode and decode json/jsonb as Python objects.

    Args:
        url: a PostgreSQL URL (``postgresql://user:pass@host:port/db``, or with ``?host=/socket/dir``).
        min_size: connections opened up front. Default 1.
        max_size: upper bound of open connections. Default 10.

    Returns:
        The pool; close it with ``await pool.close()``.

    Raises:
        OSError: PostgreSQL cannot be reached.
        asyncpg.PostgresError: the server refused the connection (e.g. unknown database).
    """
    pool: asyncpg.Pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        server_settings=SERVER_SETTINGS,
    )
    return pool


def migration_files() -> list[tuple[str, str]]:
    """The migrations shipped with Capstan, in the order they apply.

    Returns:
        ``(version, sql)`` pairs; the version is the file name without ``.sql``.
    """
    directory = resources.files(MIGRATIONS_PACKAGE).joinpath(MIGRATIONS_DIR)
    found = [
        (entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
        for entry in directory.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply every migration not applied yet, in order.

    Idempotent, and safe when several processes call it at the same time.

    Args:
        pool: a pool on the target database.

    Returns:
        The versions applied by this call (empty when the schema was already current).

    Raises:
        asyncpg.PostgresError: a migration failed; it is rolled back and the ones before it stay.
    """
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        # Session-level lock, released in finally: it must outlive the per-file transactions.
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, sql in migration_files():
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                applied_now.append(version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)
    return applied_now
