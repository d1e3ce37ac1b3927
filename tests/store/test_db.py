import asyncio
import contextlib

import asyncpg

from store.db import _MIGRATION_LOCK_KEY, create_pool, migrate, migration_files
from tests.fixtures.database import with_database


def test_migration_files_are_ordered_and_named():
    versions = [version for version, _ in migration_files()]
    assert versions == sorted(versions)
    assert versions[0] == "0001_initial"
    assert all(version[:4].isdigit() and version[4] == "_" for version in versions)


async def test_migrate_is_idempotent(pool):
    # the template was migrated already: nothing left to apply, however often it is called
    assert await migrate(pool) == []
    assert await migrate(pool) == []
    recorded = await pool.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in recorded] == [v for v, _ in migration_files()]


async def test_concurrent_migrations_apply_each_file_once(db_url):
    admin = await asyncpg.connect(with_database(db_url, "postgres"))
    empty = db_url.rsplit("/", 1)[-1].split("?", 1)[0] + "_empty"
    await admin.execute(f'CREATE DATABASE "{empty}"')
    url = with_database(db_url, empty)
    pools = [await create_pool(url, min_size=1, max_size=1) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(p) for p in pools))
        applied = [version for result in results for version in result]
        assert sorted(applied) == [v for v, _ in migration_files()]
        assert [r for r in results if r] and sum(1 for r in results if r) == 1
        tables = await pools[0].fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        assert {"events", "projects", "stages", "services", "commits", "resource_versions"} <= {
            t["tablename"] for t in tables
        }
    finally:
        for p in pools:
            await p.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{empty}" WITH (FORCE)')
        await admin.close()


async def test_pool_round_trips_json(pool):
    value = {"a": [1, 2, {"b": None}], "ü": "ä"}
    assert await pool.fetchval("SELECT $1::jsonb", value) == value
    assert await pool.fetchval("SELECT $1::json", value) == value


async def test_released_connections_keep_no_session_state(db_url):
    # The pool skips asyncpg's reset query (store.db._keep_session): what it cleared must not leak.
    pool = await create_pool(db_url, min_size=1, max_size=1)  # one connection, reused every time
    other = await asyncpg.connect(db_url)
    try:
        await migrate(pool)  # takes and releases a session-level advisory lock
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", _MIGRATION_LOCK_KEY)
        await other.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)
        with contextlib.suppress(asyncpg.UniqueViolationError):
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("CREATE TEMP TABLE left_over (x int)")
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ('0001_initial')")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT to_regclass('pg_temp.left_over')") is None  # rolled back
            assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"  # kept
    finally:
        await other.close()
        await pool.close()
